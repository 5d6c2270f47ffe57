"""Simulation-based calibration (Talts et al. 2018) of the population Monte Carlo calibration.

Each synthetic record draws true parameters from the prior, simulates one replication with them
and states every calibrated target as an exact value: the replication's statistic plus the ABC
kernel's own noise, a normal error of ``epsilon * tolerance / sqrt(weight)``. Under that model of the
record the ABC posterior at ``epsilon`` is the exact posterior, so if the pipeline computes it right
(proposals, weights, the prior) the truth's rank among the posterior draws is uniform, for every
parameter; a pipeline that forgets the prior or drops the weights is not. A truth whose replication
lacks a statistic (no February package, say) is drawn again, truth and replication together: the
record always has every statistic, and the pipeline's missing penalty asks the same of a
simulation. The fits run the real pipeline at a fixed ``epsilon`` on a far smaller budget than the
real fit; each rank is the weighted share of posterior draws below the truth (a continuous rank,
the probability integral transform). The default epsilon, 8, is looser than the shipped fit's (2.2):
at 2.2 one fit needs the real fit's 240,000 simulations (9 minutes on 2 cores, 15 hours for 100
data sets), and two pilot fits of 10,000 simulations at 2.2 ended with effective sample sizes of
1.8 and 3.8. The study checks the machinery (proposals, weights, prior, kernel), which is the
same at every epsilon.

Run (from the project root): ``python -m sim.calibrate.sbc [--datasets 100] [--budget 8000]
[--draws 500] [--epsilon 8] [--workers 2]``: per data set one row in ``results/sbc/sbc.csv`` as it
finishes (a stopped study resumes where it stopped), then the rank histograms in
``results/sbc/sbc.png`` and the uniformity tests and coverage printed and in
``results/sbc/sbc.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import chi2

from sim.calibrate.pmc import PMCSettings, Record, run_pmc, simulate_draws
from sim.calibrate.smc import Problem

#: Bins of a rank histogram, and the family-wise level of the uniformity tests.
BINS = 10
LEVEL = 0.01


def pit(z: np.ndarray, weights: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per parameter (columns of ``z``), the weighted share of draws below the truth."""
    w = np.asarray(weights, float) / np.sum(weights)
    return np.array([float(w @ (z[:, j] < truth[j])) for j in range(z.shape[1])])


@dataclass(frozen=True)
class Uniformity:
    """A rank histogram's chi-square test of uniformity, and interval coverage."""

    counts: list[int]
    statistic: float
    p_value: float
    rejected: bool  # at LEVEL after a Bonferroni correction over the parameters
    cover_50: float
    cover_90: float


def uniformity(pits: np.ndarray, parameters: int, bins: int = BINS, level: float = LEVEL) -> Uniformity:
    """Chi-square test that ``pits`` (one parameter's ranks over the data sets) are uniform, with
    the Bonferroni level ``level / parameters``; the coverage of central 50% and 90% intervals."""
    pits = np.asarray(pits, float)
    counts = np.histogram(np.clip(pits, 0.0, 1.0 - 1e-12), bins=bins, range=(0.0, 1.0))[0]
    expected = len(pits) / bins
    stat = float(np.sum((counts - expected) ** 2 / expected))
    p = float(chi2.sf(stat, bins - 1))
    return Uniformity(
        [int(c) for c in counts],
        stat,
        p,
        p < level / parameters,
        float(np.mean((pits >= 0.25) & (pits <= 0.75))),
        float(np.mean((pits >= 0.05) & (pits <= 0.95))),
    )


class SyntheticTarget:
    """An exact documented value with a real target's tolerance, weight and block."""

    def __init__(self, like, value: float):
        self.low = self.high = float(value)
        self.scale = like.scale
        self.target = like.target
        self.block = like.block


def synthetic_record(problem: Problem, stats: np.ndarray, epsilon: float, rng: np.random.Generator) -> Record:
    """The record of one data set: each target's statistic plus the kernel's normal noise."""
    out = []
    for d, x in zip(problem.targets, stats, strict=True):
        sd = epsilon * d.scale / math.sqrt(max(d.target.weight, 1e-12))
        out.append(SyntheticTarget(d, float(x) + sd * float(rng.standard_normal())))
    return Record(out)


