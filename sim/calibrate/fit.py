"""``esim calibrate``'s default pipeline: population Monte Carlo (:mod:`sim.calibrate.pmc`) in, the
posterior file, its summary and the story point out.

Writes into the calibration folder, the companions first and ``fitted.toml`` last with their
SHA-256 (so a calibration killed while writing leaves an old fitted file that names other
companions: :func:`sim.calibrate.verify_outputs`):

* ``posterior.parquet``: the last iteration's weighted draws, one column per fitted key by its full
  key path, ``weight``, and the calibration's manifest in the Parquet metadata (:mod:`sim.posterior`);
* ``iterations.csv``: per iteration, draws, replications a draw, epsilon, Kish ESS, simulations;
* ``fitted.toml``: the story point (a draw chosen by :func:`story_point`'s stated rule) that
  ``scenarios/baseline.toml`` extends, each value with its posterior median, 90% interval and share
  of the prior's width.

The work folder ``.pmc/`` keeps every finished chunk of simulations for ``--resume``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import platform
import sys
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from sim.calibrate.identification import Informed, correlations, informed
from sim.calibrate.pmc import Iteration, PMCRun, PMCSettings, run_pmc
from sim.calibrate.smc import Problem
from sim.calibrate.targets import compile_targets

POSTERIOR = "posterior.parquet"
FITTED = "fitted.toml"
ITERATIONS = "iterations.csv"
WORK = ".pmc"
#: Draws whose weight is below this share of the mean weight are not candidates for the story point.
STORY_MIN_WEIGHT = 0.1
#: Draws left out of the posterior file: the lightest, as long as together they carry less than this.
DROPPED_MASS = 1e-6


@dataclass(frozen=True)
class Fit:
    """What :func:`run_fit` did and wrote."""

    run: PMCRun
    keys: list[str]
    values: np.ndarray  # (draws, keys) natural scale, as written
    weights: np.ndarray  # normalised, as written
    dropped: int  # draws left out (negligible weight)
    story: int  # index (into values) of the story point
    story_how: str
    table: list[Informed]
    pairs: list[tuple[str, str, float]]
    seconds: float
    overridden: list[str]


def record_files(setup) -> list[Path]:
    """The files a calibration is fitted to: the targets file, its series' CSV files, the priors."""
    series = [setup.targets_file.parent / x.file for x in setup.targets.series.values()]
    return [setup.targets_file, *series, setup.priors_file]


def record_hashes(setup, folder: Path) -> dict[str, str]:
    """SHA-256 of each record file, by its path relative to ``folder`` (where the posterior is)."""
    from sim.posterior import sha256_of

    return {os.path.relpath(p.resolve(), folder.resolve()): sha256_of(p) for p in record_files(setup)}


def story_point(keys: list[str], values: np.ndarray, weights: np.ndarray) -> tuple[int, str]:
    """The draw nearest the posterior's weighted marginal medians, in distance scaled by each
    parameter's weighted 90% interval, among the draws whose weight is at least
    :data:`STORY_MIN_WEIGHT` of the mean weight. A refit that reproduces the posterior reproduces
    the point's neighbourhood; nothing is chosen by how well it scores."""
    from sim.posterior import weighted_quantile

    med = np.array([weighted_quantile(values[:, j], weights, 0.5) for j in range(len(keys))])
    width = np.array(
        [
            weighted_quantile(values[:, j], weights, 0.95) - weighted_quantile(values[:, j], weights, 0.05)
            for j in range(len(keys))
        ]
    )
    width = np.where(width > 0, width, 1.0)
    candidates = np.flatnonzero(weights >= STORY_MIN_WEIGHT / len(weights))
    d = np.sqrt((((values[candidates] - med) / width) ** 2).sum(axis=1))
    best = int(candidates[int(np.argmin(d))])
    how = (
        f"the draw nearest the posterior's weighted medians (draw {best} of the posterior file; "
        f"distance {float(d.min()):.3f} in units of each parameter's 90% interval, among the "
        f"{len(candidates):,} draws weighing at least {STORY_MIN_WEIGHT:g} of the mean weight)"
    )
    return best, how


