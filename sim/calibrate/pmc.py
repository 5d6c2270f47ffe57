"""Population Monte Carlo with a replicated, blocked ABC kernel: the calibration's default inference.

The documented record is matched through the misses of the calibration's distance
(:mod:`sim.calibrate.smc`): ``m_i = (distance of statistic i from its documented set) / tolerance_i``,
0 inside the set. The targets fall into *blocks* (``block`` in the targets file: the attack tallies
and totals, the US injured, the US killed, the strikes of Oct 2023 - Jan 2024, the February
package); targets of a block are correlated and taken together, blocks are taken as independent.
A parameter vector ``theta`` is scored by the ABC likelihood with a Gaussian kernel of scale
``epsilon`` (in tolerances),

    L_eps(theta) = prod_b E[ exp(-sum_{i in b} w_i m_i(X)^2 / (2 eps^2)) ],   X a replication under theta,

each block's expectation estimated by the mean over ``K`` replications of the draw (pseudo-marginal:
Andrieu and Roberts 2009; the estimate's noise enters the weights, never a lucky replication's
selection). Taking blocks apart is what makes the estimate usable: the mean of one kernel over all
67 statistics is dominated by the rare replication that happens to be close on all of them, and its
noise collapses the weights (a larger epsilon on the same budget, calibration/README.md). Within a
block, the kernel is the likelihood of a record observed with normal error of
``eps * tolerance_i / sqrt(w_i)`` on each statistic; a smaller epsilon is closer to the record as
documented, at the price of noisier weights.

The sampler is adaptive importance sampling (population Monte Carlo, Cappe et al. 2004): each
iteration draws fresh, independent parameter vectors from a proposal fitted to the iteration before
(a multivariate Student t with the weighted draws' mean and inflated covariance, in the unbounded
space z = logit(u), mixed with the prior so that every weight stays bounded: Hesterberg's defensive
importance sampling), simulates ``K`` replications of each (1, 2, 4, then ``max_reps``) and weighs
them by prior x likelihood estimate / proposal. Epsilon shrinks from iteration to iteration: each
takes the smallest epsilon whose Kish effective sample size keeps a share ``rho`` of the ESS its
proposal alone leaves. The last iteration spends what is left of the budget on one proposal: its
draws are independent, so the Kish effective sample size of their weights is an honest size of the
posterior sample, and its epsilon is the smallest at which that size reaches ``ess`` (or a fixed
``epsilon``, as the simulation-based calibration runs it).

Every draw comes from a generator seeded by (root seed, iteration), every replication's index from
the draw's values and its number, so the result is the same whatever the number of workers, and a
run stopped at any point and resumed (``resume``) ends with exactly the draws and weights of one
that never stopped: each finished chunk of simulations is kept in the work folder as it ends.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import logsumexp

from sim.calibrate.smc import Problem, ProblemPool
from sim.calibrate.statistics import Split
from sim.calibrate.targets import MISSING_PENALTY
from sim.replication import run_replication


@dataclass(frozen=True)
class PMCSettings:
    """Sizes and stopping rules of a population Monte Carlo calibration."""

    budget: int = 240_000  # simulations in all
    max_minutes: float = 14.0  # wall time (a safety net: the budget is what makes runs repeatable)
    workers: int = 1
    seed: int = 20240202
    draws: int = 2_000  # parameter vectors per adaptive iteration
    max_reps: int = 8  # replications per draw: 1, 2, 4, ... up to this, in the adaptive iterations
    final_reps: int = 8  # replications per draw in the last iteration
    explore_share: float = 0.5  # share of the budget the adaptive iterations may use
    rho: float = 0.5  # an adaptive iteration's epsilon keeps this share of the ESS its proposal alone leaves
    ess: int = 400  # the last iteration's epsilon: the smallest whose Kish ESS reaches this
    epsilon: float | None = None  # a fixed epsilon for the last iteration (None: from ``ess``)
    prior_share: float = 0.1  # of every proposal (defensive mixture)
    inflation: float = 1.5  # multiplies the weighted covariance of a proposal's t
    chunk: int = 2_000  # simulations a checkpoint (a killed run loses at most one chunk's work)

    def check(self) -> str:
        """What is wrong with these settings, in one line ("" when nothing)."""
        if self.budget < 4 * self.draws:
            return f"a budget of {self.budget:,} simulations is below 4 x {self.draws:,} draws"
        if not 0.0 < self.rho < 1.0:
            return "rho must lie between 0 and 1"
        if not 0.0 < self.prior_share < 1.0:
            return "the prior share must lie between 0 and 1"
        if self.epsilon is not None and not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            return "a fixed epsilon must be positive and finite"
        return ""


@dataclass(frozen=True)
class Iteration:
    """One iteration as logged."""

    t: int
    draws: int
    reps: int
    epsilon: float
    ess: float
    simulations: int  # this iteration's
    total_simulations: int
    seconds: float
    final: bool = False


@dataclass
class PMCRun:
    """The last iteration's draws (unbounded space), their normalised weights and what led there."""

    z: np.ndarray  # (draws, parameters)
    weights: np.ndarray  # normalised, sum 1
    epsilon: float
    ess: float
    log_likelihood: np.ndarray  # log of each draw's likelihood estimate at epsilon
    iterations: list[Iteration]
    simulations: int
    seconds: float
    stopped: str
    stats: np.ndarray | None = field(default=None, repr=False)  # (draws, reps, targets) of the last


