"""Summary statistics of one replication over a time window, computed from its event log.

Each statistic is a number (NaN where it does not exist, e.g. the block time of a package that had
no bomber). A :class:`Window` gives the hours (since 00:00 of the scenario's start date, end
exclusive) and optional filters: ``country`` and ``location`` (base or facility name) of the event,
``asset`` of a strike (fighter, bomber, drone), ``trigger`` (key of a documented attack) for lags.

* ``attacks``, ``us_killed``: attacks in the window, and the US killed in them;
* ``us_injured``: US injured *as reported* in the window: at the attack, and later diagnoses
  (``injury_report`` rows) at their report time;
* ``strikes``: US strike packages with a strike in the window (an armed-drone strike counts apart);
  with ``asset = "planned"`` only planned strikes (fighter or bomber packages), with
  ``asset = "self_defense"`` only self-defence engagements of launch teams;
* ``militia_killed_per_strike``: militia killed over strike packages in the window (NaN if none);
* ``response_lag_hours``: the median, over the attacks in the window of severity serious injuries
  or worse, of the hours to the next planned strike (NaN if none);
* ``militia_killed``, ``civilians_killed``, ``targets_struck``, ``targets_destroyed``,
  ``munitions``: sums over the strike rows (one per facility) in the window;
* ``package_targets``, ``package_destroyed``, ``package_munitions``, ``package_facilities``: the same
  for *the package*, the largest (most targets) with a strike in the window; ``country`` then
  restricts to its facilities in that country;
* ``package_block_hours``: that package's bomber mission, first take-off to last landing (hours);
* ``lag_hours``: from the trigger (the documented attack ``trigger``, else the first attack in the
  window that killed US personnel) to the first strike after it (hours).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from sim.metrics import count_strikes, lag_to_next_strike, strike_key, us_injured
from sim.model import events as ev
from sim.model.events import COL

_T, _EVENT, _COUNTRY, _LOCATION, _PACKAGE, _ASSET, _SEVERITY = (
    COL[k] for k in ("t_hours", "event", "country", "location", "package", "asset", "severity")
)
_PLANNED = ("fighter", "bomber")
#: severity index from which an attack's lag to the next planned strike counts (serious injuries)
SERIOUS = 2
_KILLED, _INJURED, _TARGETS, _DESTROYED, _MUNITIONS, _MKILLED, _CKILLED, _SCRIPTED = (
    COL[k]
    for k in (
        "us_killed",
        "us_injured",
        "targets",
        "destroyed",
        "munitions",
        "militia_killed",
        "civilians_killed",
        "scripted",
    )
)


class Window(NamedTuple):
    """Hours [start, end) since 00:00 of the start date, and optional filters (None: any)."""

    start: float
    end: float
    country: str | None = None
    location: str | None = None
    asset: str | None = None
    trigger: str | None = None


class Split:
    """One replication's rows split once by kind, so that many statistics read them cheaply."""

    __slots__ = ("attacks", "strikes", "takeoffs", "landings", "reports", "_times")

    def __init__(self, rows: Sequence[tuple]):
        self.attacks: list[tuple] = []
        self.strikes: list[tuple] = []
        self.takeoffs: list[tuple] = []
        self.landings: list[tuple] = []
        self.reports: list[tuple] = []
        by_kind = {
            ev.ATTACK: self.attacks,
            ev.STRIKE: self.strikes,
            ev.TAKEOFF: self.takeoffs,
            ev.LANDING: self.landings,
            ev.INJURY_REPORT: self.reports,
        }
        for r in rows:
            out = by_kind.get(r[_EVENT])
            if out is not None:
                out.append(r)
        self._times: dict[str | None, list[float]] = {}

    def attack_times(self, country: str | None) -> list[float]:
        """Times of the attacks (in one country, or all), in order: for counts over windows."""
        times = self._times.get(country)
        if times is None:
            times = [r[_T] for r in self.attacks if country is None or r[_COUNTRY] == country]
            self._times[country] = times
        return times


def _asset_is(asset: str, wanted: str | None) -> bool:
    return wanted is None or asset == wanted or (wanted == "planned" and asset in _PLANNED)


def _assets(wanted: str | None) -> tuple[str, ...] | None:
    """The assets a window's ``asset`` filter admits (None: any)."""
    return None if wanted is None else _PLANNED if wanted == "planned" else (wanted,)


def _in(rows: list[tuple], w: Window) -> list[tuple]:
    return [
        r
        for r in rows
        if w.start <= r[_T] < w.end
        and (w.country is None or r[_COUNTRY] == w.country)
        and (w.location is None or r[_LOCATION] == w.location)
        and _asset_is(r[_ASSET], w.asset)
    ]


def _attacks(s: Split, w: Window) -> float:
    if w.location is None and w.asset is None:  # a count of sorted times: two bisections
        times = s.attack_times(w.country)
        return float(bisect.bisect_left(times, w.end) - bisect.bisect_left(times, w.start))
    return float(len(_in(s.attacks, w)))


