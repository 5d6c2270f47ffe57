"""Per-replication metrics, computed from the event log alone.

Definitions (one row per replication):

* ``attacks``, ``attacks_<country>``: ``attack`` events, all and by country;
* ``us_killed``: summed over attacks; ``us_injured``: summed over attacks and the later diagnoses
  reported for them (``injury_report``);
* ``strikes``: US strike packages that reached their targets (a B-1B package on seven facilities is
  one strike; an armed-drone strike on a commander is one more); ``targets_struck``,
  ``targets_destroyed``, ``munitions_expended``, ``militia_killed``, ``civilians_killed`` sum the
  ``strike`` events;
* ``sorties_b1b``: bomber sorties flown (aircraft that took off);
* ``halted``: the patron ordered a halt (a ``halt`` event); ``halt_day``: days from the start to the
  first halt (NaN if none);
* ``lag_lethal_to_strike_hours``: from the first attack that killed US personnel to the first strike
  after it (NaN if either is missing);
* ``max_rung``: highest ladder rung reached; ``days_at_<rung>``: days whose current rung (the highest
  rung of the events of the last ``ladder.memory_days``) was that rung;
* ``outcome``: ``halted`` if the final ``outcome.window_days`` saw at most
  ``outcome.halted_max_attacks`` attacks; ``spiral`` if instead the ladder reached a lethal attack and
  the final window's attack rate is at least ``outcome.spiral_rate_ratio`` times the campaign mean;
  ``contained`` otherwise.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

from sim.model import events as ev
from sim.model.events import COL, Rung
from sim.scenario.schema import Scenario

if TYPE_CHECKING:  # pandas only for describe(): a worker that runs replications never imports it
    import pandas as pd

OUTCOMES = ("halted", "contained", "spiral")
RUNG_COLUMNS = tuple(f"days_at_{r.label}" for r in Rung)
METRIC_COLUMNS = (
    "rep",
    "seed",
    "draw",  # the posterior draw the replication ran (-1: the fitted point; sim.posterior)
    "attacks",
    "attacks_iraq",
    "attacks_syria",
    "attacks_jordan",
    "us_killed",
    "us_injured",
    "strikes",
    "sorties_b1b",
    "targets_struck",
    "targets_destroyed",
    "munitions_expended",
    "militia_killed",
    "civilians_killed",
    "halted",
    "halt_day",
    "lag_lethal_to_strike_hours",
    "max_rung",
    "outcome",
    *RUNG_COLUMNS,
)
#: Metrics that a comparison reports (numeric, one per replication).
NUMERIC_METRICS = tuple(m for m in METRIC_COLUMNS if m not in ("rep", "seed", "draw", "outcome"))
#: The metrics a table shows unless asked for others.
HEADLINE = (
    "attacks",
    "us_killed",
    "us_injured",
    "strikes",
    "militia_killed",
    "civilians_killed",
    "halted",
    "max_rung",
)

_T, _EVENT, _COUNTRY, _PACKAGE, _RUNG = (
    COL["t_hours"],
    COL["event"],
    COL["country"],
    COL["package"],
    COL["rung"],
)
_KILLED, _INJURED, _AIRCRAFT = COL["us_killed"], COL["us_injured"], COL["aircraft"]
_TARGETS, _DESTROYED, _MUNITIONS = COL["targets"], COL["destroyed"], COL["munitions"]
_MKILLED, _CKILLED, _ASSET = COL["militia_killed"], COL["civilians_killed"], COL["asset"]


# --- the definitions that the metrics, the calibration's statistics and the reports share ---------


def strike_key(row: tuple) -> tuple[int, bool]:
    """Which strike a ``strike`` row belongs to: its package, and an armed-drone strike on a
    commander apart from the package it came with (so it counts as one more strike)."""
    return row[_PACKAGE], row[_ASSET] == "drone"


def count_strikes(strike_rows: list[tuple]) -> int:
    """Strikes among ``strike`` rows: a B-1B package on seven facilities is one strike."""
    return len({strike_key(r) for r in strike_rows})


def lag_to_next_strike(
    t0_hours: float, strike_rows: list[tuple], assets: tuple[str, ...] | None = None
) -> float:
    """Hours from ``t0_hours`` to the first strike row after it (of one of ``assets``, or any);
    NaN if there is none. ``strike_rows`` in time order."""
    for r in strike_rows:
        if r[_T] > t0_hours and (assets is None or r[_ASSET] in assets):
            return r[_T] - t0_hours
    return math.nan


def us_injured(attack_rows: list[tuple], report_rows: list[tuple]) -> int:
    """US injured: reported with the attacks, plus the later diagnoses (``injury_report``)."""
    return sum(r[_INJURED] for r in attack_rows) + sum(r[_INJURED] for r in report_rows)


def replication_metrics(rows: Sequence[tuple], scenario: Scenario) -> dict:
    """Metrics of one replication from its event rows (see the module docstring)."""
    by_event: dict[str, list[tuple]] = {}
    for r in rows:  # one pass: rows grouped by event
        group = by_event.get(r[_EVENT])
        if group is None:
            by_event[r[_EVENT]] = [r]
        else:
            group.append(r)
    attacks = by_event.get(ev.ATTACK, [])
    strikes = by_event.get(ev.STRIKE, [])
    by_country = Counter(map(itemgetter(_COUNTRY), attacks))
    lethal = [r[_T] for r in attacks if r[_KILLED]]
    halts = [r[_T] for r in by_event.get(ev.HALT, ())]
    max_rung, rung_days = _ladder(rows, scenario)
    return {
        "attacks": len(attacks),
        "attacks_iraq": by_country["Iraq"],
        "attacks_syria": by_country["Syria"],
        "attacks_jordan": by_country["Jordan"],
        "us_killed": sum(map(itemgetter(_KILLED), attacks)),
        "us_injured": us_injured(attacks, by_event.get(ev.INJURY_REPORT, [])),
        "strikes": count_strikes(strikes),
        "sorties_b1b": sum(map(itemgetter(_AIRCRAFT), by_event.get(ev.TAKEOFF, ()))),
        "targets_struck": sum(map(itemgetter(_TARGETS), strikes)),
        "targets_destroyed": sum(map(itemgetter(_DESTROYED), strikes)),
        "munitions_expended": sum(map(itemgetter(_MUNITIONS), strikes)),
        "militia_killed": sum(map(itemgetter(_MKILLED), strikes)),
        "civilians_killed": sum(map(itemgetter(_CKILLED), strikes)),
        "halted": bool(halts),
        "halt_day": halts[0] / 24.0 if halts else math.nan,
        "lag_lethal_to_strike_hours": lag_to_next_strike(lethal[0], strikes) if lethal else math.nan,
        "max_rung": max_rung,
        "outcome": _outcome(list(map(itemgetter(_T), attacks)), max_rung, scenario),
        **dict(zip(RUNG_COLUMNS, rung_days, strict=True)),
    }


def _ladder(rows: Sequence[tuple], s: Scenario) -> tuple[int, list[int]]:
    """Highest rung, and days spent at each rung (current rung = max over the trailing memory)."""
    if not rows:
        return 0, [int(round(s.horizon_hours / 24.0))] + [0] * (len(Rung) - 1)
    daily, current = ladder_by_day(rows, s)
    return int(daily.max()), np.bincount(current, minlength=len(Rung)).tolist()


def ladder_by_day(rows: Sequence[tuple], s: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Per day of the scenario: the highest rung of that day's events, and the current rung (the
    highest of the last ``ladder.memory_days`` days)."""
    n_days = int(round(s.horizon_hours / 24.0))
    n = len(rows)
    t = np.fromiter(map(itemgetter(_T), rows), np.float64, n)
    rungs = np.fromiter(map(itemgetter(_RUNG), rows), np.int64, n)
    days = np.zeros(n_days, dtype=np.int64)
    # events past the last day count on the last day
    np.maximum.at(days, np.minimum(t // 24.0, n_days - 1).astype(np.int64), rungs)
    return days, current_rungs(days, s)


def current_rungs(daily: np.ndarray, s: Scenario) -> np.ndarray:
    """The current rung of each day from the highest rung of each day's events (last axis: days):
    the highest of the trailing ``ladder.memory_days`` days, days before the start counting as 0.
    The one definition that the metrics, the ladder plot and the narration use.

    The trailing maximum over ``memory`` days is taken by doubling: the maxima over 1, 2, 4, ...
    days, then two overlapping windows of the largest power of two cover the memory exactly."""
    n_days = daily.shape[-1]
    memory = max(1, min(math.ceil(s.ladder.memory_days), n_days))
    pad = np.zeros((*daily.shape[:-1], memory - 1), dtype=daily.dtype)
    padded = np.concatenate([pad, daily], axis=-1)  # day d of the scenario at index d + memory - 1
    width, acc = 1, padded  # acc[..., i]: the maximum of padded[..., i : i + width]
    while 2 * width <= memory:
        acc = np.maximum(acc[..., :-width], acc[..., width:])
        width *= 2
    # window [d, d + memory): the windows of ``width`` days starting at d and at d + memory - width
    return np.maximum(acc[..., :n_days], acc[..., memory - width : memory - width + n_days])


def _outcome(attack_times: list[float], max_rung: int, s: Scenario) -> str:
    o = s.outcome
    horizon = s.horizon_hours
    window_h = min(o.window_days * 24.0, horizon)
    start = horizon - window_h
    final = len(attack_times) - bisect.bisect_left(attack_times, start)
    if final <= o.halted_max_attacks:
        return "halted"
    mean_rate = len(attack_times) / horizon
    if max_rung >= Rung.LETHAL_ATTACK and final / window_h >= o.spiral_rate_ratio * mean_rate:
        return "spiral"
    return "contained"


def format_number(x: float) -> str:
    """A metric value for a table: '-' for NaN, whole numbers without decimals, else 2 decimals."""
    if x != x:  # NaN
        return "-"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.2f}"


def describe(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean and 5-95% interval over replications of each numeric metric, and outcome shares.

    Only metric columns are described: the columns that say where a row comes from (``point``,
    ``policy``, ``error`` of a sweep or comparison) are not; describe each policy's rows apart.
    """
    import pandas as pd

    skip = {"rep", "seed", "draw", "point", "policy", "error", "outcome"}
    if "error" in summary:
        summary = summary[summary["error"].fillna("") == ""]
    rows = []
    for name in summary.columns:
        if name in skip or not (
            pd.api.types.is_numeric_dtype(summary[name]) or pd.api.types.is_bool_dtype(summary[name])
        ):
            continue
        values = summary[name].astype(float).dropna()
        if values.empty:
            rows.append((name, math.nan, math.nan, math.nan, 0))
            continue
        lo, hi = np.percentile(values, [5, 95])
        rows.append((name, values.mean(), lo, hi, len(values)))
    if "outcome" in summary:
        for outcome in OUTCOMES:
            share = float((summary["outcome"] == outcome).mean())
            rows.append((f"outcome={outcome}", share, math.nan, math.nan, len(summary)))
    return pd.DataFrame(rows, columns=["metric", "mean", "p5", "p95", "n"]).set_index("metric")
