"""Event records and the escalation-ladder rungs they carry.

The event log is the model's only output: a list of fixed-width tuples whose fields are
:data:`COLUMNS`. Times are hours since 00:00 of the scenario's start date. Counts that do not apply
to an event are 0, strings are empty, ``package`` is -1 outside a strike package and
``wait_hours`` is 0.0 where nothing waited.
"""

from __future__ import annotations

from enum import IntEnum


class Rung(IntEnum):
    """The escalation ladder, lowest first."""

    QUIET = 0
    HARASSMENT = 1  # an attack that harms no one
    INJURIES = 2  # an attack that injures US personnel
    LIMITED_STRIKE = 3  # a US strike on a few targets from in-theatre aircraft
    LETHAL_ATTACK = 4  # an attack that kills US personnel
    LEADERSHIP_STRIKE = 5  # a US armed-drone strike on a militia commander
    MAJOR_STRIKE = 6  # a US package with bombers or on many targets

    @property
    def label(self) -> str:
        return self.name.lower()


#: Ladder rung of an attack (as int), by severity level index (none, minor, serious, deaths, mass).
ATTACK_RUNG = tuple(int(r) for r in (Rung.HARASSMENT, Rung.INJURIES, Rung.INJURIES,
                                     Rung.LETHAL_ATTACK, Rung.LETHAL_ATTACK))

COLUMNS = (
    "t_hours",
    "event",
    "actor",
    "country",
    "location",
    "package",
    "asset",
    "rung",
    "severity",
    "weapon",
    "salvo",
    "intercepted",
    "us_killed",
    "us_injured",
    "aircraft",
    "targets",
    "destroyed",
    "munitions",
    "militia_killed",
    "civilians_killed",
    "militia_capacity",
    "wait_hours",
    "detail",
)
COL = {name: i for i, name in enumerate(COLUMNS)}

#: Event names, as they appear in the ``event`` column.
ATTACK = "attack"
HALT = "halt"
RESUME = "resume"
DECISION = "decision"
WARNING = "warning"
WEATHER_DELAY = "weather_delay"
AIRCRAFT_WAIT = "aircraft_wait"
GENERATION = "generation"
TAKEOFF = "takeoff"
REFUEL = "refuel"
TIME_OVER_TARGET = "time_over_target"
LANDING = "landing"
BREAKAGE = "breakage"
SORTIE_CANCELLED = "sortie_cancelled"
THEATRE_SORTIES = "theatre_sorties"
STRIKE = "strike"

MILITIA = "militia"
US = "us"

_DEFAULT_ROW = [0] * len(COLUMNS)
for _name, _value in dict(country="", location="", asset="", weapon="", detail="", package=-1,
                          militia_capacity=float("nan"), wait_hours=0.0, t_hours=0.0).items():
    _DEFAULT_ROW[COL[_name]] = _value


class EventLog:
    """Append-only log of one replication's events, in time order."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def record(self, t_hours: float, event: str, actor: str, **fields) -> None:
        """Record one event; an unknown field name is an error (it would be lost silently)."""
        row = _DEFAULT_ROW.copy()
        row[0] = t_hours
        row[1] = event
        row[2] = actor
        for key, value in fields.items():
            row[COL[key]] = value
        self.rows.append(tuple(row))

    def __len__(self) -> int:
        return len(self.rows)
