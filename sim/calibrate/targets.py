"""Calibration targets: documented counts, each with its words, window, statistic and kind.

A targets file (TOML) names the scenario it describes, a table of stated ranges for words such as
"dozens", and one ``[targets.<name>]`` table per documented count::

    scenario = "../scenarios/baseline.toml"

    [words]
    dozens = [24, 99]

    [targets.attacks_to_feb_strikes]
    quote = "more than 170 attacks on US bases in Iraq, Jordan and Syria"
    source = "article"
    window = [2023-10-17, 2024-02-02]
    statistic = "attacks"
    kind = "at_least"
    value = 171

Every kind turns into a *documented set*, a closed interval of the real line:

* ``exact``: ``value``, i.e. [value, value];
* ``at_least`` ("more than 170" is at least 171) and ``at_most``: a half-line;
* ``range`` ("54-55"): [low, high];
* ``words`` ("dozens"): the range that ``[words]`` states for the word;
* ``halted``: at most ``max_attacks`` attacks in the window, i.e. [0, max_attacks] of ``attacks``;
* ``input``: the documented value is a scenario input (``input_key``), compared, never simulated.

The statistics themselves are in :mod:`sim.calibrate.statistics`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.calibrate.statistics import STATISTICS, Split, Window
from sim.scenario.loader import ScenarioError, load_model

Kind = Literal["exact", "at_least", "at_most", "range", "words", "halted", "input"]
When = dt.date | dt.datetime

#: Distance of a replication whose statistic could not be computed (no package, no trigger), in
#: tolerances: large enough that such a replication is never accepted at a small epsilon.
MISSING_PENALTY = 10.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    """One documented count and how the model's output is compared with it."""

    quote: str = Field(min_length=1, description="the source's own words")
    source: str = Field(
        min_length=1, description="'article' (the source article), or where else the number comes from"
    )
    kind: Kind
    statistic: str | None = Field(None, description="a name from sim.calibrate.statistics.STATISTICS")
    window: tuple[When, When] | None = Field(
        None, description="first and last day (inclusive), or exact local times"
    )
    value: float | None = None
    low: float | None = None
    high: float | None = None
    words: str | None = None
    max_attacks: Annotated[int, Field(ge=0)] | None = None
    tolerance: Annotated[float, Field(gt=0.0)] | None = Field(
        None,
        description="distance scale: a miss by one tolerance counts 1 (default: 10% of the "
        "documented value, at least 1)",
    )
    weight: Annotated[float, Field(ge=0.0)] = 1.0
    calibrate: bool = Field(True, description="false: checked by `esim check` but not fitted")
    country: str | None = None
    location: str | None = None
    asset: Literal["fighter", "bomber", "drone", "self_defense", "planned"] | None = Field(
        None, description="strikes by this asset only ('planned': fighter or bomber packages)"
    )
    min_share_inside: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.0, description="the check fails if fewer replications than this land inside the set"
    )
    trigger: str | None = Field(None, description="key of the documented attack a lag starts from")
    block: str | None = Field(
        None,
        description="the group of targets whose misses the calibration's likelihood takes jointly "
        "(targets of one block are correlated; blocks are taken as independent); default: its name",
    )
    input_key: str | None = Field(None, description="scenario key that sets the documented value")
    note: str = ""

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Target:
        need = {
            "exact": ("value",),
            "at_least": ("value",),
            "at_most": ("value",),
            "range": ("low", "high"),
            "words": ("words",),
            "halted": ("max_attacks",),
            "input": ("value", "input_key"),
        }[self.kind]
        for name in need:
            if getattr(self, name) is None:
                raise ValueError(f"kind '{self.kind}' needs '{name}'")
        if self.kind == "range" and self.low > self.high:  # type: ignore[operator]
            raise ValueError("low is above high")
        if self.kind == "input":
            return self
        statistic = "attacks" if self.kind == "halted" else self.statistic
        if statistic is None:
            raise ValueError("needs 'statistic'")
        if statistic not in STATISTICS:
            raise ValueError(f"unknown statistic '{statistic}' (known: {', '.join(STATISTICS)})")
        if self.window is None:
            raise ValueError("needs 'window' (first and last day)")
        if _as_datetime(self.window[0], False) > _as_datetime(self.window[1], True):
            raise ValueError("window ends before it starts")
        return self

    @property
    def stat(self) -> str:
        """The statistic compared with this target."""
        return "attacks" if self.kind == "halted" else str(self.statistic)


Share = Annotated[float, Field(ge=0.0, le=1.0)]


