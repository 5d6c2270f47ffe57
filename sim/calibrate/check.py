"""The predictive check: does the scenario reproduce the documented record, sharply?

``reps`` replications give each target's simulated distribution. A target on its own is judged by
where the documented set falls in that distribution and how much of it lands inside:

* **tails**: P(X >= low) and P(X <= high), the posterior-predictive tail probabilities of the
  documented set; the target FAILS if either is below ``check.tail_probability`` (the documented
  value lies where the model almost never goes);
* **share inside**: replications inside the documented set; the target FAILS if fewer than its
  ``min_share_inside`` (0 unless the targets file asks for more);
* **missing**: a target FAILS if more than ``check.max_missing_share`` of the replications lack
  its statistic (a lag needs a strike after its trigger, a package statistic needs a package);
* **CRPS** (continuous ranked probability score, scoringrules) of the simulated values at the
  documented point (the middle of a finite set, else its bound): reported, smaller is better.

A **series** (a dated path of cumulative counts from the record) is judged as a whole: the 5-95%
band must cover at least ``min_points_covered`` of its points, the mean relative width
(95% - 5%) / value must be at most ``max_relative_width``, and the model's mean CRPS over the
points at most ``max_crps_ratio`` times that of a naive reference: a Poisson process at a constant
rate (``reference_total`` in ``reference_days``). Beside it the check prints CRPS on the increments
between dated points (cumulative counts are strongly correlated), the score of a second naive
reference (persistence: the rate of the last observed interval carried forward, which sees the
record up to the previous point), the energy score of the whole path, and the share of
replications whose whole path stays within each point's tolerance.

The **story** (``[story]``) is the share of replications in which every listed target lands inside
its set at once; the check FAILS below its ``min_share``. A target of kind ``input`` compares the
scenario's value with the documented one instead.

Every threshold is a key of the targets file (``[check]``, a target's ``min_share_inside``, a
series' limits, ``[story]``). Where the documented numbers cannot all hold under the model's
physical limits, the check says so and names how the model resolves it (:func:`physical_notes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scoringrules as sr

from sim.calibrate.priors import current_value
from sim.calibrate.statistics import Split
from sim.calibrate.targets import (
    CheckRules,
    Documented,
    Series,
    TargetsFile,
    compile_targets,
    documented_interval,
    load_targets,
    scenario_path,
)
from sim.replication import run_replication
from sim.scenario.schema import Scenario

if TYPE_CHECKING:
    from sim.posterior import BatchDraws


@dataclass(frozen=True)
class TargetCheck:
    """One row of the predictive check."""

    name: str
    statistic: str
    documented: str
    median: float
    p5: float
    p95: float
    share_inside: float  # replications inside the documented set (NaN for inputs)
    missing: int  # replications where the statistic does not exist (no package, no trigger)
    passed: bool
    source: str
    quote: str
    note: str = ""
    tail_low: float = math.nan  # P(X >= low): small when the model runs below the record
    tail_high: float = math.nan  # P(X <= high): small when the model runs above it
    crps: float = math.nan
    why: str = ""  # the first rule the target breaks ("" if it passes)

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class Scores:
    """Mean CRPS of a forecast over a series' points, of the cumulative counts and of the
    increments between them."""

    cumulative: float
    increments: float


@dataclass(frozen=True)
class SeriesCheck:
    """A dated path judged as a whole, with two naive references beside the model."""

    name: str
    points: int
    covered: int  # points whose documented value lies in the simulated 5-95% band
    relative_width: float  # mean of (95% - 5%) / documented value
    model: Scores
    constant: Scores  # Poisson process at the reference's constant rate
    persistence: Scores  # the last observed interval's rate carried forward
    energy_model: float  # energy score of the whole path
    energy_constant: float
    path_share: float  # replications whose whole path stays within each point's tolerance
    rules: Series
    passed: bool
    why: str = ""

    @property
    def crps_ratio(self) -> float:
        return self.model.cumulative / self.constant.cumulative


@dataclass(frozen=True)
class StoryCheck:
    targets: list[str]
    share: float
    min_share: float
    passed: bool


@dataclass(frozen=True)
class CheckResult:
    scenario: str
    reps: int
    seed: int
    rows: list[TargetCheck]
    notes: list[str]
    series: list[SeriesCheck] = field(default_factory=list)
    story: StoryCheck | None = None
    rules: CheckRules = CheckRules()

    @property
    def passed(self) -> bool:
        return (
            all(r.passed for r in self.rows)
            and all(s.passed for s in self.series)
            and (self.story is None or self.story.passed)
        )

    @property
    def failed(self) -> list[str]:
        """Names of what fails: targets, series, the story."""
        out = [r.name for r in self.rows if not r.passed]
        out += [f"series {s.name}" for s in self.series if not s.passed]
        if self.story is not None and not self.story.passed:
            out.append("story")
        return out


def simulate_statistics(
    scenario: Scenario, targets: list[Documented], reps: int, seed: int, draws: BatchDraws | None = None
) -> np.ndarray:
    """Array (reps x targets) of each target's statistic in replications 0..reps-1 of ``seed``
    (with ``draws``, each replication runs its posterior draw: :mod:`sim.posterior`)."""
    from sim.posterior import scenario_of

    out = np.empty((reps, len(targets)))
    for rep in range(reps):
        split = Split(run_replication(scenario_of(scenario, draws, rep)[0], seed, rep).events)
        for j, d in enumerate(targets):
            out[rep, j] = d.value(split)
    return out


def predictive_check(
    scenario: Scenario,
    targets: TargetsFile,
    reps: int = 200,
    seed: int = 0,
    folder: str | Path | None = None,
    draws: BatchDraws | None = None,
) -> CheckResult:
    """Run the check of ``scenario`` against every target of ``targets`` (see module docstring);
    ``folder`` is the targets file's folder, where its series' CSV files are. With ``draws`` the
    replications run a posterior's draws, and the check judges the posterior predictive (every
    draw's replications pooled)."""
    compiled = compile_targets(targets, scenario.meta.start_date, folder=folder)
    values = simulate_statistics(scenario, compiled, reps, seed, draws)
    by_name = {d.name: j for j, d in enumerate(compiled)}
    rules = targets.check
    rows = []
    for name, t in targets.targets.items():
        if t.kind == "input":
            rows.append(_input_row(name, t, targets, scenario))
            continue
        rows.append(target_row(compiled[by_name[name]], values[:, by_name[name]], rules))
    series = []
    for name, rule in targets.series.items():
        cols = [j for j, d in enumerate(compiled) if d.series == name]
        if cols:
            series.append(series_check(name, rule, [compiled[j] for j in cols], values[:, cols], seed))
    story = None
    if targets.story is not None:
        inside = np.ones(reps, dtype=bool)
        for name in targets.story.targets:
            d = compiled[by_name[name]]
            inside &= np.array([d.contains(v) for v in values[:, by_name[name]]])
        share = float(inside.mean()) if reps else math.nan
        story = StoryCheck(
            list(targets.story.targets), share, targets.story.min_share, share >= targets.story.min_share
        )
    return CheckResult(
        scenario.meta.name, reps, seed, rows, physical_notes(scenario, targets), series, story, rules
    )


