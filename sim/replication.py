"""The one entry to the model: run one replication, return its events and metrics.

Runners, sweeps, calibration and reports call the model only through :func:`run_replication`.
"""

from __future__ import annotations

from typing import NamedTuple

from sim.metrics import replication_metrics
from sim.model.events import Event, EventBudgetExceeded
from sim.model.world import World
from sim.scenario.schema import Scenario


class Replication(NamedTuple):
    """One replication's output: event rows (:class:`sim.model.events.Event`) and metrics."""

    events: list[Event]
    metrics: dict


def run_replication(scenario: Scenario, seed: int, rep: int) -> Replication:
    """Simulate replication ``rep`` of root seed ``seed``; the result depends on nothing else."""
    world = World(scenario, seed, rep)
    try:
        rows = world.run().rows
    except EventBudgetExceeded as exc:
        raise EventBudgetExceeded(f"replication {rep} of seed {seed}: {exc}") from None
    return Replication(rows, {"rep": rep, "seed": seed, **replication_metrics(rows, scenario)})
