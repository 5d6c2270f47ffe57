"""The ladder's daily and current rungs against their plain definitions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim.metrics import current_rungs, ladder_by_day
from sim.model.events import COL, Event


def plain_current(daily: np.ndarray, memory_days: float) -> np.ndarray:
    """The highest rung of the trailing ``memory`` days, day by day, days before the start 0."""
    n = daily.shape[-1]
    memory = max(1, min(int(np.ceil(memory_days)), n))
    out = np.zeros_like(daily)
    for d in range(n):
        out[..., d] = daily[..., max(0, d - memory + 1) : d + 1].max(axis=-1)
    return out


def scenario(memory_days: float, horizon_days: int = 30) -> SimpleNamespace:
    return SimpleNamespace(ladder=SimpleNamespace(memory_days=memory_days), horizon_hours=horizon_days * 24.0)


RUNGS = st.integers(0, 6)


@given(
    daily=st.integers(1, 3).flatmap(
        lambda rows: arrays(np.int64, st.tuples(st.just(rows), st.integers(1, 60)), elements=RUNGS)
    ),
    memory=st.floats(0.1, 80.0),
)
def test_the_current_rung_is_the_highest_of_the_trailing_memory(daily, memory):
    s = scenario(memory)
    assert np.array_equal(current_rungs(daily, s), plain_current(daily, memory))
    assert np.array_equal(current_rungs(daily[0], s), plain_current(daily[0], memory))


def test_the_current_rung_check_can_fail():
    """A trailing window one day short is told apart from the definition."""
    daily = np.array([6, 0, 0, 0, 0])
    assert not np.array_equal(plain_current(daily, 3), plain_current(daily, 2))
    assert np.array_equal(current_rungs(daily, scenario(3)), [6, 6, 6, 0, 0])


@given(
    events=st.lists(st.tuples(st.floats(0.0, 40 * 24.0), st.integers(0, 6)), max_size=80),
    memory=st.floats(0.5, 20.0),
)
def test_the_daily_rung_is_the_highest_of_the_days_events(events, memory):
    s = scenario(memory, horizon_days=30)
    rows = [Event(t, "attack", "militia", rung=r) for t, r in sorted(events)]
    daily, current = ladder_by_day(rows, s)
    want = np.zeros(30, dtype=np.int64)
    for row in rows:  # events past the last day count on the last day
        day = min(int(row[COL["t_hours"]] // 24.0), 29)
        want[day] = max(want[day], row[COL["rung"]])
    assert np.array_equal(daily, want)
    assert np.array_equal(current, plain_current(want, memory))