@dataclass(frozen=True)
class SingleDraws:
    """The check run at single posterior draws, each on its own replications: how many pass."""

    draws: list[int]  # indices into the posterior file
    failed: list[list[str]]  # per draw, what fails
    reps: int

    @property
    def passed(self) -> int:
        return sum(not f for f in self.failed)

    @property
    def share(self) -> float:
        return self.passed / len(self.draws) if self.draws else math.nan


def single_draws(
    scenario: Scenario,
    targets: TargetsFile,
    draws: BatchDraws,
    count: int,
    reps: int,
    seed: int,
    folder: str | Path | None = None,
) -> SingleDraws:
    """The check at each of the first ``count`` groups' draws of ``draws`` (one draw a group of
    ``reps_per_draw`` replications: :mod:`sim.posterior`), each with ``reps`` replications of its
    own. A diagnostic: a draw at the edge of an honest posterior may fail."""
    from sim.scenario.values import with_values

    indices, failed = [], []
    groups = sorted(draws.groups)[:count]
    for g in groups:
        index, values = draws.groups[g]
        result = predictive_check(
            with_values(scenario, dict(zip(draws.keys, values, strict=True))), targets, reps, seed, folder
        )
        indices.append(index)
        failed.append(result.failed)
    return SingleDraws(indices, failed, reps)


