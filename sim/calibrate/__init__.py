"""Calibration to the documented record: targets, priors, ABC-SMC (pyabc), the predictive check.

The calibration calls the model only through :func:`sim.run_replication`. Files:

* ``calibration/targets.toml``: documented counts (:mod:`sim.calibrate.targets`);
* ``calibration/priors.toml``: free parameters and priors (:mod:`sim.calibrate.priors`);
* outputs of :func:`run_calibration`: ``posterior.parquet`` (weighted particles of the last
  generation), ``fitted.toml`` (the point estimate: weighted posterior medians, which
  ``scenarios/baseline.toml`` extends), ``generations.csv`` (per generation: epsilon, acceptance
  rate, effective sample size), and the pyabc history ``abc.db`` for resuming.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pandas as pd

from sim.calibrate.check import CheckResult, find_targets_file, predictive_check
from sim.calibrate.moves import DistancePool, Moves, resample_move
from sim.calibrate.priors import PriorsFile, current_value, load_priors, targets_path, with_values
from sim.calibrate.smc import (
    Generation,
    Problem,
    Settings,
    calibrate,
    generations,
    point_estimate,
    posterior,
    posterior_of,
    summarise,
)
from sim.calibrate.targets import (
    TargetsFile,
    compile_targets,
    file_hash,
    load_targets,
    scenario_path,
)
from sim.scenario.loader import extends_chain, load_scenario, scenario_hash
from sim.scenario.schema import Scenario

__all__ = [
    "CalibrationResult",
    "CheckResult",
    "Generation",
    "Settings",
    "find_targets_file",
    "load_priors",
    "load_targets",
    "predictive_check",
    "run_calibration",
    "setup",
    "verify_outputs",
]

POSTERIOR = "posterior.parquet"
FITTED = "fitted.toml"
GENERATIONS = "generations.csv"
DATABASE = "abc.db"


@dataclass(frozen=True)
class Setup:
    """Everything a calibration reads, loaded and validated."""

    priors_file: Path
    priors: PriorsFile
    targets_file: Path
    targets: TargetsFile
    scenario_file: Path
    scenario: Scenario


def setup(priors_file: str | Path) -> Setup:
    """Load the priors, the targets they name and the scenario the targets name; check them all."""
    priors_file = Path(priors_file)
    raw = load_priors(priors_file)
    tfile = targets_path(priors_file, raw)
    targets = load_targets(tfile)
    sfile = scenario_path(tfile, targets)
    # the free keys are set (to their lower bounds) so that the scenario validates whatever its
    # fitted file holds; every particle sets them again
    scenario = load_scenario(sfile, [f"{p.key}={p.low!r}" for p in raw.parameters.values()])
    priors = load_priors(priors_file, scenario)
    return Setup(priors_file, priors, tfile, targets, sfile, scenario)


@dataclass(frozen=True)
class CalibrationResult:
    summary: pd.DataFrame  # per parameter: median, 90% interval, prior, fitted value
    posterior: pd.DataFrame
    generations: list[Generation]
    simulations: int  # in the finished generations, and the prior sample that set the first epsilon
    abandoned_simulations: int  # of a generation abandoned for want of budget or time
    stopped: str  # why the calibration stopped
    seconds: float  # ABC-SMC, the moves and the point estimate
    overridden: list[str]  # fitted keys that the scenario file sets itself (so the fit is unused)
    moves: Moves | None = None  # the resample-move after the last generation


def _inputs(s: Setup) -> dict[str, str]:
    """What a run depends on: the scenario with the free keys blanked out, targets and priors."""
    blank = with_values(s.scenario, {p.key: p.low for p in s.priors.parameters.values()})
    series = [s.targets_file.parent / x.file for x in s.targets.series.values()]
    return {
        "scenario": scenario_hash(blank),
        "targets": file_hash(s.targets_file, *series),
        "priors": file_hash(s.priors_file),
    }


def run_calibration(
    s: Setup,
    settings: Settings,
    out: str | Path,
    resume: bool = False,
    on_generation: Callable[[Generation], None] | None = None,
) -> CalibrationResult:
    """Run or resume ABC-SMC and write posterior, fitted point estimate and generation log to ``out``."""
    from sim.store import atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problem = Problem(
        s.scenario,
        compile_targets(
            s.targets, s.scenario.meta.start_date, only_calibrated=True, folder=s.targets_file.parent
        ),
        s.priors,
        settings.seed,
    )
    started = time.perf_counter()
    run = calibrate(problem, settings, out / DATABASE, _inputs(s), resume, on_generation)
    history = run.history
    post = posterior(history, problem)
    moves = None
    # as many steps as the budget leaves (the generations kept a share of it for them)
    steps = min(
        settings.move_steps, (settings.budget - int(history.total_nr_simulations)) // settings.population
    )
    if steps > 0 and history.max_t >= 0:
        frame, weights = history.get_distribution(t=history.max_t)
        epsilon = generations(history)[-1].epsilon
        with DistancePool(problem, settings.workers) as distances:
            moved, moves = resample_move(problem, frame, weights, epsilon, steps, settings.seed, distances)
        post = posterior_of(moved, problem, int(history.max_t))
    summary = summarise(post, s.priors)
    point, how = point_estimate(problem, post)
    seconds = time.perf_counter() - started
    summary["fitted"] = [point[n] for n in summary.index]
    gens = generations(history)
    # the companions first, the fitted file last with their checksums: a calibration killed while
    # writing leaves an old fitted file that names other companions (see :func:`verify_outputs`)
    atomic_write(out / POSTERIOR, lambda tmp: _write_smc_posterior(tmp, post, s, settings, out, run, seconds))
    atomic_write(out / GENERATIONS, lambda tmp: tmp.write_text(_generations_csv(gens)))
    text = fitted_toml(summary, s.priors, gens, settings, s.scenario, how, run.abandoned_simulations, moves)
    text += _companions_line(out)
    atomic_write(out / FITTED, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    overridden = []
    if (out / FITTED).resolve() in [p.resolve() for p in extends_chain(s.scenario_file)]:
        again = load_scenario(s.scenario_file)
        for name, row in summary.iterrows():
            if current_value(again, row["key"]) != _fitted_value(s.scenario, row["key"], row["fitted"]):
                overridden.append(f"{row['key']} ({name})")
    return CalibrationResult(
        summary,
        post,
        gens,
        int(history.total_nr_simulations),
        run.abandoned_simulations,
        run.stopped,
        seconds,
        overridden,
        moves,
    )


def _write_smc_posterior(
    path: Path, post: pd.DataFrame, s: Setup, settings: Settings, out: Path, run, seconds
):
    """The SMC's particles as a posterior file (:mod:`sim.posterior`): one column per key path."""
    import dataclasses

    import numpy as np

    from sim.calibrate.fit import _versions, record_hashes
    from sim.calibrate.identification import correlations, informed
    from sim.posterior import write_posterior

    names = list(s.priors.parameters)
    keys = [s.priors.parameters[n].key for n in names]
    w = post["weight"].to_numpy(dtype=float)
    by_key = {k: post[n].to_numpy(dtype=float) for n, k in zip(names, keys, strict=True)}
    manifest = {
        "method": "ABC-SMC (pyabc) with a resample-move (sim/calibrate/smc.py, moves.py)",
        "record": record_hashes(s, out),
        "inputs": _inputs(s),
        "settings": dataclasses.asdict(settings),
        "seed": settings.seed,
        "simulations": int(run.history.total_nr_simulations),
        "wall_seconds": round(seconds, 1),
        "ess": round(float(w.sum() ** 2 / np.sum(w**2)), 1),
        "draws": len(post),
        "stopped": run.stopped,
        "informed": [row.as_dict() for row in informed(by_key, w / w.sum(), s.priors)],
        "correlations": [{"a": a, "b": b, "r": r} for a, b, r in correlations(by_key, w / w.sum(), s.priors)],
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    write_posterior(path, keys, post[names].to_numpy(dtype=float), w, manifest)


_COMPANIONS = "# written with: "


def _companions_line(out: Path) -> str:
    from sim.folders import sha256_file

    return (
        _COMPANIONS
        + ", ".join(f"{name} sha256={sha256_file(out / name)}" for name in (POSTERIOR, GENERATIONS))
        + "\n"
    )


def verify_outputs(fitted: str | Path) -> list[str]:
    """What is wrong with a calibration's outputs beside ``fitted`` (its ``fitted.toml``): a
    companion (posterior, generation log) present but not the file the fitted file was written
    with, i.e. left by another calibration or an interrupted write. A missing companion is not
    wrong (the repository ships only the fitted file and the log)."""
    from sim.folders import sha256_file

    fitted = Path(fitted)
    lines = [ln for ln in fitted.read_text(encoding="utf-8").splitlines() if ln.startswith(_COMPANIONS)]
    problems = []
    for item in lines[-1][len(_COMPANIONS) :].split(", ") if lines else []:
        name, _, digest = item.partition(" sha256=")
        path = fitted.parent / name
        if path.is_file() and sha256_file(path) != digest:
            problems.append(
                f"{path} is not the file {fitted.name} was written with (another "
                "or an interrupted calibration): rerun esim calibrate (--resume)"
            )
    return problems


def _fitted_value(scenario: Scenario, key: str, value: float) -> float | int:
    old = current_value(scenario, key)
    return int(round(value)) if isinstance(old, int) else float(f"{value:.4g}")


def fitted_toml(
    summary: pd.DataFrame,
    priors: PriorsFile,
    gens: list[Generation],
    settings: Settings,
    scenario: Scenario,
    how: str,
    abandoned: int = 0,
    moves: Moves | None = None,
) -> str:
    """The point estimate as a partial scenario file (dotted keys), with its provenance."""
    last = gens[-1]
    extra = f" (and {abandoned:,} in an abandoned generation)" if abandoned else ""
    moved = (
        f" Then resample-move: {moves.steps} ABC-MCMC steps at that epsilon ({moves.simulations:,} "
        f"simulations, a share of {min(moves.acceptance):.2f}-{max(moves.acceptance):.2f} of the "
        f"particles moving at each step): equal weights, {moves.distinct} distinct particles of "
        f"{settings.population}."
        if moves is not None
        else ""
    )
    lines = [
        *textwrap.wrap(
            f"Fitted by `esim calibrate` on {dt.date.today().isoformat()}: ABC-SMC (pyabc "
            f"{version('pyabc')}), {last.total_simulations:,} simulations{extra}, {len(gens)} "
            f"generations of {settings.population} particles, final epsilon {last.epsilon:.3g}, "
            f"effective sample size {last.ess:.0f}.{moved}",
            98,
            initial_indent="# ",
            subsequent_indent="# ",
        ),
        *textwrap.wrap(f"Point estimate: {how}.", 98, initial_indent="# ", subsequent_indent="# "),
        "# Beside each value: the weighted posterior median and 90% interval, and the prior.",
        "# scenarios/baseline.toml extends this file. Do not edit by hand: rerun `esim calibrate`",
        "# (calibration/README.md). Priors and their reasons: calibration/priors.toml.",
        "",
    ]
    for name, row in summary.iterrows():
        p = priors.parameters[str(name)]
        value = _fitted_value(scenario, p.key, row["fitted"])
        lines.append(
            f"{p.key} = {value!r}  # median {row['median']:.3g}, 90% [{row['p5']:.3g}, "
            f"{row['p95']:.3g}]; "
            f"prior {p.distribution}({p.low:g}, {p.high:g})"
        )
    return "\n".join(lines) + "\n"


def _generations_csv(gens: list[Generation]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["generation", "epsilon", "accepted", "simulations", "acceptance_rate", "ess", "total_simulations"]
    )
    for g in gens:
        w.writerow(
            [
                g.t,
                f"{g.epsilon:.6g}",
                g.accepted,
                g.simulations,
                f"{g.acceptance_rate:.6g}",
                f"{g.ess:.6g}",
                g.total_simulations,
            ]
        )
    return buf.getvalue()