# --- the record's distance, for arrays of statistics ------------------------------------------------


class Record:
    """The calibrated targets as arrays: the squared distance of many replications at once, in
    each block of targets."""

    def __init__(self, targets: list):
        self.low = np.array([d.low for d in targets])
        self.high = np.array([d.high for d in targets])
        self.scale = np.array([d.scale for d in targets])
        self.weight = np.array([d.target.weight for d in targets])
        self.blocks = list(dict.fromkeys(d.block for d in targets))
        self.block_of = np.array([self.blocks.index(d.block) for d in targets])

    def squared_misses(self, stats: np.ndarray) -> np.ndarray:
        """``stats`` (..., targets) -> w_i (miss_i / tolerance_i)^2 (..., targets)."""
        below = np.where(stats < self.low, (self.low - stats) / self.scale, 0.0)
        above = np.where(stats > self.high, (stats - self.high) / self.scale, 0.0)
        miss = np.where(np.isnan(stats), MISSING_PENALTY, below + above)
        return self.weight * miss**2

    def block_distances(self, stats: np.ndarray) -> np.ndarray:
        """``stats`` (..., targets) -> squared distance in each block (..., blocks)."""
        sq = self.squared_misses(stats)
        out = np.zeros((*sq.shape[:-1], len(self.blocks)))
        for b in range(len(self.blocks)):
            out[..., b] = sq[..., self.block_of == b].sum(axis=-1)
        return out

    def distances(self, stats: np.ndarray) -> np.ndarray:
        """``stats`` (..., targets) -> distance (...), as :meth:`Problem.distance` computes it."""
        return np.sqrt(np.sum(self.squared_misses(stats), axis=-1))


def log_kernel_mean(d2: np.ndarray, epsilon: float) -> np.ndarray:
    """The log likelihood estimate of each draw from its squared block distances ``d2`` (draws,
    reps, blocks): the sum over blocks of the log of the mean over replications of
    exp(-d2 / (2 eps^2))."""
    k = d2.shape[1]
    return np.sum(logsumexp(-d2 / (2.0 * epsilon**2), axis=1) - math.log(k), axis=-1)