def truth_of(problem: Problem, seed: int, i: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Data set ``i``'s true parameters (unbounded space) and replication statistics: drawn from the
    prior again, with a new replication, until every statistic exists; and how many draws that took."""
    rng = np.random.default_rng([seed, 0x5BC, i])
    record_problem = Problem(problem.scenario, problem.targets, problem.priors, seed + 7919 * (i + 1))
    for tries in range(1, 1000):
        z = rng.logistic(size=len(problem.keys))
        stats = simulate_draws(record_problem, z[None, :], 1)[0, 0].astype(float)
        if not np.isnan(stats).any():
            return z, stats, tries
    raise RuntimeError(f"data set {i}: no replication with every statistic in 999 prior draws")


def fit_one(problem: Problem, settings: PMCSettings, seed: int, i: int, epsilon: float) -> dict:
    """One synthetic record, fitted: its ranks, ESS, simulations and seconds."""
    started = time.perf_counter()
    z_true, stats, tries = truth_of(problem, seed, i)
    record = synthetic_record(problem, stats, epsilon, np.random.default_rng([seed, 0x5BD, i]))
    fit_problem = Problem(problem.scenario, problem.targets, problem.priors, seed + 104729 * (i + 1))
    run_settings = PMCSettings(**{**settings.__dict__, "epsilon": epsilon, "seed": seed + i})
    with tempfile.TemporaryDirectory() as work:
        run = run_pmc(fit_problem, run_settings, Path(work) / "pmc", {"sbc": str(i)}, record=record)
    if not run.iterations[-1].final:  # ranks at another epsilon than the record's noise: no test
        raise RuntimeError(f"data set {i}: the fit stopped before its last iteration ({run.stopped})")
    ranks = pit(run.z, run.weights, z_true)
    return {
        "dataset": i,
        "tries": tries,
        "ess": round(run.ess, 1),
        "simulations": run.simulations,
        "seconds": round(time.perf_counter() - started, 1),
        **{f"rank:{n}": float(r) for n, r in zip(problem.keys, ranks, strict=True)},
    }


def study(
    priors_file: str | Path,
    datasets: int,
    settings: PMCSettings,
    epsilon: float,
    seed: int,
    out_csv: Path,
    on_fit=None,
) -> list[dict]:
    """Fit ``datasets`` synthetic records (resuming from the rows already in ``out_csv``)."""
    from sim.calibrate import setup
    from sim.calibrate.targets import compile_targets

    s = setup(priors_file)
    targets = compile_targets(
        s.targets, s.scenario.meta.start_date, only_calibrated=True, folder=s.targets_file.parent
    )
    problem = Problem(s.scenario, targets, s.priors, seed)
    rows = read_rows(out_csv)
    done = {int(r["dataset"]) for r in rows}
    for i in range(datasets):
        if i in done:
            continue
        row = fit_one(problem, settings, seed, i, epsilon)
        rows.append(row)
        _append(out_csv, row)
        if on_fit is not None:
            on_fit(row)
    return sorted(rows, key=lambda r: int(r["dataset"]))[:datasets]


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [dict(r) for r in csv.DictReader(f)]


def _append(path: Path, row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
        f.flush()


def summarise(rows: list[dict]) -> dict[str, Uniformity]:
    names = [k.removeprefix("rank:") for k in rows[0] if k.startswith("rank:")]
    return {n: uniformity(np.array([float(r[f"rank:{n}"]) for r in rows]), len(names)) for n in names}


def plot(tests: dict[str, Uniformity], datasets: int, path: Path, title: str) -> None:
    """Rank histograms, one panel a parameter, with the central 99% band of a bin's count under
    uniformity (binomial)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import binom

    names = list(tests)
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.2 * rows), sharex=True, squeeze=False)
    lo, hi = binom.ppf([0.005, 0.995], datasets, 1.0 / BINS)
    for ax, name in zip(axes.flat, names, strict=False):
        t = tests[name]
        ax.axhspan(lo, hi, color="0.88", zorder=0)
        ax.axhline(datasets / BINS, color="0.5", lw=0.8)
        ax.bar(
            (np.arange(BINS) + 0.5) / BINS, t.counts, width=0.9 / BINS, color="#b33" if t.rejected else "#357"
        )
        ax.set_title(f"{name}\np = {t.p_value:.2g}, 90% cover {t.cover_90:.0%}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("rank: share of posterior weight below the truth", fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--priors", default="calibration/priors.toml")
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--budget", type=int, default=8_000)
    parser.add_argument("--epsilon", type=float, default=8.0, help="the fixed epsilon of every fit")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500, help="draws an adaptive iteration")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--out", default="results/sbc", help="folder of sbc.csv, sbc.png, sbc.json (not in git)"
    )
    a = parser.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    epsilon = a.epsilon
    settings = PMCSettings(budget=a.budget, workers=a.workers, draws=a.draws, max_reps=4, final_reps=8)
    rows = study(
        a.priors,
        a.datasets,
        settings,
        epsilon,
        a.seed,
        out / "sbc.csv",
        on_fit=lambda r: print(
            f"data set {r['dataset']}: ESS {r['ess']}, {r['simulations']:,} simulations, {r['seconds']} s",
            flush=True,
        ),
    )
    tests = summarise(rows)
    title = (
        f"simulation-based calibration: {len(rows)} synthetic records from the prior, each fitted at "
        f"epsilon {epsilon:.3g} on {a.budget:,} simulations; grey: 99% band of a bin under uniformity"
    )
    plot(tests, len(rows), out / "sbc.png", title)
    report = {
        "datasets": len(rows),
        "epsilon": epsilon,
        "budget": a.budget,
        "settings": settings.__dict__,
        "seed": a.seed,
        "median_ess": float(np.median([float(r["ess"]) for r in rows])),
        "fit_seconds": round(sum(float(r["seconds"]) for r in rows), 1),  # every fit, resumed or not
        "level": LEVEL,
        "parameters": {n: t.__dict__ for n, t in tests.items()},
    }
    (out / "sbc.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for n, t in tests.items():
        print(
            f"{n:28s} chi2 {t.statistic:6.1f} p {t.p_value:.3f} {'REJECTED' if t.rejected else 'ok':8s} "
            f"cover 50% {t.cover_50:.0%} 90% {t.cover_90:.0%}"
        )


if __name__ == "__main__":
    main()