def run_fit(
    setup,
    settings: PMCSettings,
    out: str | Path,
    resume: bool = False,
    on_iteration: Callable[[Iteration], None] | None = None,
    inputs: dict | None = None,
) -> Fit:
    """Run (or resume) the population Monte Carlo calibration and write its outputs to ``out``."""
    import time

    from sim.calibrate import _inputs  # the same fingerprint of inputs as the SMC's
    from sim.store import atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    targets = compile_targets(
        setup.targets, setup.scenario.meta.start_date, only_calibrated=True, folder=setup.targets_file.parent
    )
    problem = Problem(setup.scenario, targets, setup.priors, settings.seed)
    started = time.perf_counter()
    run = run_pmc(problem, settings, out / WORK, inputs or _inputs(setup), resume, on_iteration)
    names = list(problem.keys)
    keys = [setup.priors.parameters[n].key for n in names]
    natural = [problem.natural(dict(zip(names, map(float, row), strict=True))) for row in run.z]
    values = np.array([[p[n] for n in names] for p in natural])
    weights, dropped = _without_negligible(run.weights)
    keep = weights > 0
    values, weights = values[keep], weights[keep] / weights[keep].sum()
    story, how = story_point(keys, values, weights)
    by_key = {k: values[:, j] for j, k in enumerate(keys)}
    table = informed(by_key, weights, setup.priors)
    pairs = correlations(by_key, weights, setup.priors)
    seconds = time.perf_counter() - started
    ess = round(float(1.0 / np.sum(weights**2)), 1)
    manifest: dict = {
        "method": "population Monte Carlo with a replicated ABC kernel (sim/calibrate/pmc.py)",
        "record": record_hashes(setup, out),
        "inputs": inputs or _inputs(setup),
        "settings": asdict(settings),
        "seed": settings.seed,
        "simulations": run.simulations,
        "wall_seconds": round(seconds, 1),
        "epsilon": run.epsilon,
        "ess": ess,
        "draws": int(len(weights)),
        "dropped_draws": dropped,
        "reps_per_draw": run.iterations[-1].reps,
        "stopped": run.stopped,
        "iterations": [asdict(it) for it in run.iterations],
        "story_point": {"draw": story, "rule": how},
        "informed": [row.as_dict() for row in table],
        "correlations": [{"a": a, "b": b, "r": r} for a, b, r in pairs],
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    from sim.posterior import write_posterior

    atomic_write(out / POSTERIOR, lambda tmp: write_posterior(tmp, keys, values, weights, manifest))
    atomic_write(out / ITERATIONS, lambda tmp: tmp.write_text(iterations_csv(run.iterations)))
    point = {n: float(values[story, j]) for j, n in enumerate(names)}
    text = fitted_toml(setup, run, table, point, how, len(weights), ess) + _companions(out)
    atomic_write(out / FITTED, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return Fit(
        run, keys, values, weights, dropped, story, how, table, pairs, seconds, _overridden(setup, out)
    )


def _without_negligible(w: np.ndarray) -> tuple[np.ndarray, int]:
    """The weights with the lightest draws set to 0 while together they carry under
    :data:`DROPPED_MASS` (they change no quantile a report shows), and how many were dropped."""
    order = np.argsort(w)
    cum = np.cumsum(w[order])
    drop = order[cum < DROPPED_MASS]
    out = w.copy()
    out[drop] = 0.0
    return out, int(drop.size)


def _versions() -> dict[str, str]:
    from sim.version import __version__

    out = {"escalation_sim": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for lib in ("numpy", "scipy", "simpy", "pandas", "pyarrow"):
        try:
            out[lib] = version(lib)
        except Exception:  # noqa: BLE001 - a version we cannot read is left out
            pass
    return out


def _overridden(setup, out: Path) -> list[str]:
    """Fitted keys the scenario sets itself, after the fitted file (so the fit is not used)."""
    from sim.posterior import fitted_keys
    from sim.scenario.loader import extends_chain

    if (out / FITTED).resolve() not in [p.resolve() for p in extends_chain(setup.scenario_file)]:
        return []
    fitted = fitted_keys(setup.scenario_file)
    return [f"{p.key} ({name})" for name, p in setup.priors.parameters.items() if p.key not in fitted]


def iterations_csv(iterations: list[Iteration]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "iteration",
            "draws",
            "reps_per_draw",
            "epsilon",
            "ess",
            "simulations",
            "total_simulations",
            "seconds",
            "final",
        ]
    )
    for it in iterations:
        w.writerow(
            [
                it.t,
                it.draws,
                it.reps,
                f"{it.epsilon:.6g}",
                f"{it.ess:.6g}",
                it.simulations,
                it.total_simulations,
                f"{it.seconds:.1f}",
                str(it.final).lower(),
            ]
        )
    return buf.getvalue()


def _value(setup, key: str, value: float) -> float | int:
    from sim.calibrate.priors import current_value

    old = current_value(setup.scenario, key)
    return int(round(value)) if isinstance(old, int) else float(f"{value:.4g}")


def fitted_toml(
    setup, run: PMCRun, table: list[Informed], point: dict, how: str, draws: int, ess: float
) -> str:
    """The story point as a partial scenario file (dotted keys), with the posterior's summary."""
    last = run.iterations[-1]
    head = (
        f"Fitted by `esim calibrate` on {dt.date.today().isoformat()}: population Monte Carlo with "
        f"a replicated ABC kernel (calibration/README.md), {run.simulations:,} simulations in "
        f"{len(run.iterations)} iterations; the last drew {last.draws:,} parameter vectors, "
        f"{last.reps} replications each, weighed at epsilon {run.epsilon:.3g} (tolerances). "
        f"The posterior is {POSTERIOR} beside this file: {draws:,} weighted draws, Kish effective "
        f"sample size {ess:,.0f}; esim compare and esim check run over it by default."
    )
    lines = [
        *textwrap.wrap(head, 98, initial_indent="# ", subsequent_indent="# "),
        *textwrap.wrap(
            f"The values below are the story point that esim narrate, esim run and the lab's story "
            f"tell: {how}.",
            98,
            initial_indent="# ",
            subsequent_indent="# ",
        ),
        "# Beside each value: the weighted posterior median and 90% interval, the interval's share of",
        "# the prior's width ('not informed' at 80% or more), and the prior. Do not edit by hand: rerun",
        "# `esim calibrate` (calibration/README.md). Priors and their reasons: calibration/priors.toml.",
        "",
    ]
    for row in table:
        value = _value(setup, row.key, point[row.name])
        flag = "; not informed" if not row.informed else ""
        lines.append(
            f"{row.key} = {value!r}  # median {row.median:.3g}, 90% [{row.p5:.3g}, {row.p95:.3g}], "
            f"width {row.width_share:.2f}{flag}; prior {row.prior}"
        )
    return "\n".join(lines) + "\n"


def _companions(out: Path) -> str:
    from sim.calibrate import _COMPANIONS
    from sim.folders import sha256_file

    return (
        _COMPANIONS + ", ".join(f"{n} sha256={sha256_file(out / n)}" for n in (POSTERIOR, ITERATIONS)) + "\n"
    )
