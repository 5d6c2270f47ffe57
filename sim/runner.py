"""Many replications of one scenario, serially, into two pandas DataFrames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import NamedTuple

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
    """Event rows as a DataFrame with ``rep`` and a ``timestamp`` (local time, to the second) first."""
    frame = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    frame.insert(0, "rep", pd.Series(rep_index, dtype="int64"))
    start = pd.Timestamp(dt.datetime.combine(scenario.meta.start_date, dt.time()))
    offset = pd.to_timedelta(frame["t_hours"].astype(float), unit="h").dt.round("s")
    frame.insert(1, "timestamp", start + offset)
    for name, values in _categories(scenario).items():
        frame[name] = pd.Categorical(frame[name], categories=values)
    return frame


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