def kish_ess(log_w: np.ndarray) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2 of log weights."""
    lw = log_w[np.isfinite(log_w)]
    if not lw.size:
        return 0.0
    return float(math.exp(2.0 * logsumexp(lw) - logsumexp(2.0 * lw)))


def choose_epsilon(d: np.ndarray, log_base: np.ndarray, ess: float, low: float = 0.05) -> float:
    """The smallest epsilon at which the weights exp(log_base) x kernel mean of ``d`` keep a Kish
    ESS of at least ``ess`` (bisection on log epsilon; the ESS grows with epsilon), never below
    ``low``."""

    def ess_at(eps: float) -> float:
        return kish_ess(log_base + log_kernel_mean(d, eps))

    ess = min(ess, 0.9 * kish_ess(log_base))  # what the proposal alone leaves
    hi = max(float(np.sqrt(np.nanmedian(d.sum(axis=-1)))), 1.0)
    while ess_at(hi) < ess and hi < 1e6:
        hi *= 2.0
    lo = low
    if ess_at(lo) >= ess:
        return lo
    for _ in range(40):
        mid = math.sqrt(lo * hi)
        if ess_at(mid) >= ess:
            hi = mid
        else:
            lo = mid
        if hi / lo < 1.001:
            break
    return hi


# --- proposals --------------------------------------------------------------------------------------


def log_prior(z: np.ndarray) -> np.ndarray:
    """Log density of the standard logistic prior of each row, summed over parameters."""
    return np.sum(-z - 2.0 * np.logaddexp(0.0, -z), axis=-1)


@dataclass(frozen=True)
class Proposal:
    """(1 - a) x a multivariate Student t (``df`` degrees of freedom) + a x the prior; no centre:
    the prior alone. A t with the weighted draws' mean and inflated covariance covers a broad,
    nearly elliptical posterior with far more even weights than a kernel density of its draws,
    whose narrow bumps in 16 dimensions leave most of the posterior's volume thin."""

    mean: np.ndarray | None  # (d,)
    cov: np.ndarray  # (d, d)
    prior_share: float
    df: float = 5.0

    @staticmethod
    def prior(d: int) -> Proposal:
        return Proposal(None, np.eye(d), 1.0)

    @staticmethod
    def fit(z: np.ndarray, log_w: np.ndarray, prior_share: float, inflation: float) -> Proposal:
        """A t fitted to the weighted draws: their weighted mean and covariance times
        ``inflation``."""
        w = np.exp(log_w - logsumexp(log_w))
        mean = w @ z
        c = z - mean
        cov = (c * w[:, None]).T @ c * inflation + 1e-9 * np.eye(z.shape[1])
        return Proposal(mean, cov, prior_share)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        d = self.cov.shape[0]
        if self.mean is None:
            return rng.logistic(size=(n, d))
        from_prior = rng.random(n) < self.prior_share
        chol = np.linalg.cholesky(self.cov)
        g = rng.standard_normal((n, d)) @ chol.T
        scale = np.sqrt(self.df / rng.chisquare(self.df, size=n))
        z = self.mean + g * scale[:, None]
        z[from_prior] = rng.logistic(size=(int(from_prior.sum()), d))
        return z

    def logpdf(self, z: np.ndarray) -> np.ndarray:
        lp = log_prior(z)
        if self.mean is None:
            return lp
        from scipy.stats import multivariate_t

        lt = multivariate_t(self.mean, self.cov, df=self.df).logpdf(z)
        a = self.prior_share
        return np.logaddexp(math.log1p(-a) + lt, math.log(a) + lp)


# --- simulating draws ---------------------------------------------------------------------------------


def replication_index(problem: Problem, values: np.ndarray, k: int) -> int:
    """The replication of draw ``values`` (natural scale) number ``k``: from the values and k, so
    the same draw gives the same replications in any order, on any worker."""
    h = hashlib.blake2b(struct.pack(f"<{len(values)}dq", *map(float, values), k), digest_size=8)
    return int.from_bytes(h.digest(), "little") >> 1


def simulate_draws(problem: Problem, z: np.ndarray, reps: int) -> np.ndarray:
    """(draws, reps, targets): each target's statistic in ``reps`` replications of each draw."""
    names = list(problem.keys)
    out = np.empty((len(z), reps, len(problem.targets)), dtype=np.float32)
    for i, row in enumerate(z):
        params = problem.natural(dict(zip(names, map(float, row), strict=True)))
        scenario = problem.scenario_with(params)
        values = np.array([params[n] for n in names])
        for k in range(reps):
            rows = run_replication(scenario, problem.seed, replication_index(problem, values, k)).events
            split = Split(rows)
            out[i, k] = [d.value(split) for d in problem.targets]
    return out


