"""Per-replication metrics, computed from the event log alone.

Definitions (one row per replication):

* ``attacks``, ``attacks_<country>``: ``attack`` events, all and by country;
* ``us_killed``, ``us_injured``: summed over attacks;
* ``strikes``: US strike packages that reached their targets (a B-1B package on seven facilities is
  one strike; an armed-drone strike on a commander is one more); ``targets_struck``,
  ``targets_destroyed``, ``munitions_expended``, ``militia_killed``, ``civilians_killed`` sum the
  ``strike`` events;
* ``sorties_b1b``: bomber sorties flown (aircraft that took off);
* ``halted``: the militia entered the halt at least once; ``halt_day``: days from the start to the
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

import math

import numpy as np
import pandas as pd

from sim.model import events as ev
from sim.model.events import COL, Rung
from sim.scenario.schema import Scenario

OUTCOMES = ("halted", "contained", "spiral")
RUNG_COLUMNS = tuple(f"days_at_{r.label}" for r in Rung)
METRIC_COLUMNS = (
    "rep", "seed", "attacks", "attacks_iraq", "attacks_syria", "attacks_jordan", "us_killed",
    "us_injured", "strikes", "sorties_b1b", "targets_struck", "targets_destroyed",
    "munitions_expended", "militia_killed", "civilians_killed", "halted", "halt_day",
    "lag_lethal_to_strike_hours", "max_rung", "outcome", *RUNG_COLUMNS,
)

_T, _EVENT, _COUNTRY, _PACKAGE, _RUNG = COL["t_hours"], COL["event"], COL["country"], \
    COL["package"], COL["rung"]
_KILLED, _INJURED, _AIRCRAFT = COL["us_killed"], COL["us_injured"], COL["aircraft"]
_TARGETS, _DESTROYED, _MUNITIONS = COL["targets"], COL["destroyed"], COL["munitions"]
_MKILLED, _CKILLED, _ASSET = COL["militia_killed"], COL["civilians_killed"], COL["asset"]


def replication_metrics(rows: list[tuple], scenario: Scenario) -> dict:
    """Metrics of one replication from its event rows (see the module docstring)."""
    by_country = {"Iraq": 0, "Syria": 0, "Jordan": 0}
    attack_times = []
    killed = injured = sorties = struck = destroyed = munitions = mkilled = ckilled = 0
    packages: set[tuple[int, str]] = set()
    halt_day = math.nan
    first_lethal = math.nan
    lag = math.nan
    days: list[int] = []
    rungs: list[int] = []
    for r in rows:
        kind = r[_EVENT]
        if r[_RUNG] > 0:
            days.append(int(r[_T] // 24.0))
            rungs.append(r[_RUNG])
        if kind == ev.ATTACK:
            attack_times.append(r[_T])
            by_country[r[_COUNTRY]] += 1
            killed += r[_KILLED]
            injured += r[_INJURED]
            if r[_KILLED] and first_lethal != first_lethal:
                first_lethal = r[_T]
        elif kind == ev.STRIKE:
            packages.add((r[_PACKAGE], r[_ASSET] == "drone"))
            struck += r[_TARGETS]
            destroyed += r[_DESTROYED]
            munitions += r[_MUNITIONS]
            mkilled += r[_MKILLED]
            ckilled += r[_CKILLED]
            if lag != lag and r[_T] > first_lethal:
                lag = r[_T] - first_lethal
        elif kind == ev.TAKEOFF:
            sorties += r[_AIRCRAFT]
        elif kind == ev.HALT and halt_day != halt_day:
            halt_day = r[_T] / 24.0
    max_rung, rung_days = _ladder(days, rungs, scenario)
    return {
        "attacks": len(attack_times),
        "attacks_iraq": by_country["Iraq"],
        "attacks_syria": by_country["Syria"],
        "attacks_jordan": by_country["Jordan"],
        "us_killed": killed,
        "us_injured": injured,
        "strikes": len(packages),
        "sorties_b1b": sorties,
        "targets_struck": struck,
        "targets_destroyed": destroyed,
        "munitions_expended": munitions,
        "militia_killed": mkilled,
        "civilians_killed": ckilled,
        "halted": halt_day == halt_day,
        "halt_day": halt_day,
        "lag_lethal_to_strike_hours": lag,
        "max_rung": max_rung,
        "outcome": _outcome(attack_times, max_rung, scenario),
        **dict(zip(RUNG_COLUMNS, rung_days, strict=True)),
    }


def _ladder(days: list[int], rungs: list[int], s: Scenario) -> tuple[int, list[int]]:
    """Highest rung, and days spent at each rung (current rung = max over the trailing memory)."""
    n_days = int(round(s.horizon_hours / 24.0))
    if not rungs:
        return 0, [n_days] + [0] * (len(Rung) - 1)
    daily = np.zeros(n_days, dtype=np.int64)
    np.maximum.at(daily, np.minimum(days, n_days - 1), rungs)
    current = daily.copy()
    for k in range(1, min(math.ceil(s.ladder.memory_days), n_days)):
        np.maximum(current[k:], daily[:-k], out=current[k:])
    return int(max(rungs)), np.bincount(current, minlength=len(Rung)).tolist()


def _outcome(attack_times: list[float], max_rung: int, s: Scenario) -> str:
    o = s.outcome
    window_h = min(o.window_days * 24.0, s.horizon_hours)
    final = sum(1 for t in attack_times if t >= s.horizon_hours - window_h)
    if final <= o.halted_max_attacks:
        return "halted"
    mean_rate = len(attack_times) / s.horizon_hours
    if max_rung >= Rung.LETHAL_ATTACK and final / window_h >= o.spiral_rate_ratio * mean_rate:
        return "spiral"
    return "contained"


def describe(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean and 5-95% interval over replications of each numeric metric, and outcome shares."""
    skip = {"rep", "seed"}
    rows = []
    for name in summary.columns:
        if name in skip or name == "outcome":
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
