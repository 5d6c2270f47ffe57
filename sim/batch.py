"""One batch of replications as plain summary rows: what a sweep's worker process runs.

This module and what it imports (the model, the metrics, numpy, SimPy, the scenario schema) are all
that a worker needs: no pandas, pyarrow or command line, so a pool of spawned processes starts in
about half the time. The process that runs the sweep turns the rows into a typed frame
(:func:`sim.runner.summary_frame`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.metrics import METRIC_COLUMNS
from sim.model.events import Event
from sim.replication import run_replication
from sim.scenario.schema import Scenario

if TYPE_CHECKING:
    from sim.posterior import BatchDraws

#: Columns of a sweep's summary rows: where the row comes from, the metrics, and the error of a
#: replication that raised (empty when it ran).
SWEEP_COLUMNS = ("point", "policy", *METRIC_COLUMNS, "error")


def batch_rows(
    scenario: Scenario,
    seed: int,
    point: int,
    policy: str,
    first: int,
    last: int,
    draws: BatchDraws | None = None,
) -> list[dict]:
    """Replications ``first``..``last - 1`` of one scenario, one summary row (a dict) each; with
    ``draws``, each replication runs its posterior draw (:mod:`sim.posterior`).

    A replication that raises becomes a row with its ``rep`` and ``seed``, no metrics and the error
    in ``error``; the batch goes on.
    """
    return batch_rows_and_events(scenario, seed, point, policy, first, last, False, draws)[0]


def batch_rows_and_events(
    scenario: Scenario,
    seed: int,
    point: int,
    policy: str,
    first: int,
    last: int,
    keep_events: bool,
    draws: BatchDraws | None = None,
) -> tuple[list[dict], list[Event], list[int]]:
    """:func:`batch_rows`, and with ``keep_events`` the batch's event rows and the replication of
    each."""
    from sim.posterior import scenario_of

    rows: list[dict] = []
    events: list[Event] = []
    rep_index: list[int] = []
    for rep in range(first, last):
        sc, draw = scenario_of(scenario, draws, rep)
        try:
            result = run_replication(sc, seed, rep)
            rows.append({"point": point, "policy": policy, **result.metrics, "draw": draw, "error": ""})
            if keep_events:
                events.extend(result.events)
                rep_index.extend([rep] * len(result.events))
        except Exception as exc:  # noqa: BLE001 - a failed replication is data, not a crash
            rows.append(
                {
                    "point": point,
                    "policy": policy,
                    "rep": rep,
                    "seed": seed,
                    "draw": draw,
                    "error": f"{type(exc).__name__}: {exc}",
                }
            )
    return rows, events, rep_index