def _column_sum(rows_of: Callable[[Split], list[tuple]], col: int) -> Callable[[Split, Window], float]:
    def statistic(s: Split, w: Window) -> float:
        return float(sum(r[col] for r in _in(rows_of(s), w)))

    return statistic


def _strikes(s: Split, w: Window) -> float:
    return float(count_strikes(_in(s.strikes, w)))


def _the_package(s: Split, w: Window) -> list[tuple]:
    """Strike rows of the largest package striking in the window (ties: the first)."""
    rows = _in(s.strikes, w._replace(country=None, location=None))
    sizes: dict[tuple[int, bool], int] = {}
    for r in rows:
        key = strike_key(r)
        sizes[key] = sizes.get(key, 0) + r[_TARGETS]
    if not sizes:
        return []
    best = max(sizes, key=lambda k: sizes[k])  # dicts keep order: the first of equals wins
    return [r for r in s.strikes if strike_key(r) == best]


def _package_sum(col: int) -> Callable[[Split, Window], float]:
    def statistic(s: Split, w: Window) -> float:
        rows = _the_package(s, w)
        if not rows:
            return math.nan
        return float(sum(r[col] for r in rows if w.country is None or r[_COUNTRY] == w.country))

    return statistic


def _package_facilities(s: Split, w: Window) -> float:
    rows = _the_package(s, w)
    if not rows:
        return math.nan
    return float(len({r[_LOCATION] for r in rows if w.country is None or r[_COUNTRY] == w.country}))


def _package_block_hours(s: Split, w: Window) -> float:
    rows = _the_package(s, w)
    if not rows or rows[0][_ASSET] != "bomber":
        return math.nan
    package = rows[0][_PACKAGE]
    takeoffs = [r[_T] for r in s.takeoffs if r[_PACKAGE] == package]
    landings = [r[_T] for r in s.landings if r[_PACKAGE] == package]
    if not takeoffs or not landings:
        return math.nan
    return max(landings) - min(takeoffs)


def _lag_hours(s: Split, w: Window) -> float:
    if w.trigger is not None:
        times = [r[_T] for r in s.attacks if r[_SCRIPTED] == w.trigger]
    else:
        times = [r[_T] for r in _in(s.attacks, w._replace(asset=None)) if r[_KILLED] > 0]
    if not times:
        return math.nan
    return lag_to_next_strike(times[0], s.strikes, _assets(w.asset))


def _response_lag(s: Split, w: Window) -> float:
    lags = [
        lag
        for r in _in(s.attacks, w._replace(asset=None))
        if r[_SEVERITY] >= SERIOUS and not math.isnan(lag := lag_to_next_strike(r[_T], s.strikes, _PLANNED))
    ]
    if not lags:
        return math.nan
    lags.sort()
    n = len(lags)
    return lags[n // 2] if n % 2 else 0.5 * (lags[n // 2 - 1] + lags[n // 2])


def _killed_per_strike(s: Split, w: Window) -> float:
    packages = _strikes(s, w)
    return _column_sum(_strike_rows, _MKILLED)(s, w) / packages if packages else math.nan


def _us_injured(s: Split, w: Window) -> float:
    return float(us_injured(_in(s.attacks, w), _in(s.reports, w)))


def _attack_rows(s: Split) -> list[tuple]:
    return s.attacks


def _strike_rows(s: Split) -> list[tuple]:
    return s.strikes


#: Every statistic by name: ``f(split rows, window) -> float``.
STATISTICS: dict[str, Callable[[Split, Window], float]] = {
    "attacks": _attacks,
    "us_killed": _column_sum(_attack_rows, _KILLED),
    "us_injured": _us_injured,
    "strikes": _strikes,
    "militia_killed": _column_sum(_strike_rows, _MKILLED),
    "civilians_killed": _column_sum(_strike_rows, _CKILLED),
    "targets_struck": _column_sum(_strike_rows, _TARGETS),
    "targets_destroyed": _column_sum(_strike_rows, _DESTROYED),
    "munitions": _column_sum(_strike_rows, _MUNITIONS),
    "package_targets": _package_sum(_TARGETS),
    "package_destroyed": _package_sum(_DESTROYED),
    "package_munitions": _package_sum(_MUNITIONS),
    "package_facilities": _package_facilities,
    "package_block_hours": _package_block_hours,
    "lag_hours": _lag_hours,
    "response_lag_hours": _response_lag,
    "militia_killed_per_strike": _killed_per_strike,
}


def statistic(name: str, rows: Sequence[tuple] | Split, window: Window) -> float:
    """One statistic of one replication's event rows."""
    split = rows if isinstance(rows, Split) else Split(rows)
    return STATISTICS[name](split, window)
