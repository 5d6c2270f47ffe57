"""ABC-SMC calibration with pyabc: priors in, weighted posterior particles and a point estimate out.

Each particle is one replication of the scenario with the particle's parameter values; its summary
statistics are the calibrated targets' statistics, and its distance from the documented record is

    d = sqrt( sum_i  w_i * (distance_i / tolerance_i) ** 2 )

where distance_i is how far the simulated value lies outside target i's documented set (0 inside;
see :mod:`sim.calibrate.targets`). The threshold epsilon of each generation is the median distance of
the previous one (pyabc's ``QuantileEpsilon``). The run stops at the first of: epsilon at or below
``min_epsilon``, ``budget`` simulations in all, ``max_minutes`` of wall time, an acceptance rate
below ``min_acceptance`` or ``max_generations`` generations. A generation may use at most
``population / min_acceptance`` simulations, and no more than what is left of the budget and of the
wall time at the pace of the generation before; one that would need more is abandoned (its
simulations are counted apart) and the last finished generation is the result. No generation starts
whose acceptance rate, extrapolated from the last two, would be below ``min_acceptance`` or would not
fill a population in what is left, ``move_steps x population`` simulations being kept for the
resample-move that follows the last generation (:mod:`sim.calibrate.moves`).

The pyabc history (SQLite) is written after every generation, so a calibration stopped at any point
resumes from its last finished generation. A replication's seed is drawn from the root seed and the
particle's parameter values, so the same parameters give the same simulation, and numpy's global
generator (pyabc's proposals) is seeded at the start of every generation from the root seed and the
generation's number. With one worker and a seed the whole calibration is reproducible, and a run
stopped and resumed equals one that never stopped; with several workers pyabc accepts particles in the
order they finish, and runs differ within Monte Carlo error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from sim.calibrate.priors import PriorsFile, with_values
from sim.calibrate.statistics import Split
from sim.calibrate.targets import MISSING_PENALTY, Documented
from sim.replication import run_replication
from sim.scenario.schema import Scenario


@dataclass(frozen=True)
class Settings:
    """Stopping rules and sizes of a calibration."""

    population: int = 500
    budget: int = 150_000  # simulations in all (resumed runs count what they already used)
    max_minutes: float = 9.0
    min_epsilon: float = 0.0
    min_acceptance: float = 0.01
    max_generations: int = 30
    workers: int = 1
    seed: int = 20240202
    kernel_scaling: float = 1.0  # multiplies the proposal kernel's covariance (Silverman's rule)
    prior_share: float = 0.25  # share of proposals drawn from the prior (defensive mixture)
    transition: str = "normal"  # "normal": one covariance for all particles; "local": per particle,
    # from its nearest neighbours (pyabc LocalTransition, Filippi et al. 2013)
    move_steps: int = 20  # ABC-MCMC steps of the resample-move after the last generation (0: none)


@dataclass(frozen=True)
class Generation:
    """One finished generation, as logged."""

    t: int
    epsilon: float
    accepted: int
    simulations: int
    acceptance_rate: float
    ess: float
    seconds: float
    total_simulations: int


class Problem:
    """The scenario, the compiled targets and the priors of one calibration: what a particle runs."""

    def __init__(self, scenario: Scenario, targets: list[Documented], priors: PriorsFile, seed: int):
        self.scenario = scenario
        self.targets = targets
        self.priors = priors
        self.seed = seed
        self.keys = {name: p.key for name, p in priors.parameters.items()}
        # each parameter as (offset, span, log scale): x = offset + span * u (or its exp)
        self._scale = {}
        for name, p in priors.parameters.items():
            log = p.distribution == "loguniform"
            low, high = (math.log(p.low), math.log(p.high)) if log else (p.low, p.high)
            self._scale[name] = (low, high - low, log)

    def natural(self, particle: dict[str, float]) -> dict[str, float]:
        """Parameter values from a pyabc particle, which holds z = logit(u) for each parameter,
        u being the parameter's position in its prior range (on the log scale if log-uniform)."""
        out = {}
        for n in self.keys:
            low, span, log = self._scale[n]
            x = low + span * float(expit(float(particle[n])))
            out[n] = math.exp(x) if log else x
        return out

    def unconstrained(self, values: dict[str, float]) -> dict[str, float]:
        """The inverse of :meth:`natural`."""
        out = {}
        for n in self.keys:
            low, span, log = self._scale[n]
            x = math.log(values[n]) if log else values[n]
            out[n] = float(logit(min(max((x - low) / span, 1e-12), 1.0 - 1e-12)))
        return out

    def scenario_with(self, params: dict[str, float]) -> Scenario:
        """The scenario with these (natural) parameter values."""
        return with_values(self.scenario, {self.keys[n]: float(v) for n, v in params.items()})

    def replication_of(self, params: dict[str, float]) -> int:
        """A replication index drawn from the parameter values (same values, same simulation)."""
        h = hashlib.blake2b(
            struct.pack(f"<{len(params)}d", *(float(params[n]) for n in self.keys)), digest_size=8
        )
        return int.from_bytes(h.digest(), "little") >> 1

    def simulate(self, particle: dict[str, float]) -> dict[str, float]:
        """The targets' statistics in one replication with a particle's parameter values."""
        params = self.natural(particle)
        rows = run_replication(self.scenario_with(params), self.seed, self.replication_of(params)).events
        split = Split(rows)
        return {d.name: d.value(split) for d in self.targets}

    def distance(self, stats: dict[str, float], _observed: dict | None = None) -> float:
        total = 0.0
        for d in self.targets:
            total += d.target.weight * d.distance(stats[d.name]) ** 2
        return math.sqrt(total)

    def observed(self) -> dict[str, float]:
        """A stand-in for pyabc's observed data: the middle of each documented set."""
        return {d.name: d.point for d in self.targets}

    def prior(self):
        """The prior as pyabc sees it: z = logit(u) is standard logistic when u is uniform, so
        pyabc samples an unbounded space. A uniform prior on a bounded box would leave its
        proposal kernels spilling over the edges, and in ten dimensions the importance weights of
        particles near an edge explode (the effective sample size collapses)."""
        import pyabc

        return pyabc.Distribution(**{name: pyabc.RV("logistic", 0.0, 1.0) for name in self.keys})