class Series(_Strict):
    """A dated path of cumulative counts from a CSV file of the record (one target per row).

    Row ``i`` becomes the target ``<name>@<date>``: the statistic from ``start`` 00:00 to the row's
    date at ``report_hour`` local time, exactly the row's value, with the row's source.
    """

    quote: str = Field(min_length=1)
    file: str = Field(description="CSV file, relative to the targets file")
    date_column: str = "as_of_date"
    column: str = Field(description="the column of cumulative counts (empty cells are skipped)")
    statistic: str
    country: str | None = None
    start: dt.date
    report_hour: Annotated[float, Field(ge=0.0, le=24.0)] = 12.0
    tolerance_share: Annotated[float, Field(gt=0.0)] = Field(
        0.1, description="distance scale of a point: this share of its value, at least 2"
    )
    weight: Annotated[float, Field(ge=0.0)] = Field(1.0, description="distance weight of each point")
    calibrate: bool = True
    block: str | None = Field(
        None, description="the calibration's block of every point; default: the series' name"
    )
    reference_total: Annotated[float, Field(gt=0.0)] = Field(
        description="the constant-rate reference forecast: this many in reference_days"
    )
    reference_days: Annotated[float, Field(gt=0.0)]
    min_points_covered: Annotated[int, Field(ge=0)] = Field(
        0, description="the check fails if the 5-95% band covers fewer of the points"
    )
    max_relative_width: Annotated[float, Field(gt=0.0)] = Field(
        math.inf, description="the check fails if the mean of (95% - 5%) / value is above this"
    )
    max_crps_ratio: Annotated[float, Field(gt=0.0)] = Field(
        math.inf,
        description="the check fails if the model's mean CRPS over the points is above "
        "this times the constant-rate reference's",
    )
    note: str = ""

    @model_validator(mode="after")
    def _known_statistic(self) -> Series:
        if self.statistic not in STATISTICS:
            raise ValueError(f"unknown statistic '{self.statistic}' (known: {', '.join(STATISTICS)})")
        return self


class CheckRules(_Strict):
    """The predictive check's thresholds: every number that decides PASS or FAIL, named."""

    tail_probability: Annotated[float, Field(ge=0.0, lt=0.5)] = Field(
        0.01,
        description="a target fails when the documented set lies in a tail beyond this: "
        "P(X >= low) or P(X <= high) below it",
    )
    max_missing_share: Share = Field(
        0.5, description="a target fails when more replications than this lack its statistic"
    )


class Story(_Strict):
    """The documented story at once: every listed target inside its set in one replication."""

    targets: list[str] = Field(min_length=1)
    min_share: Share = Field(description="the check fails if fewer replications tell the story")
    note: str = ""


class TargetsFile(_Strict):
    scenario: str = Field(description="the scenario these targets describe, relative to this file")
    description: str = ""
    check: CheckRules = CheckRules()
    words: dict[str, tuple[float, float]] = {}
    targets: dict[str, Target]
    series: dict[str, Series] = {}
    story: Story | None = None

    @model_validator(mode="after")
    def _words_known(self) -> TargetsFile:
        for name, t in self.targets.items():
            if t.kind == "words" and t.words not in self.words:
                raise ValueError(f"targets.{name}.words: '{t.words}' is not in [words]")
        if self.story is not None:
            for name in self.story.targets:
                if name not in self.targets:
                    raise ValueError(f"story.targets: '{name}' is not a key of [targets]")
        return self


class Documented:
    """A target compiled for one scenario: its documented interval, scale and window in hours;
    ``series`` names the dated path it is a point of (None for a target on its own)."""

    __slots__ = ("name", "target", "low", "high", "scale", "window", "series", "block")

    def __init__(
        self,
        name: str,
        target: Target,
        words: dict[str, tuple[float, float]],
        start_date: dt.date,
        series: str | None = None,
        block: str | None = None,
    ):
        self.name = name
        self.target = target
        self.series = series
        self.block = block or target.block or series or name
        self.low, self.high = documented_interval(target, words)
        self.scale = target.tolerance or _default_scale(self.low, self.high)
        self.window = (
            None
            if target.window is None
            else Window(
                _hours(target.window[0], False, start_date),
                _hours(target.window[1], True, start_date),
                target.country,
                target.location,
                target.asset,
                target.trigger,
            )
        )

    def value(self, split: Split) -> float:
        """This target's statistic in one replication (rounded to 9 decimals: sums of hours carry
        float noise that would put 44.000000001 outside an exact 44)."""
        assert self.window is not None, f"{self.name}: an input target has no statistic"
        return round(STATISTICS[self.target.stat](split, self.window), 9)

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    @property
    def point(self) -> float:
        """The documented value a proper score is taken at: the middle of a finite set, else its
        finite bound."""
        lo, hi = self.low, self.high
        return lo if math.isinf(hi) else hi if math.isinf(lo) else 0.5 * (lo + hi)

    def distance(self, x: float) -> float:
        """Distance of a simulated value from the documented set, in tolerances (0 inside)."""
        if math.isnan(x):
            return MISSING_PENALTY
        if x < self.low:
            return (self.low - x) / self.scale
        if x > self.high:
            return (x - self.high) / self.scale
        return 0.0

    def text(self) -> str:
        """The documented set in words, e.g. '171 or more', '54-55', '3'."""
        t = self.target
        if t.kind == "halted":
            return f"halted: at most {t.max_attacks} attacks"
        if t.kind == "words":
            return f"'{t.words}' ({_num(self.low)}-{_num(self.high)})"
        if self.low == self.high:
            return _num(self.low)
        if math.isinf(self.high):
            return f"{_num(self.low)} or more"
        if self.low == -math.inf:
            return f"at most {_num(self.high)}"
        return f"{_num(self.low)}-{_num(self.high)}"


