"""Many replications: of one scenario, serially, into two pandas DataFrames (:func:`run`); and the
batches of a sweep as typed frames (:func:`run_batch`, :func:`summary_frame`). Where batches run is
:mod:`sim.backends` (its names are also importable from here)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from sim.backends import (  # noqa: F401  (importable from here, as before)
    DASK_NO_WORKER_S,
    DASK_POLL_S,
    Backend,
    InlineExecutor,
    scheduler_problem,
    windowed,
)
from sim.batch import SWEEP_COLUMNS, batch_rows, batch_rows_and_events
from sim.defaults import DEFAULT_REPS, DEFAULT_SEED
from sim.metrics import METRIC_COLUMNS
from sim.model import events as ev
from sim.model.events import COLUMNS
from sim.replication import run_replication
from sim.scenario.schema import COUNTRIES, WEAPON_TYPES, Scenario

if TYPE_CHECKING:
    from sim.posterior import BatchDraws

Progress = Callable[[int, int], None]


class RunResult(NamedTuple):
    """``summary``: one metrics row per replication; ``events``: one row per event."""

    summary: pd.DataFrame
    events: pd.DataFrame


#: Replications per chunk of :func:`run_chunks`: about 130 MB of event rows in memory at once.
CHUNK_REPS = 500


Draws = Callable[[int, int], "BatchDraws | None"]


def run(
    scenario: Scenario,
    reps: int = DEFAULT_REPS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
    events: bool = True,
    draws: Draws | None = None,
) -> RunResult:
    """Run replications 0..reps-1 of root seed ``seed``, all in memory.

    ``progress(done, total)`` is called after each replication. With ``events=False`` the event
    frame is empty (for large runs where only the summary matters). ``draws(first, last)`` gives
    the posterior draws of a range of replications (:func:`sim.posterior.batch_draws`; None: the
    scenario as it stands).
    """
    return _replications(scenario, seed, 0, reps, reps, progress, events, draws)


def run_chunks(
    scenario: Scenario,
    reps: int,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
    chunk: int = CHUNK_REPS,
    draws: Draws | None = None,
) -> Iterator[RunResult]:
    """The replications of :func:`run` in chunks of ``chunk`` (the same rows, in the same order),
    so that a caller writing each chunk to disk holds at most one chunk's events in memory."""
    if reps < 1:
        raise ValueError("reps must be at least 1")
    for first in range(0, reps, chunk):
        yield _replications(scenario, seed, first, min(first + chunk, reps), reps, progress, True, draws)


def _replications(
    scenario: Scenario,
    seed: int,
    first: int,
    last: int,
    total: int,
    progress: Progress | None,
    events: bool,
    draws: Draws | None = None,
) -> RunResult:
    from sim.posterior import scenario_of

    if last <= first:
        raise ValueError("reps must be at least 1")
    batch = draws(first, last) if draws is not None else None
    metrics = []
    rows: list[tuple] = []
    rep_index: list[int] = []
    for rep in range(first, last):
        sc, draw = scenario_of(scenario, batch, rep)
        result = run_replication(sc, seed, rep)
        metrics.append({**result.metrics, "draw": draw})
        if events:
            rows.extend(result.events)
            rep_index.extend([rep] * len(result.events))
        if progress is not None:
            progress(rep + 1, total)
    summary = pd.DataFrame(metrics, columns=list(METRIC_COLUMNS))
    return RunResult(summary, events_frame(rows, rep_index, scenario))


def events_frame(rows: Sequence[tuple], rep_index: list[int], scenario: Scenario) -> pd.DataFrame:
    """Event rows as a DataFrame with ``rep`` and a ``timestamp`` (local time, to the second) first.

    Built column by column: text columns become categoricals with fixed categories, the rest int64
    or float64.
    """
    categories = _categories(scenario)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    data: dict[str, object] = {"rep": np.array(rep_index, dtype=np.int64)}
    for name, values in zip(COLUMNS, columns, strict=True):
        if name in categories:
            data[name] = pd.Categorical(values, categories=categories[name])
        elif name == "detail":
            data[name] = np.array(values, dtype=object)
        elif name in _FLOATS:
            data[name] = np.array(values, dtype=np.float64)
        else:
            data[name] = np.array(values, dtype=np.int64)
    frame = pd.DataFrame(data)
    start = pd.Timestamp(dt.datetime.combine(scenario.meta.start_date, dt.time()))
    offset = pd.to_timedelta(frame["t_hours"], unit="h").dt.round("s")
    frame.insert(1, "timestamp", start + offset)
    return frame


_FLOATS = {"t_hours", "militia_capacity", "wait_hours"}


def _categories(s: Scenario) -> dict[str, list[str]]:
    """Fixed categories of the text columns: the same dtype whatever the events of a run."""
    places = [b.name for b in s.bases.values()] + [f.name for f in s.targets.facilities.values()]
    return {
        "event": list(ev.EVENT_NAMES),
        "actor": list(ev.ACTORS),
        "country": ["", *COUNTRIES],
        "location": ["", *dict.fromkeys(places)],
        "asset": list(ev.ASSETS),
        "weapon": ["", *WEAPON_TYPES],
        "scripted": ["", *s.scripted_attacks],
    }


# --- sweeps: batches of replications on one of three backends ------------------------------------


def run_batch(
    scenario: Scenario,
    seed: int,
    point: int,
    policy: str,
    first: int,
    last: int,
    draws: BatchDraws | None = None,
) -> pd.DataFrame:
    """Replications ``first``..``last - 1`` of one scenario as a typed summary frame
    (:func:`sim.batch.batch_rows`; a replication that raises is a row with its error)."""
    return summary_frame(batch_rows(scenario, seed, point, policy, first, last, draws))


def run_batch_with_events(
    scenario: Scenario,
    seed: int,
    point: int,
    policy: str,
    first: int,
    last: int,
    draws: BatchDraws | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`run_batch`, and the batch's event rows (with ``point`` and ``policy`` first)."""
    rows, events, rep_index = batch_rows_and_events(scenario, seed, point, policy, first, last, True, draws)
    log = events_frame(events, rep_index, scenario)
    log.insert(0, "policy", policy)
    log.insert(0, "point", point)
    return summary_frame(rows), log


_TEXT = ("policy", "outcome", "error")
_WHOLE = ("point", "rep", "seed", "draw")


def summary_frame(rows: list[dict]) -> pd.DataFrame:
    """A batch's summary rows (:func:`sim.batch.batch_rows`) as a frame of fixed dtypes, so that
    every batch file has the same schema whatever failed in it: text columns str ('' when missing),
    ``point``, ``rep`` and ``seed`` int64, every metric float64 (NaN for a failed replication)."""
    data: dict[str, object] = {}
    for name in SWEEP_COLUMNS:
        values = [r.get(name) for r in rows]
        if name in _TEXT:
            data[name] = np.array(["" if v is None else str(v) for v in values], dtype=object)
        elif name == "draw":  # -1: the fitted point (and a row that says nothing of it)
            data[name] = np.array([-1 if v is None else v for v in values], dtype=np.int64)
        elif name in _WHOLE:
            data[name] = np.array(values, dtype=np.int64)
        else:
            data[name] = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
