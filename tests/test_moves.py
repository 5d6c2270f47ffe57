"""Resample-move after ABC-SMC: systematic resampling, and ABC-MCMC moves that keep the ABC posterior
(checked on a problem whose ABC posterior is known: the prior truncated to a box)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import sim.calibrate.moves as moves_module
from sim.calibrate.moves import DistancePool, log_prior, resample_move, systematic_resample


@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40).filter(lambda w: sum(w) > 1e-6), st.integers(0, 99)
)
def test_systematic_resampling_gives_each_particle_its_share_rounded(weights, seed):
    w = np.asarray(weights) / np.sum(weights)
    idx = systematic_resample(w, np.random.default_rng(seed))
    counts = np.bincount(idx, minlength=len(w))
    assert counts.sum() == len(w)
    assert np.all(np.abs(counts - len(w) * w) < 1.0 + 1e-9)


class BoxProblem:
    """One parameter with the standard logistic prior; the 'simulation' is the value itself and the
    distance its absolute value, so the ABC posterior at epsilon is the prior truncated to
    [-epsilon, epsilon]."""

    keys = {"z": "z"}

    def simulate(self, particle):
        return {"z": particle["z"]}

    def distance(self, stats_, _observed=None):
        return abs(stats_["z"])


def truncated_logistic_sd(epsilon: float) -> float:
    """Standard deviation of the standard logistic truncated to [-epsilon, epsilon] (numerically)."""
    x = np.linspace(-epsilon, epsilon, 200_001)
    p = stats.logistic.pdf(x)
    p /= p.sum()
    return float(np.sqrt((p * x**2).sum()))


def moved(epsilon: float, steps: int = 40, n: int = 2000, seed: int = 3):
    start = pd.DataFrame({"z": np.zeros(n)})  # every particle at the mode, all its weight on one
    weights = np.zeros(n)
    weights[0] = 1.0
    return resample_move(BoxProblem(), start, weights, epsilon, steps, seed)


@pytest.mark.parametrize("epsilon", [0.5, 4.0])
def test_the_moves_reach_the_abc_posterior_from_a_single_particle(epsilon):
    z, m = moved(epsilon)
    values = z["z"].to_numpy()
    assert np.all(np.abs(values) <= epsilon)  # no move ever leaves the ABC set
    assert m.distinct_before == 1 and m.distinct > 1500
    assert values.mean() == pytest.approx(0.0, abs=0.1 * epsilon)
    assert values.std() == pytest.approx(truncated_logistic_sd(epsilon), rel=0.08)


def test_the_check_fails_moves_that_forget_the_prior(monkeypatch):
    """Moves accepted on the distance alone would spread the particles uniformly over the box: the
    standard deviation check above tells them apart."""
    monkeypatch.setattr(moves_module, "log_prior", lambda z: np.zeros(np.shape(z)[:-1]))
    z, _ = moved(4.0)
    uniform_sd = 8.0 / np.sqrt(12.0)
    assert z["z"].std() == pytest.approx(uniform_sd, rel=0.08)
    assert z["z"].std() != pytest.approx(truncated_logistic_sd(4.0), rel=0.08)


def test_the_moves_are_reproducible_and_their_log_says_what_they_did():
    a, ma = moved(1.0, steps=5, n=200)
    b, mb = moved(1.0, steps=5, n=200)
    assert a.equals(b) and ma.acceptance == mb.acceptance
    assert len(ma.acceptance) == len(ma.scales) == 5
    assert 0 < ma.simulations <= 5 * 200


def test_log_prior_is_the_standard_logistic():
    z = np.array([[0.0, 1.5], [-2.0, 7.0]])
    assert log_prior(z) == pytest.approx(stats.logistic.logpdf(z).sum(axis=1))


@pytest.mark.slow
def test_a_pool_of_workers_gives_the_distances_of_this_process():
    from sim.calibrate import setup
    from sim.calibrate.smc import Problem
    from sim.calibrate.targets import compile_targets

    s = setup("calibration/priors.toml")
    targets = compile_targets(
        s.targets, s.scenario.meta.start_date, only_calibrated=True, folder=s.targets_file.parent
    )
    problem = Problem(s.scenario, targets, s.priors, 5)
    rng = np.random.default_rng(1)
    batch = [{k: float(rng.logistic()) for k in problem.keys} for _ in range(6)]
    with DistancePool(problem, 2) as pool:
        assert pool(batch) == [problem.distance(problem.simulate(p)) for p in batch]