def documented_interval(t: Target, words: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """The documented set of a target as a closed interval (bounds may be infinite)."""
    if t.kind in ("exact", "input"):
        return float(t.value), float(t.value)  # type: ignore[arg-type]
    if t.kind == "at_least":
        return float(t.value), math.inf  # type: ignore[arg-type]
    if t.kind == "at_most":
        return -math.inf, float(t.value)  # type: ignore[arg-type]
    if t.kind == "range":
        return float(t.low), float(t.high)  # type: ignore[arg-type]
    if t.kind == "words":
        low, high = words[str(t.words)]
        return float(low), float(high)
    assert t.max_attacks is not None  # checked by Target's validator for kind "halted"
    return 0.0, float(t.max_attacks)


def _default_scale(low: float, high: float) -> float:
    finite = [abs(v) for v in (low, high) if math.isfinite(v)]
    return max(1.0, 0.1 * (sum(finite) / len(finite))) if finite else 1.0


def _num(v: float) -> str:
    return f"{v:g}"


def _as_datetime(when: When, end: bool) -> dt.datetime:
    """A window bound as a datetime: a date starts at 00:00 or, as an end, ends at 24:00."""
    if isinstance(when, dt.datetime):
        return when
    return dt.datetime.combine(when, dt.time()) + (dt.timedelta(days=1) if end else dt.timedelta())


def _hours(when: When, end: bool, start_date: dt.date) -> float:
    delta = _as_datetime(when, end) - dt.datetime.combine(start_date, dt.time())
    return delta.total_seconds() / 3600.0


def load_targets(path: str | Path) -> TargetsFile:
    """Read and validate a targets file; errors name the file, the key path and the reason."""
    return load_model(path, TargetsFile)


def scenario_path(path: str | Path, targets: TargetsFile) -> Path:
    """The scenario file a targets file describes."""
    return (Path(path).parent / targets.scenario).resolve()


def compile_targets(
    targets: TargetsFile, start_date: dt.date, only_calibrated: bool = False, folder: str | Path | None = None
) -> list[Documented]:
    """The simulated targets (not ``input``) compiled for a scenario starting on ``start_date``:
    the targets on their own, then the points of each series (``folder``: where the targets file
    is, to find the series' CSV files; without it, no series)."""
    out = [
        Documented(name, t, targets.words, start_date)
        for name, t in targets.targets.items()
        if t.kind != "input" and (t.calibrate or not only_calibrated)
    ]
    if folder is not None:
        for name, series in targets.series.items():
            if series.calibrate or not only_calibrated:
                out.extend(series_points(name, series, Path(folder), start_date))
    return out


def series_rows(series: Series, folder: Path) -> list[tuple[dt.date, float, dict[str, str]]]:
    """(date, value, row) of each row of a series' CSV file with a value in its column."""
    import csv

    path = folder / series.file
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ScenarioError(path, "", f"cannot read the series file ({exc.strerror})") from None
    out = []
    for i, row in enumerate(rows, start=2):
        for col in (series.date_column, series.column):
            if col not in row:
                raise ScenarioError(path, col, "no such column")
        cell = (row[series.column] or "").strip()
        if not cell:
            continue
        try:
            out.append((dt.date.fromisoformat(row[series.date_column].strip()), float(cell), row))
        except ValueError as exc:
            raise ScenarioError(path, f"line {i}", str(exc)) from None
    return out


def series_points(name: str, series: Series, folder: Path, start_date: dt.date) -> list[Documented]:
    """The points of one series as exact targets ``<name>@<date>``."""
    out = []
    for day, value, row in series_rows(series, folder):
        end = dt.datetime.combine(day, dt.time()) + dt.timedelta(hours=series.report_hour)
        target = Target(
            quote=f"{series.quote}: {value:g} as of {day.isoformat()}",
            source=" ".join(x for x in (row.get("source_title", ""), row.get("source_url", "")) if x)
            or series.file,
            kind="exact",
            value=value,
            statistic=series.statistic,
            window=(dt.datetime.combine(series.start, dt.time()), end),
            country=series.country,
            tolerance=max(2.0, series.tolerance_share * value),
            weight=series.weight,
            note="approximate" if (row.get("approximate") or "").strip() == "true" else "",
        )
        out.append(
            Documented(f"{name}@{day.isoformat()}", target, {}, start_date, series=name, block=series.block)
        )
    return out


def file_hash(*paths: str | Path) -> str:
    """SHA-256 over the bytes of some files (to tell whether a calibration's inputs changed)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()