_POOL_PROBLEM: Problem | None = None


def _init_pool(problem: Problem) -> None:
    global _POOL_PROBLEM
    _POOL_PROBLEM = problem


def _in_pool(job: tuple[Callable, tuple]) -> Any:
    assert _POOL_PROBLEM is not None
    fn, args = job
    return fn(_POOL_PROBLEM, *args)


class ProblemPool:
    """``workers`` spawned processes that each hold the problem once (a context manager; with one
    worker everything runs in this process). :meth:`map` runs ``fn(problem, *job)`` for each job
    and returns the results in the jobs' order, whatever the number of workers."""

    def __init__(self, problem: Problem, workers: int) -> None:
        self.problem = problem
        self.workers = max(1, workers)
        self._pool: Any = None

    def __enter__(self):
        if self.workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_pool,
                initargs=(self.problem,),
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def map(self, fn: Callable, jobs: list[tuple]) -> list:
        if self._pool is None or len(jobs) <= 1:
            return [fn(self.problem, *job) for job in jobs]
        return list(self._pool.map(_in_pool, [(fn, job) for job in jobs]))

    def chunks(self, n: int) -> int:
        """The size of a job when ``n`` items are split four ways a worker."""
        return max(1, -(-n // (4 * self.workers)))


def _defensive_transition(prior_share: float, scaling: float, local: bool = False):
    """pyabc's multivariate normal kernel mixed with the prior: q = (1 - a) KDE + a prior.

    Parameters that the targets barely inform keep posteriors as wide as their priors, whose
    logistic tails are heavier than the kernels' Gaussian tails: a particle proposed far out then
    carries an enormous importance weight prior / q, and the effective sample size collapses. The
    prior share bounds every weight by 1 / a (Hesterberg's defensive importance sampling).
    """
    import pyabc
    from pyabc.parameters import Parameter

    base = pyabc.LocalTransition if local else pyabc.MultivariateNormalTransition

    class DefensiveTransition(base):  # type: ignore[valid-type,misc]
        def rvs_single(self) -> Parameter:
            if np.random.uniform() < prior_share:
                return Parameter(
                    dict(zip(self.X.columns, np.random.logistic(size=len(self.X.columns)), strict=True))
                )
            return super().rvs_single()

        def pdf(self, x):
            kde = super().pdf(x)
            if isinstance(x, pd.DataFrame):
                z = x[self.X.columns].to_numpy()
            else:
                z = np.array([x[key] for key in self.X.columns])
            prior = np.exp(np.sum(-z - 2.0 * np.logaddexp(0.0, -z), axis=-1))  # standard logistic
            return (1.0 - prior_share) * kde + prior_share * prior

    return DefensiveTransition(scaling=scaling)


def _sampler(workers: int):
    import pyabc

    if workers <= 1:
        return pyabc.sampler.SingleCoreSampler(check_max_eval=True)
    return pyabc.sampler.MulticoreEvalParallelSampler(n_procs=workers, check_max_eval=True)


def _abcsmc(problem: Problem, settings: Settings):
    import pyabc

    logging.getLogger("ABC").setLevel(logging.WARNING)
    return pyabc.ABCSMC(
        models=problem.simulate,
        parameter_priors=problem.prior(),
        distance_function=problem.distance,
        population_size=settings.population,
        sampler=_sampler(settings.workers),
        transitions=_defensive_transition(
            settings.prior_share, settings.kernel_scaling, settings.transition == "local"
        ),
        eps=pyabc.QuantileEpsilon(alpha=0.5),
    )


def _last_run(db: Path) -> tuple[int, dict] | None:
    """The last pyabc run in the history ``db`` and the inputs it was started with (stored by
    pyabc as the run's ``meta_info``), or None when there is no history."""
    import ast

    import pyabc

    if not db.is_file():
        return None
    runs = pyabc.History(f"sqlite:///{db}", create=False).all_runs()
    if not runs:
        return None
    last = max(runs, key=lambda r: r.id)
    try:
        inputs = ast.literal_eval(last.json_parameters or "{}")
    except (ValueError, SyntaxError):
        inputs = {}
    return int(last.id), inputs if isinstance(inputs, dict) else {}


class CalibrationError(ValueError):
    """A calibration that cannot start or go on: the message is one line for the user."""


class ResumeError(CalibrationError):
    """``--resume`` with nothing to resume, or a history started with other inputs."""


#: LocalTransition fits each particle's covariance from its k = population / 4 nearest neighbours:
#: with fewer than (parameters + 1) neighbours the covariance is singular and the weights become nan.
LOCAL_NEIGHBOUR_SHARE = 4


def minimum_population(parameters: int, transition: str) -> int:
    """The smallest population the proposal kernel can be fitted from (``local``: 4 (n + 1))."""
    return LOCAL_NEIGHBOUR_SHARE * (parameters + 1) if transition == "local" else 2


class Run(NamedTuple):
    """What :func:`calibrate` did: the pyabc ``History``, why it stopped, and the simulations of a
    generation it abandoned (not in the history)."""

    history: Any  # pyabc.History
    stopped: str
    abandoned_simulations: int = 0


def calibrate(
    problem: Problem,
    settings: Settings,
    db: Path,
    inputs: dict,
    resume: bool = False,
    on_generation: Callable[[Generation], None] | None = None,
) -> Run:
    """Run (or resume) an ABC-SMC calibration.

    ``inputs`` describes what the run was started with (hashes of scenario, targets and priors);
    resuming a run started with other inputs raises :class:`ResumeError`; a population too small
    for the kernel, or a generation whose weights pyabc cannot normalise, :class:`CalibrationError`.
    """
    need = minimum_population(len(problem.keys), settings.transition)
    if settings.population < need:
        raise CalibrationError(
            f"a population of {settings.population} is too small for "
            f"{len(problem.keys)} parameters with the '{settings.transition}' "
            f"kernel: use at least {need}"
        )
    np.random.seed(settings.seed % 2**32)  # pyabc draws from numpy's global generator
    abc = _abcsmc(problem, settings)
    url = f"sqlite:///{db}"
    if resume:
        last = _last_run(db)
        if last is None:
            raise ResumeError(f"{db}: no calibration to resume")
        run_id, started = last
        if started != inputs:
            changed = ", ".join(k for k in inputs if started.get(k) != inputs[k])
            raise ResumeError(
                f"{db}: run {run_id} was started with other inputs ({changed}); "
                "start a new calibration without --resume"
            )
        abc.load(url, run_id)
    else:
        abc.new(url, problem.observed(), meta_info=inputs)
    done = abc.history.max_t + 1  # generations already in the history
    if abc.history.total_nr_simulations >= settings.budget:
        return Run(abc.history, "the simulation budget was used up")
    if done >= settings.max_generations:
        return Run(abc.history, f"{settings.max_generations} generations")
    t = abc.initialize_components_before_run(
        minimum_epsilon=settings.min_epsilon,
        max_nr_populations=settings.max_generations - done,
        min_acceptance_rate=settings.min_acceptance,
        max_total_nr_simulations=settings.budget,
        max_walltime=timedelta(minutes=settings.max_minutes),
        min_eps_diff=0.0,
    )
    deadline = time.perf_counter() + 60.0 * settings.max_minutes
    rate = math.nan  # simulations per second in the last generation
    last_rates: list[float] = []  # acceptance rates of the finished generations
    if done:
        last_rates = [g.acceptance_rate for g in generations(abc.history)[-2:]]
    # the resample-move after the last generation needs at most a simulation per particle a step:
    # kept out of what the generations may use, so that budget and wall time hold for the whole run
    reserve = move_reserve(settings)
    while True:
        left = settings.budget - abc.history.total_nr_simulations
        if not math.isnan(rate):
            left = min(left, int((deadline - time.perf_counter()) * rate))
        left -= reserve
        expected = _next_acceptance(last_rates)
        if expected < settings.min_acceptance:
            return Run(
                abc.history,
                f"the next generation's acceptance rate would fall below "
                f"{settings.min_acceptance:g} (about {expected:.2g}, extrapolated)",
            )
        if left * expected < settings.population:
            return Run(
                abc.history,
                f"the next generation would need about "
                f"{settings.population / expected:,.0f} simulations, more than "
                f"the budget and wall time leave ({max(left, 0):,}"
                + (f", keeping {reserve:,} for the resample-move" if reserve else "")
                + ")",
            )
        # pyabc abandons a generation that needs more than this, keeping the last finished one
        abc.min_acceptance_rate = max(settings.min_acceptance, settings.population / left)
        started_at = time.perf_counter()
        np.random.seed(generation_seed(settings.seed, t))  # a resumed run draws as an unbroken one
        try:
            ret = abc.run_generation(t=t)
        except (AssertionError, np.linalg.LinAlgError) as exc:  # pyabc's checks of the weights
            raise CalibrationError(
                f"generation {t} failed in pyabc ({str(exc).strip() or type(exc).__name__}"
                f"); the history keeps generations up to {t - 1}: try a larger "
                "--population or --transition normal"
            ) from None
        if not ret["successful"]:
            return Run(
                abc.history,
                f"generation {t} was abandoned: {settings.population} "
                f"acceptances were not reached in its allowance",
                int(abc.sampler.nr_evaluations_),
            )
        g = _last_generation(abc.history, time.perf_counter() - started_at)
        rate = g.simulations / max(g.seconds, 1e-9)
        last_rates = [*last_rates[-1:], g.acceptance_rate]
        if on_generation is not None:
            on_generation(g)
        abc.min_acceptance_rate = settings.min_acceptance
        if abc.check_terminate(t=t, acceptance_rate=ret["acceptance_rate"]):
            return Run(abc.history, _stop_reason(abc, settings, t, g))
        t += 1


def move_reserve(settings: Settings) -> int:
    """Simulations the generations leave for the resample-move: one a particle a step, at most a
    quarter of the budget."""
    return min(settings.move_steps * settings.population, settings.budget // 4)


def generation_seed(seed: int, t: int) -> int:
    """The seed of numpy's global generator (which pyabc draws proposals from) for generation ``t``:
    set at the start of every generation, so that a calibration resumed after generation ``t - 1``
    makes the same draws as one that never stopped."""
    return int(np.random.SeedSequence([seed % 2**63, t]).generate_state(1)[0])


def _next_acceptance(rates: list[float]) -> float:
    """The next generation's acceptance rate, extrapolated geometrically from the last two."""
    if not rates:
        return 1.0
    if len(rates) == 1 or rates[-2] <= 0.0:
        return rates[-1]
    return rates[-1] * min(1.0, rates[-1] / rates[-2])


def _stop_reason(abc, settings: Settings, t: int, g: Generation) -> str:
    if t + 1 >= abc.max_t + 1:
        return f"{settings.max_generations} generations"
    if g.epsilon <= settings.min_epsilon or float(abc.eps(t)) <= settings.min_epsilon:
        return f"epsilon reached {settings.min_epsilon:g}"
    if g.acceptance_rate < settings.min_acceptance:
        return f"the acceptance rate fell below {settings.min_acceptance:g}"
    if abc.history.total_nr_simulations >= settings.budget:
        return "the simulation budget was used up"
    return "the wall time was used up"


def _last_generation(history, seconds: float) -> Generation:
    """The history's last generation, with the wall time measured around it."""
    return dataclasses.replace(generations(history)[-1], seconds=seconds)


def generations(history) -> list[Generation]:
    """Every finished generation of a history (wall times as pyabc recorded them)."""
    from pyabc.weighted_statistics import effective_sample_size

    out = []
    pops = history.get_all_populations()
    pops = pops[pops["t"] >= 0]
    # pyabc's total also counts the prior sample that set the first epsilon
    total = int(history.total_nr_simulations) - int(pops["samples"].sum())
    for _, row in pops.iterrows():
        t = int(row["t"])
        _, w = history.get_distribution(t=t)
        total += int(row["samples"])
        out.append(
            Generation(
                t,
                float(row["epsilon"]),
                len(w),
                int(row["samples"]),
                len(w) / float(row["samples"]),
                float(effective_sample_size(w)),
                math.nan,
                total,
            )
        )
    return out


def posterior(history, problem: Problem) -> pd.DataFrame:
    """The last generation's particles: one column per parameter (natural scale), ``weight`` and
    ``generation``."""
    frame, w = history.get_distribution(t=history.max_t)
    return posterior_of(frame, problem, int(history.max_t), np.asarray(w, dtype=float))


def posterior_of(
    particles: pd.DataFrame, problem: Problem, generation: int, weights: np.ndarray | None = None
) -> pd.DataFrame:
    """Particles of pyabc's unbounded space as a posterior frame: one column per parameter (natural
    scale), ``weight`` (equal when ``weights`` is None) and ``generation``."""
    rows = [problem.natural(particle) for particle in particles.to_dict("records")]
    out = pd.DataFrame(rows, columns=list(problem.keys))
    out["weight"] = weights if weights is not None else np.full(len(out), 1.0 / max(len(out), 1))
    out["generation"] = generation
    return out


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Quantile ``q`` of a weighted sample (inverse of the weighted empirical CDF, midpoint rule):
    pyabc's own, with the weights normalised as it requires."""
    from pyabc.weighted_statistics import weighted_quantile as pyabc_quantile

    w = np.asarray(weights, float)
    return float(pyabc_quantile(np.asarray(values, float), w / w.sum(), alpha=q))


def point_estimate(
    problem: Problem, post: pd.DataFrame, candidates: int = 48, reps: int = 60, seed: int = 7
) -> tuple[dict[str, float], str]:
    """The fitted point: of the posterior's marginal medians and ``candidates`` particles drawn by
    weight, each clipped into the central 50% of every parameter's posterior (the 25-75% weighted
    quantiles), the one with the smallest mean scaled CRPS over the calibrated targets
    (:func:`scaled_crps`) in ``reps`` replications. Every candidate runs the same replications
    (common random numbers).

    A proper score rewards a point whose predictive distribution is both centred on the record and
    sharp; counting passed targets does not, and can pick a particle in its posterior's tails.
    Marginal medians alone can fall between two modes (the damage expectancy that adds a second
    weapon to a target type and the share of that type that compensates are each fitted, but their
    medians need not fit together): hence whole particles as candidates.
    """
    from sim.calibrate.check import simulate_statistics

    names = list(problem.keys)
    w = post["weight"].to_numpy()
    medians = {n: weighted_quantile(post[n].to_numpy(), w, 0.5) for n in names}
    box = {
        n: (weighted_quantile(post[n].to_numpy(), w, 0.25), weighted_quantile(post[n].to_numpy(), w, 0.75))
        for n in names
    }
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(post), size=min(candidates, len(post)), replace=False, p=w / w.sum())
    options = [("the weighted marginal medians", medians)] + [
        (
            f"posterior particle {int(i)} (clipped)",
            {n: min(max(float(post[n].iloc[int(i)]), box[n][0]), box[n][1]) for n in names},
        )
        for i in picks
    ]
    scored = []
    for label, params in options:
        values = simulate_statistics(problem.scenario_with(params), problem.targets, reps, seed)
        scored.append((scaled_crps(values, problem.targets), label, params))
    best = min(scored, key=lambda x: x[0])
    how = (
        f"{best[1]}, whose {reps} replications have the smallest mean scaled CRPS over the "
        f"calibrated targets, a series counting as one ({best[0]:.3f}; the marginal medians "
        f"{scored[0][0]:.3f}) of the medians and {len(picks)} particles drawn by weight, each "
        f"clipped into the central 50% of every parameter's posterior"
    )
    return best[2], how


def scaled_crps(values: np.ndarray, targets: list[Documented]) -> float:
    """The CRPS of each target's simulated values (replications x targets; NaN where missing,
    scored as the penalty distance) at its documented point, in tolerances and weighted; averaged
    over the points of each series first, so that a dated series counts as one documented fact
    beside each target on its own."""
    import scoringrules as sr

    units: dict[str, list[float]] = {}
    for j, d in enumerate(targets):
        x = values[:, j]
        present = x[~np.isnan(x)]
        missing = 1.0 - present.size / max(x.size, 1)
        crps = float(sr.crps_ensemble(d.point, present)) / d.scale if present.size else 0.0
        score = d.target.weight * ((1.0 - missing) * crps + missing * MISSING_PENALTY)
        units.setdefault(d.series or d.name, []).append(score)
    return float(np.mean([np.mean(v) for v in units.values()]))


def summarise(post: pd.DataFrame, priors: PriorsFile) -> pd.DataFrame:
    """Per parameter: weighted median and 90% interval of the posterior, with the prior's range."""
    rows = []
    for name, p in priors.parameters.items():
        v, w = post[name].to_numpy(), post["weight"].to_numpy()
        rows.append(
            (
                name,
                p.key,
                weighted_quantile(v, w, 0.5),
                weighted_quantile(v, w, 0.05),
                weighted_quantile(v, w, 0.95),
                p.distribution,
                p.low,
                p.high,
            )
        )
    return pd.DataFrame(
        rows, columns=["parameter", "key", "median", "p5", "p95", "prior", "prior_low", "prior_high"]
    ).set_index("parameter")
