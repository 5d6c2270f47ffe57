"""Resample-move: the last ABC-SMC population made equally weighted and diverse again.

The importance weights of the last generation are very uneven (a handful of particles carried most
of the weight of the fitted baseline's posterior: an effective sample size of 5 of 500), so its
medians and intervals rest on a few points. After the last generation, :func:`resample_move`

1. resamples the particles by weight (systematic resampling): equal weights, many copies;
2. moves every particle by ``steps`` ABC-MCMC steps (Marjoram et al. 2003) that leave the ABC
   posterior at the final epsilon unchanged (Del Moral, Doucet and Jasra 2012): a Gaussian random
   walk in the particles' unbounded space (covariance ``2.38^2 / d`` times the weighted population's,
   halved after a step that accepts under 15% and doubled above 50%, never from a particle's own
   path), accepted when the proposal's simulation is within epsilon of the record and a uniform
   falls under the ratio of prior densities (the walk is symmetric).

Every proposal's simulation is the one the SMC would run for the same values (the replication index
comes from the values), so the moves are reproducible whatever the number of workers. The result is
equally weighted; how many of its particles are distinct says how far the moves got.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.calibrate.smc import Problem, ProblemPool

#: Acceptance rates outside which the walk's scale is halved or doubled for the next step.
LOW_ACCEPTANCE, HIGH_ACCEPTANCE = 0.15, 0.5


@dataclass(frozen=True)
class Moves:
    """What the moves did: per step, the share of particles that moved and the walk's scale."""

    epsilon: float
    steps: int
    acceptance: list[float]
    scales: list[float]
    distinct: int  # distinct particles after the moves (of the population)
    distinct_before: int  # distinct particles after resampling, before any move
    simulations: int
    seconds: float


def log_prior(z: np.ndarray) -> np.ndarray:
    """Log density of the standard logistic prior of each particle (rows), summed over parameters."""
    return np.sum(-z - 2.0 * np.logaddexp(0.0, -z), axis=-1)


def walk_covariance(particles: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted covariance of the population before resampling; a parameter with no spread in
    it (a population of one distinct particle) gets the prior's variance, pi^2 / 3."""
    w = weights / weights.sum()
    mean = w @ particles
    centred = particles - mean
    cov = np.atleast_2d((centred * w[:, None]).T @ centred)
    flat = np.diag(cov) <= 1e-12
    cov[flat, :] = 0.0
    cov[:, flat] = 0.0
    cov[flat, flat] = np.pi**2 / 3.0
    return cov


def systematic_resample(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``len(weights)`` particles drawn by weight with one uniform (systematic)."""
    w = np.asarray(weights, dtype=float)
    cum = np.cumsum(w / w.sum())
    cum[-1] = 1.0
    points = (rng.random() + np.arange(len(w))) / len(w)
    return np.searchsorted(cum, points, side="right")


def resample_move(
    problem: Problem,
    particles: pd.DataFrame,
    weights: np.ndarray,
    epsilon: float,
    steps: int,
    seed: int,
    distances: Callable[[list[dict[str, float]]], list[float]] | None = None,
) -> tuple[pd.DataFrame, Moves]:
    """Resample ``particles`` (pyabc's unbounded values, one column per parameter) by ``weights`` and
    move each by ``steps`` ABC-MCMC steps at ``epsilon``. ``distances`` maps a list of particles to
    their distances to the record (default: one after the other in this process)."""
    started = time.perf_counter()
    distances = distances or (lambda batch: distances_of(problem, batch))
    rng = np.random.default_rng([seed, 0x4D4F5645])  # "MOVE": a stream of its own
    names = list(problem.keys)
    before = particles[names].to_numpy(dtype=float)
    z = before[systematic_resample(weights, rng)]
    n, d = z.shape
    distinct_before = len(np.unique(z, axis=0))
    cov = walk_covariance(before, np.asarray(weights, dtype=float))
    scale = 2.38**2 / d
    acceptance, scales = [], []
    simulations = 0
    current = log_prior(z)
    for _ in range(steps):
        proposal = z + rng.multivariate_normal(np.zeros(d), cov * scale, size=n, method="eigh")
        u = rng.random(n)
        prior_ok = np.log(u) < log_prior(proposal) - current
        # only the proposals the prior ratio lets through are simulated (the others are refused
        # whatever their distance): same result, fewer simulations
        todo = np.flatnonzero(prior_ok)
        dist = distances([dict(zip(names, proposal[i], strict=True)) for i in todo])
        simulations += len(todo)
        accept = np.zeros(n, dtype=bool)
        accept[todo] = np.asarray(dist, dtype=float) <= epsilon
        z[accept] = proposal[accept]
        current[accept] = log_prior(proposal[accept])
        rate = float(accept.mean())
        acceptance.append(rate)
        scales.append(scale)
        if rate < LOW_ACCEPTANCE:
            scale /= 2.0
        elif rate > HIGH_ACCEPTANCE:
            scale *= 2.0
    moved = pd.DataFrame(z, columns=names)
    return moved, Moves(
        epsilon,
        steps,
        acceptance,
        scales,
        len(np.unique(z, axis=0)),
        distinct_before,
        simulations,
        time.perf_counter() - started,
    )


def distances_of(problem: Problem, batch: list[dict[str, float]]) -> list[float]:
    """Each particle's distance to the record, in its one replication."""
    return [problem.distance(problem.simulate(p)) for p in batch]


class DistancePool(ProblemPool):
    """``workers`` processes that compute particles' distances to the record, in order (a context
    manager; one worker computes them in this process)."""

    def __call__(self, batch: list[dict[str, float]]) -> list[float]:
        if not batch:
            return []
        size = self.chunks(len(batch))
        return [
            x
            for part in self.map(distances_of, [(batch[i : i + size],) for i in range(0, len(batch), size)])
            for x in part
        ]
