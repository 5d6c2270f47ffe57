"""Event records and the escalation-ladder rungs they carry.

The event log is the model's only output: a list of :class:`Event` rows (named tuples; the hot
paths read them by the indices in :data:`COL`).
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import NamedTuple


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 target``, ``2 targets`` (``many`` for an irregular plural: ``facility``/``facilities``)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


#: An attack's severity level as an adjective: "a harmless attack", "a lethal attack".
SEVERITY_WORDS = {
    "none": "harmless",
    "minor_injuries": "minor-injury",
    "serious_injuries": "serious-injury",
    "deaths": "lethal",
    "mass_casualty": "mass-casualty",
}


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
ATTACK_RUNG = tuple(
    int(r) for r in (Rung.HARASSMENT, Rung.INJURIES, Rung.INJURIES, Rung.LETHAL_ATTACK, Rung.LETHAL_ATTACK)
)


class Event(NamedTuple):
    """One row of the event log. Counts that do not apply are 0, strings empty, ``package`` -1
    outside a strike package, ``wait_hours`` 0.0 where nothing waited."""

    t_hours: float  # hours since 00:00 of the scenario's start date
    event: str  # one of EVENT_NAMES
    actor: str  # militia, us or patron
    country: str = ""
    location: str = ""  # a base (attacks) or a facility (strikes)
    package: int = -1  # the strike package's id, from 0
    asset: str = ""  # one of ASSETS
    rung: int = 0  # the ladder rung (Rung) the event stands on
    severity: int = 0  # an attack's severity level index (none, minor, serious, deaths, mass)
    weapon: str = ""
    salvo: int = 0  # munitions launched in an attack
    intercepted: int = 0
    us_killed: int = 0
    us_injured: int = 0
    aircraft: int = 0  # aircraft the row is about (a package's, or 1 for one bomber's leg)
    targets: int = 0
    destroyed: int = 0
    munitions: int = 0
    militia_killed: int = 0
    civilians_killed: int = 0
    militia_capacity: float = math.nan  # the militia's capacity after a strike, 0..1
    wait_hours: float = 0.0
    detail: str = ""  # words for the narration, never parsed
    scripted: str = ""  # the key of a documented (scripted) attack in the scenario file
    bomber: int = 0  # a bomber's number in its package (1, 2, ...) on the rows of one bomber


#: The event row's fields, in order (the columns of ``events.parquet`` after ``rep`` and
#: ``timestamp``).
COLUMNS = Event._fields
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
INJURY_REPORT = "injury_report"
HALT_COMPLETE = "halt_complete"

MILITIA = "militia"
US = "us"
PATRON = "patron"

#: Every event name, in the order of a mission (the categories of the ``event`` column).
EVENT_NAMES = (
    ATTACK,
    HALT,
    RESUME,
    DECISION,
    WARNING,
    WEATHER_DELAY,
    AIRCRAFT_WAIT,
    GENERATION,
    TAKEOFF,
    REFUEL,
    TIME_OVER_TARGET,
    LANDING,
    BREAKAGE,
    SORTIE_CANCELLED,
    THEATRE_SORTIES,
    STRIKE,
    INJURY_REPORT,
    HALT_COMPLETE,
)
ACTORS = (MILITIA, US, PATRON)


def documented_attack_detail(key: str) -> str:
    """The ``detail`` of the attack row of the scenario's documented attack ``key``."""
    return f"documented attack '{key}'"


#: Strike assets: in-theatre fighters, CONUS bombers, an armed drone hunting a commander, and
#: aircraft or armed drones on call that engage a launch team in self-defence.
ASSETS = ("", "fighter", "bomber", "drone", "self_defense")

#: The most events one replication may record: the baseline records about 255. A scenario whose
#: rates run past it ends the replication with :class:`EventBudgetExceeded`, never a hang.
MAX_EVENTS = 200_000


class EventBudgetExceeded(RuntimeError):
    """A replication recorded more than :data:`MAX_EVENTS` events."""


class EventLog:
    """Append-only log of one replication's events, in time order."""

    __slots__ = ("rows", "limit")

    def __init__(self, limit: int = MAX_EVENTS) -> None:
        self.rows: list[Event] = []
        self.limit = limit

    def record(self, t_hours: float, event: str, actor: str, **fields) -> None:
        """Record one event; ``fields`` are :class:`Event`'s (an unknown one is an error)."""
        if len(self.rows) >= self.limit:
            self.overflow(t_hours)
        self.rows.append(Event(t_hours, event, actor, **fields))

    def overflow(self, t_hours: float) -> None:
        """Raise :class:`EventBudgetExceeded` (the log holds ``limit`` rows at ``t_hours``)."""
        raise EventBudgetExceeded(
            f"more than {self.limit:,} events by hour {t_hours:,.0f} of the replication (the "
            f"baseline records about 255 in all): the scenario's rates are beyond what this "
            f"model is for"
        )

    def __len__(self) -> int:
        return len(self.rows)
