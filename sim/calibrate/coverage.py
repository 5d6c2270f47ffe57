"""Coverage of the calibration method on synthetic data drawn from known parameters.

Each synthetic data set draws a true background attack rate from its prior, simulates one
replication with it (no excitation and no US response, so the attacks are a Poisson process
whose rate is the parameter), and records the attacks in five periods as "documented" exact
counts. A small ABC-SMC then fits the rate, and the check is whether the 90% posterior interval
(5th to 95th weighted percentile) contains the truth. Over many data sets it should, about 90% of
the time; ABC with a final epsilon above zero gives wider posteriors, so coverage above 90% means
conservative intervals.

Run: ``python -m sim.calibrate.coverage [--datasets 40] [--seed 1] [--workers 2]`` (from the
project root).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from sim.backends import Backend
from sim.calibrate.priors import PriorsFile
from sim.calibrate.smc import Problem, Settings, calibrate, posterior, weighted_quantile
from sim.calibrate.statistics import statistic
from sim.calibrate.targets import TargetsFile, compile_targets
from sim.replication import run_replication
from sim.scenario.loader import load_scenario
from sim.scenario.schema import Scenario

#: The baseline made a plain Poisson process of attacks: no excitation, no US response, no
#: documented attack, until 20 Jan 2024.
POISSON_OVERRIDES = (
    "meta.end_date=2024-01-20",
    "militia.branching_ratio=0",
    "militia.counter_retaliation_attacks_per_severity=0",
    'command.policy="never"',
    "scripted_attacks.tower_22.enabled=false",
)
PERIODS = (
    ("2023-10-17", "2023-11-05"),
    ("2023-11-06", "2023-11-23"),
    ("2023-11-24", "2023-12-15"),
    ("2023-12-16", "2024-01-01"),
    ("2024-01-02", "2024-01-20"),
)
RATE_KEY = "militia.background_rate_per_day"
PRIOR = (0.2, 3.0)


def synthetic_problem(scenario: Scenario, truth: float, data_seed: int, seed: int) -> Problem:
    """A one-parameter calibration problem whose 'documented' counts come from ``truth``."""
    spec = {
        f"period_{i}": {
            "quote": "synthetic",
            "source": "synthetic",
            "kind": "exact",
            "value": 0,
            "statistic": "attacks",
            "window": list(w),
            "tolerance": 3.0,
        }
        for i, w in enumerate(PERIODS)
    }
    compiled = compile_targets(
        TargetsFile.model_validate({"scenario": "-", "targets": spec}), scenario.meta.start_date
    )
    from sim.calibrate.priors import with_values

    events = run_replication(with_values(scenario, {RATE_KEY: truth}), data_seed, 0).events
    for d in compiled:
        assert d.window is not None
        spec[d.name]["value"] = statistic("attacks", events, d.window)
    targets = TargetsFile.model_validate({"scenario": "-", "targets": spec})
    priors = PriorsFile.model_validate(
        {
            "targets": "-",
            "parameters": {
                "rate": {
                    "key": RATE_KEY,
                    "distribution": "uniform",
                    "low": PRIOR[0],
                    "high": PRIOR[1],
                    "reason": "synthetic",
                }
            },
        }
    )
    return Problem(scenario, compile_targets(targets, scenario.meta.start_date), priors, seed)


@dataclass(frozen=True)
class Coverage:
    datasets: int
    covered: int
    mean_width: float
    simulations: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.covered / self.datasets

    def interval(self) -> tuple[float, float]:
        """95% Clopper-Pearson interval of the coverage rate."""
        ci = binomtest(self.covered, self.datasets).proportion_ci(0.95)
        return float(ci.low), float(ci.high)


def _one_dataset(baseline: str, i: int, seed: int, settings: Settings, tmp: str) -> tuple[bool, float, int]:
    """Draw a truth, simulate its data, calibrate: (interval covers the truth, width, simulations)."""
    scenario = load_scenario(baseline, list(POISSON_OVERRIDES))
    truth = float(np.random.default_rng([seed, i]).uniform(*PRIOR))
    problem = synthetic_problem(scenario, truth, data_seed=seed * 100_003 + i, seed=seed + i)
    history = calibrate(problem, settings, Path(tmp) / f"abc_{i}.db", {"dataset": str(i)}).history
    post = posterior(history, problem)
    v, w = post["rate"].to_numpy(), post["weight"].to_numpy()
    lo, hi = weighted_quantile(v, w, 0.05), weighted_quantile(v, w, 0.95)
    return lo <= truth <= hi, hi - lo, int(history.total_nr_simulations)


def coverage_study(
    baseline: str | Path,
    datasets: int = 40,
    seed: int = 1,
    workers: int = 1,
    settings: Settings | None = None,
) -> Coverage:
    """Calibrate ``datasets`` synthetic data sets (in ``workers`` processes; each data set is
    seeded by its index, so the result does not depend on the number of workers). Without the
    resample-move (``move_steps=0``): it leaves the posterior as it is, so this is the coverage of
    the ABC-SMC itself."""
    settings = settings or Settings(
        population=80, budget=3_000, max_minutes=2.0, max_generations=5, workers=1, seed=seed, move_steps=0
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        args = [(str(baseline), i, seed, settings, tmp) for i in range(datasets)]
        results = [r for _, r in sorted(Backend(workers).map(_one_dataset, args), key=lambda x: x[0])]
    covered = sum(r[0] for r in results)
    return Coverage(
        datasets,
        covered,
        float(np.mean([r[1] for r in results])),
        sum(r[2] for r in results),
        time.perf_counter() - started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="scenarios/baseline.toml")
    parser.add_argument("--datasets", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    c = coverage_study(args.baseline, args.datasets, args.seed, args.workers)
    lo, hi = c.interval()
    print(
        f"90% posterior intervals contain the true rate in {c.covered} of {c.datasets} synthetic "
        f"data sets ({c.rate:.0%}; 95% CI {lo:.0%}-{hi:.0%}); mean interval width "
        f"{c.mean_width:.2f} attacks/day (prior width {PRIOR[1] - PRIOR[0]:.1f}); "
        f"{c.simulations:,} simulations in {c.seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
