"""The World: the SimPy environment, the model components and their shared state.

Build a World from a validated scenario, a root seed and a replication index, call :meth:`World.run`
and read the event log. The World knows nothing of files, the CLI or parallelism.
"""

from __future__ import annotations

from dataclasses import dataclass

import simpy

from sim.model import events as ev
from sim.model.attacks import AttackTable, InjuryReports
from sim.model.command import USCommand
from sim.model.events import EventLog
from sim.model.militia import Militia, driver_steps
from sim.model.patron import Patron
from sim.model.sorties import BomberFleet, TheatreAir
from sim.model.strikes import TargetTable
from sim.rng import Streams
from sim.scenario.schema import Scenario


@dataclass(frozen=True)
class Tables:
    """Everything derived from a scenario once and shared by all its replications."""

    attacks: AttackTable
    targets: TargetTable
    driver_steps: tuple[list[float], list[float]]

    @classmethod
    def from_scenario(cls, s: Scenario) -> Tables:
        return cls(
            attacks=AttackTable.from_scenario(s),
            targets=TargetTable.from_scenario(s),
            driver_steps=driver_steps(s),
        )


_TABLES: dict[int, tuple[Scenario, Tables]] = {}


def tables_for(scenario: Scenario) -> Tables:
    """The scenario's tables, built once per scenario object (scenarios are immutable)."""
    hit = _TABLES.get(id(scenario))
    if hit is not None and hit[0] is scenario:
        return hit[1]
    tables = Tables.from_scenario(scenario)
    if len(_TABLES) > 64:
        _TABLES.clear()
    _TABLES[id(scenario)] = (scenario, tables)
    return tables


class World:
    """One replication's world: environment, components, shared state and event log."""

    def __init__(self, scenario: Scenario, seed: int, rep: int) -> None:
        self.scenario = scenario
        self.env = simpy.Environment()
        self.streams = Streams(seed, rep)
        self.log = EventLog(ev.MAX_EVENTS)
        self.horizon = scenario.horizon_hours
        tables = tables_for(scenario)
        self.targets = tables.targets
        self.us_killed = 0  # US personnel killed so far (read by the militia's halt rule)
        self.bombers = BomberFleet(self)
        self.theatre = TheatreAir(self)
        self.injuries = InjuryReports(self)
        self.patron = Patron(self)
        self.command = USCommand(self)
        self.militia = Militia(self, tables.attacks, tables.driver_steps)

    def run(self) -> EventLog:
        """Simulate from the start date to the end of the end date; return the event log."""
        self.env.run(until=self.horizon)
        return self.log

    @property
    def simpy_events(self) -> int:
        """SimPy events scheduled so far (for benchmarks)."""
        return next(self.env._eid)

    @property
    def model_events(self) -> int:
        """Model events so far: SimPy events plus the attack candidates and bound changes that the
        militia evaluated without a timeout (each would be one SimPy timeout without its lookahead)."""
        return self.simpy_events + self.militia.inline_events