class Simulator(ProblemPool):
    """``workers`` processes that simulate draws, in order (a context manager; one worker
    simulates in this process): ``simulator(z, reps)`` -> (draws, reps, targets)."""

    def __call__(self, z: np.ndarray, reps: int) -> np.ndarray:
        size = self.chunks(len(z))
        jobs = [(z[i : i + size], reps) for i in range(0, len(z), size)]
        return np.concatenate(self.map(simulate_draws, jobs), axis=0)


# --- the work folder: every finished chunk, for resuming ---------------------------------------------


class ResumeError(ValueError):
    """``resume`` with nothing to resume, or a work folder started with other inputs."""


class WorkFolder:
    """Chunks of simulated statistics of each iteration, written as they finish (temporary name,
    then rename), and the inputs the run was started with."""

    def __init__(self, folder: Path, inputs: dict, resume: bool):
        self.folder = folder
        path = folder / "inputs.json"
        if resume:
            if not path.is_file():
                raise ResumeError(f"{folder}: no calibration to resume")
            try:
                started = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise ResumeError(f"{path}: unreadable; start a new calibration without --resume") from None
            if started != inputs:
                changed = ", ".join(sorted(k for k in {*inputs, *started} if started.get(k) != inputs.get(k)))
                raise ResumeError(
                    f"{folder}: the calibration there was started with other inputs ({changed}); "
                    "start a new calibration without --resume"
                )
        else:
            if folder.exists():
                for old in folder.glob("*"):
                    old.unlink()
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(inputs, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)

    def chunk(self, t: int, c: int) -> Path:
        return self.folder / f"iter{t:02d}-chunk{c:04d}.npy"

    def load(self, t: int, c: int, shape: tuple[int, ...]) -> np.ndarray | None:
        path = self.chunk(t, c)
        if not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return arr if arr.shape == shape else None

    def save(self, t: int, c: int, arr: np.ndarray) -> None:
        path = self.chunk(t, c)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def iteration_seed(seed: int, t: int) -> np.random.Generator:
    """The generator of iteration ``t``'s draws: from the root seed and t alone."""
    return np.random.default_rng(np.random.SeedSequence([seed % 2**63, 0x504D43, t]))


def settings_inputs(settings: PMCSettings) -> dict:
    """The settings that decide the draws (not workers or wall time), for the work folder."""
    out = asdict(settings)
    for k in ("workers", "max_minutes"):
        out.pop(k)
    return out