def judge(x: np.ndarray, d: Documented, rules: CheckRules) -> str:
    """The first rule of the check that simulated values ``x`` (NaN where missing) break for the
    target ``d``, in words; "" when they break none."""
    present = x[~np.isnan(x)]
    if not present.size or present.size < (1.0 - rules.max_missing_share) * x.size:
        return f"missing in {x.size - present.size} of {x.size}"
    tail_low, tail_high = np.mean(present >= d.low), np.mean(present <= d.high)
    if tail_low < rules.tail_probability:
        return f"model below the record: P(X >= {d.low:g}) = {tail_low:.3f}"
    if tail_high < rules.tail_probability:
        return f"model above the record: P(X <= {d.high:g}) = {tail_high:.3f}"
    inside = float(np.mean([d.contains(v) for v in x]))
    if inside < d.target.min_share_inside:
        return f"{inside:.0%} inside, below {d.target.min_share_inside:.0%}"
    return ""


def passes(x: np.ndarray, d: Documented, rules: CheckRules | None = None) -> bool:
    """Whether simulated values ``x`` pass the check's rules for one target (:func:`judge`)."""
    return not judge(x, d, rules or CheckRules())


def target_row(d: Documented, x: np.ndarray, rules: CheckRules) -> TargetCheck:
    """One target's row of the check from its simulated values ``x``."""
    t = d.target
    present = x[~np.isnan(x)]
    if present.size:
        p5, median, p95 = np.percentile(present, [5, 50, 95])
        tail_low, tail_high = float(np.mean(present >= d.low)), float(np.mean(present <= d.high))
        crps = float(sr.crps_ensemble(d.point, present))
    else:
        p5 = median = p95 = tail_low = tail_high = crps = math.nan
    inside = float(np.mean([d.contains(v) for v in x])) if x.size else math.nan
    why = judge(x, d, rules)
    return TargetCheck(
        d.name,
        t.stat,
        d.text(),
        float(median),
        float(p5),
        float(p95),
        inside,
        int(x.size - present.size),
        not why,
        t.source,
        t.quote,
        t.note,
        tail_low,
        tail_high,
        crps,
        why,
    )


def series_check(name: str, rule: Series, points: list[Documented], x: np.ndarray, seed: int) -> SeriesCheck:
    """Judge a series' points (``x``: replications x points, cumulative counts from the scenario's
    start) as one path; ``seed`` draws the reference's sample paths for its energy score."""
    y = np.array([d.point for d in points])
    days = np.array([d.window.end / 24.0 for d in points])  # type: ignore[union-attr]
    tol = np.array([d.scale for d in points])
    x = np.nan_to_num(x, nan=0.0)
    lo, hi = np.percentile(x, [5, 95], axis=0)
    covered = int(np.sum((lo <= y) & (y <= hi)))
    width = float(np.mean((hi - lo) / np.maximum(y, 1.0)))
    rate = rule.reference_total / rule.reference_days  # per day
    d_days = np.diff(days, prepend=0.0)
    d_y = np.diff(y, prepend=0.0)
    d_x = np.diff(x, axis=1, prepend=0.0)
    model = Scores(float(np.mean(sr.crps_ensemble(y, x.T))), float(np.mean(sr.crps_ensemble(d_y, d_x.T))))
    constant = Scores(
        float(np.mean(sr.crps_poisson(y, rate * days))), float(np.mean(sr.crps_poisson(d_y, rate * d_days)))
    )
    # persistence: the rate of the interval before, carried over the next (the first interval
    # has no interval before it: the constant rate); the cumulative forecast adds it to the last
    # observed count, so it sees the record up to the point before
    prev_rate = np.concatenate([[rate], d_y[:-1] / np.maximum(d_days[:-1], 1e-9)])
    inc_mean = np.maximum(prev_rate * d_days, 1e-9)
    persistence_inc = np.asarray(sr.crps_poisson(d_y, inc_mean))
    persistence = Scores(float(np.mean(persistence_inc)), float(np.mean(persistence_inc)))
    rng = np.random.default_rng([seed, 7])
    reference_paths = np.cumsum(rng.poisson(rate * d_days, size=(x.shape[0], len(y))), axis=1)
    energy_model = float(sr.es_ensemble(y, x))
    energy_constant = float(sr.es_ensemble(y, reference_paths.astype(float)))
    path_share = float(np.mean(np.all(np.abs(x - y) <= tol, axis=1)))
    why = ""
    if covered < rule.min_points_covered:
        why = f"the 5-95% band covers {covered} of {len(y)} points, below {rule.min_points_covered}"
    elif width > rule.max_relative_width:
        why = f"mean relative band width {width:.2f}, above {rule.max_relative_width:g}"
    elif model.cumulative > rule.max_crps_ratio * constant.cumulative:
        why = (
            f"mean CRPS {model.cumulative:.2f} is {model.cumulative / constant.cumulative:.2f} "
            f"times the constant-rate reference's, above {rule.max_crps_ratio:g}"
        )
    return SeriesCheck(
        name,
        len(y),
        covered,
        width,
        model,
        constant,
        persistence,
        energy_model,
        energy_constant,
        path_share,
        rule,
        not why,
        why,
    )


