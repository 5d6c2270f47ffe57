"""The predictive check: does the scenario reproduce each documented count?

For each target, ``reps`` replications give the simulated median and 90% interval (5th to 95th
percentile) of its statistic. A target PASSES when its documented set meets that interval: the
documented count is something the model could plausibly have produced. The interval is taken over
the replications where the statistic exists (a lag needs a strike after its trigger, a package
statistic needs a package); a target whose statistic is missing in more than half of them FAILS. The
share of replications that land inside the documented set is reported beside it. A target of kind
``input`` compares the scenario's value with the documented one instead.

Where the documented numbers cannot all hold under the model's physical limits, the check says so
and names how the model resolves it (:func:`physical_notes`); it changes no parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.calibrate.priors import current_value
from sim.calibrate.statistics import Split
from sim.calibrate.targets import (
    Documented,
    TargetsFile,
    compile_targets,
    documented_interval,
    load_targets,
    scenario_path,
)
from sim.replication import run_replication
from sim.scenario.schema import Scenario


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

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class CheckResult:
    scenario: str
    reps: int
    seed: int
    rows: list[TargetCheck]
    notes: list[str]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)


def simulate_statistics(scenario: Scenario, targets: list[Documented], reps: int,
                        seed: int) -> np.ndarray:
    """Array (reps x targets) of each target's statistic in replications 0..reps-1 of ``seed``."""
    out = np.empty((reps, len(targets)))
    for rep in range(reps):
        split = Split(run_replication(scenario, seed, rep).events)
        for j, d in enumerate(targets):
            out[rep, j] = d.value(split)
    return out


def predictive_check(scenario: Scenario, targets: TargetsFile, reps: int = 200,
                     seed: int = 0) -> CheckResult:
    """Run the check of ``scenario`` against every target of ``targets`` (see module docstring)."""
    compiled = compile_targets(targets, scenario.meta.start_date)
    values = simulate_statistics(scenario, compiled, reps, seed)
    by_name = {d.name: j for j, d in enumerate(compiled)}
    rows = []
    for name, t in targets.targets.items():
        if t.kind == "input":
            rows.append(_input_row(name, t, targets, scenario))
            continue
        d = compiled[by_name[name]]
        x = values[:, by_name[name]]
        present = x[~np.isnan(x)]
        if present.size:
            p5, median, p95 = np.percentile(present, [5, 50, 95])
        else:
            p5 = median = p95 = math.nan
        inside = float(np.mean([d.contains(v) for v in x])) if x.size else math.nan
        meets = passes(x, d)
        rows.append(TargetCheck(name, t.stat, d.text(), float(median), float(p5), float(p95),
                                inside, int(x.size - present.size), meets, t.source, t.quote,
                                t.note))
    return CheckResult(scenario.meta.name, reps, seed, rows, physical_notes(scenario, targets))


def passes(x: np.ndarray, d: Documented) -> bool:
    """The check's rule for one target: simulated values ``x`` (NaN where missing) pass when at
    most half are missing and the documented set meets their 5-95% interval."""
    present = x[~np.isnan(x)]
    if not present.size or 2 * present.size < x.size:
        return False
    p5, p95 = np.percentile(present, [5, 95])
    return not (p95 < d.low or p5 > d.high)


def _input_row(name, t, targets: TargetsFile, scenario: Scenario) -> TargetCheck:
    low, _ = documented_interval(t, targets.words)
    value = float(current_value(scenario, t.input_key))
    return TargetCheck(name, "input " + t.input_key, f"{low:g}", value, value, value, math.nan, 0,
                       value == low, t.source, t.quote, t.note)


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
                f"{documented:g} munitions (seed) exceed what {b.aircraft_per_package} B-1Bs carry: "
                f"{b.aircraft_per_package} x {b.weapons_per_aircraft.get(b.loadout, 0)} {b.loadout} "
                f"= {capacity} (reference/facts.md §1, §5.2). The model keeps the B-1B loads and "
                f"delivers a share b1b.weapon_share = {b.weapon_share:g} of a package's weapons "
                f"from the bombers and the rest from in-theatre aircraft "
                f"({scenario.theatre.munition}, theatre.*), as CENTCOM's 'numerous aircraft' allows.")
    block, miles = b.block_time_hours, b.round_trip_miles
    if any(t.statistic == "package_block_hours" or (t.input_key or "").startswith("b1b.")
           for t in targets.targets.values()):
        notes.append(
            f"b1b.round_trip_miles = {miles:g} in b1b.block_time_hours = {block:g} averages "
            f"{miles / block:.0f} mph, slow for a B-1B unless routing and refuelling orbits add "
            f"time (reference/facts.md §5.1); the model takes both as documented inputs.")
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