def run_pmc(
    problem: Problem,
    settings: PMCSettings,
    work: Path,
    inputs: dict,
    resume: bool = False,
    on_iteration: Callable[[Iteration], None] | None = None,
    record: Record | None = None,
    simulator: Any = None,
) -> PMCRun:
    """Run (or resume) the calibration; ``inputs`` (hashes of scenario, targets, priors) and the
    settings must equal those a resumed run was started with (:class:`ResumeError`).

    ``record`` replaces the problem's targets (a synthetic record of the simulation-based
    calibration); ``simulator`` (a context manager that gives ``simulate(z, reps)`` -> statistics)
    replaces the model's replications (a toy problem whose posterior is known, in the tests)."""
    problem_msg = settings.check()
    if problem_msg:
        raise ValueError(problem_msg)
    folder = WorkFolder(work, {**inputs, "settings": settings_inputs(settings)}, resume)
    started = time.perf_counter()
    deadline = started + 60.0 * settings.max_minutes
    record = record or Record(problem.targets)
    d = len(problem.keys)
    proposal = Proposal.prior(d)
    iterations: list[Iteration] = []
    total = 0
    rate = math.nan  # simulations a second, measured
    explore_budget = int(settings.explore_share * settings.budget)
    stopped = ""
    with simulator or Simulator(problem, settings.workers) as simulate_draws_of:

        def simulate(t: int, z: np.ndarray, reps: int) -> tuple[np.ndarray, bool]:
            """Stats of every draw, chunk by chunk (resumed chunks read back); False if the wall
            time ran out first."""
            nonlocal rate
            per = max(1, settings.chunk // reps)
            parts: list[np.ndarray] = []
            for c, i in enumerate(range(0, len(z), per)):
                block = z[i : i + per]
                shape = (len(block), reps, len(problem.targets))
                got = folder.load(t, c, shape)
                if got is None:
                    if time.perf_counter() > deadline:
                        return np.concatenate(parts, axis=0) if parts else np.empty((0, *shape[1:])), False
                    t0 = time.perf_counter()
                    got = simulate_draws_of(block, reps)
                    folder.save(t, c, got)
                    rate = got.shape[0] * reps / max(time.perf_counter() - t0, 1e-9)
                parts.append(got)
            return np.concatenate(parts, axis=0), True

        t = 0
        log_base = dists = z = None
        pool: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        while True:
            reps = min(2**t, settings.max_reps)
            size = settings.draws
            final = t > 0 and total + size * reps > explore_budget
            if final:
                reps = settings.final_reps
                left = settings.budget - total
                if not math.isnan(rate):
                    left = min(left, int(rate * max(deadline - time.perf_counter(), 0.0)))
                size = max(left // reps, 0)
                if size < settings.draws // 2:
                    stopped = "the budget or wall time left too few simulations for a last iteration"
                    break
            t0 = time.perf_counter()
            z_new = proposal.sample(iteration_seed(settings.seed, t), size)
            stats, whole = simulate(t, z_new, reps)
            z_new = z_new[: len(stats)]
            dists = record.block_distances(stats.astype(float))
            log_base = log_prior(z_new) - proposal.logpdf(z_new)
            z = z_new
            total += stats.shape[0] * reps
            is_final = final
            if is_final:
                eps = (
                    settings.epsilon
                    if settings.epsilon is not None
                    else choose_epsilon(dists, log_base, settings.ess)
                )
            else:
                eps = choose_epsilon(dists, log_base, settings.rho * kish_ess(log_base))
                if iterations:  # never looser than the iteration before
                    eps = min(eps, iterations[-1].epsilon)
                pool.append((z, dists, log_base))
            log_w = log_base + log_kernel_mean(dists, eps)
            it = Iteration(
                t,
                len(z),
                reps,
                eps,
                kish_ess(log_w),
                stats.shape[0] * reps,
                total,
                time.perf_counter() - t0,
                is_final,
            )
            iterations.append(it)
            if on_iteration is not None:
                on_iteration(it)
            if is_final:
                stopped = (
                    "the last iteration spent the budget"
                    if whole
                    else "the wall time ran out in the last iteration (its finished draws are kept)"
                )
                last_stats = stats
                break
            if not whole:
                stopped = "the wall time ran out before the last iteration"
                break
            # the next proposal from every adaptive iteration's draws, weighed at this epsilon (each by
            # its own proposal: every weight estimates the same posterior), so that its covariance
            # rests on all of them, not on one iteration's few hundred effective draws
            pooled_z = np.concatenate([p[0] for p in pool])
            pooled_w = np.concatenate([p[2] + log_kernel_mean(p[1], eps) for p in pool])
            proposal = Proposal.fit(pooled_z, pooled_w, settings.prior_share, settings.inflation)
            t += 1
    assert z is not None and dists is not None and log_base is not None
    eps = iterations[-1].epsilon
    log_l = log_kernel_mean(dists, eps)
    log_w = log_base + log_l
    w = np.exp(log_w - logsumexp(log_w))
    return PMCRun(
        z,
        w,
        eps,
        kish_ess(log_w),
        log_l,
        iterations,
        total,
        time.perf_counter() - started,
        stopped,
        last_stats if iterations[-1].final else None,
    )