def _input_row(name, t, targets: TargetsFile, scenario: Scenario) -> TargetCheck:
    low, _ = documented_interval(t, targets.words)
    value = float(current_value(scenario, t.input_key))
    return TargetCheck(
        name,
        "input " + t.input_key,
        f"{low:g}",
        value,
        value,
        value,
        math.nan,
        0,
        value == low,
        t.source,
        t.quote,
        t.note,
        why="" if value == low else f"the scenario sets {value:g}",
    )


def physical_notes(scenario: Scenario, targets: TargetsFile) -> list[str]:
    """Where documented counts and the model's physical limits cannot all hold, and what it does."""
    notes = []
    b = scenario.b1b
    capacity = b.aircraft_per_package * b.weapons_per_aircraft.get(b.loadout, 0)
    for t in targets.targets.values():
        if t.statistic != "package_munitions":
            continue
        documented, _ = documented_interval(t, targets.words)
        if b.enabled and documented > capacity:
            notes.append(
                f"{documented:g} munitions (article) exceed what {b.aircraft_per_package} B-1Bs carry: "
                f"{b.aircraft_per_package} x {b.weapons_per_aircraft.get(b.loadout, 0)} {b.loadout} "
                f"= {capacity} (docs/sources.md §1, §5.2). The model keeps the B-1B loads and "
                f"delivers a share b1b.weapon_share = {b.weapon_share:g} of a package's weapons "
                f"from the bombers and the rest from in-theatre aircraft "
                f"({scenario.theatre.munition}, theatre.*), as CENTCOM's 'numerous aircraft' allows."
            )
    block, miles = b.block_time_hours, b.round_trip_miles
    if any(
        t.statistic == "package_block_hours" or (t.input_key or "").startswith("b1b.")
        for t in targets.targets.values()
    ):
        notes.append(
            f"b1b.round_trip_miles = {miles:g} in b1b.block_time_hours = {block:g} averages "
            f"{miles / block:.0f} mph, slow for a B-1B unless routing and refuelling orbits add "
            f"time (docs/sources.md §5.1); the model takes both as documented inputs."
        )
    return notes


def find_targets_file(scenario_file: str | Path) -> Path | None:
    """The targets file whose ``scenario`` is ``scenario_file``, looked for in ``calibration/``
    (and ``calibration/history/``) of the scenario's folder or the nearest folder above it."""
    wanted = Path(scenario_file).resolve()
    for folder in wanted.parents:
        calibration = folder / "calibration"
        if not calibration.is_dir():
            continue
        for path in sorted([*calibration.glob("*.toml"), *calibration.glob("history/*.toml")]):
            try:
                text = path.read_text(encoding="utf-8")
            except OSError:
                continue
            if "[targets." not in text:
                continue
            if scenario_path(path, load_targets(path)) == wanted:
                return path
        return None
    return None
