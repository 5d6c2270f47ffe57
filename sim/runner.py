"""Many replications of one scenario, serially, into two pandas DataFrames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from sim.metrics import METRIC_COLUMNS
from sim.model import events as ev
from sim.model.events import COLUMNS
from sim.replication import run_replication
from sim.scenario.schema import COUNTRIES, WEAPON_TYPES, Scenario

Progress = Callable[[int, int], None]



class RunResult(NamedTuple):
    """``summary``: one metrics row per replication; ``events``: one row per event."""

    summary: pd.DataFrame
    events: pd.DataFrame


def run(scenario: Scenario, reps: int = 100, seed: int = 0, progress: Progress | None = None,
        events: bool = True) -> RunResult:
    """Run replications 0..reps-1 of root seed ``seed``.

    ``progress(done, total)`` is called after each replication. With ``events=False`` the event
    frame is empty (for large runs where only the summary matters).
    """
    if reps < 1:
        raise ValueError("reps must be at least 1")
    metrics = []
    rows: list[tuple] = []
    rep_index: list[int] = []
    for rep in range(reps):
        result = run_replication(scenario, seed, rep)
        metrics.append(result.metrics)
        if events:
            rows.extend(result.events)
            rep_index.extend([rep] * len(result.events))
        if progress is not None:
            progress(rep + 1, reps)
    summary = pd.DataFrame(metrics, columns=list(METRIC_COLUMNS))
    return RunResult(summary, events_frame(rows, rep_index, scenario))


def events_frame(rows: list[tuple], rep_index: list[int], scenario: Scenario) -> pd.DataFrame:
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
    }
