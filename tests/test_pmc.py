"""The population Monte Carlo calibration on a toy problem whose posterior is known exactly.

Two parameters with the calibration's standard logistic prior (the unbounded space z); each
replication of a draw gives statistics x_j = z_j + sigma * N(0, 1); the record states exact values
c_j with tolerance 1. The ABC likelihood with the Gaussian kernel of scale epsilon is then, exactly,
prod_j N(c_j; z_j, sigma^2 + epsilon^2), so the ABC posterior is known up to a one-dimensional
integral per parameter. The checks here must fail when the pipeline forgets the prior or drops the
weights: both are tried.
"""

from __future__ import annotations

import hashlib
import math
import struct
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import logsumexp

from sim.calibrate import pmc
from sim.calibrate.pmc import PMCSettings, Record, run_pmc
from sim.calibrate.sbc import pit, uniformity

SIGMA = 1.5
EPSILON = 1.0
RECORD = (3.0, -1.0)


class Toy:
    """A simulator of the toy model (a context manager, like :class:`sim.calibrate.pmc.Simulator`):
    each draw's replications from a generator seeded by its values and the seed."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __call__(self, z: np.ndarray, reps: int) -> np.ndarray:
        out = np.empty((len(z), reps, z.shape[1]), dtype=np.float32)
        for i, row in enumerate(z):
            h = hashlib.blake2b(struct.pack(f"<{len(row)}dq", *map(float, row), self.seed), digest_size=8)
            rng = np.random.default_rng(int.from_bytes(h.digest(), "little"))
            out[i] = row + SIGMA * rng.standard_normal((reps, z.shape[1]))
        return out


def toy_record(values=RECORD) -> Record:
    targets = [
        SimpleNamespace(low=v, high=v, scale=1.0, target=SimpleNamespace(weight=1.0), block=f"t{j}")
        for j, v in enumerate(values)
    ]
    return Record(targets)


def exact_marginal(c: float, grid: np.ndarray) -> np.ndarray:
    """The exact ABC posterior density of one parameter on ``grid`` (normalised)."""
    log_prior = -grid - 2.0 * np.logaddexp(0.0, -grid)
    s2 = SIGMA**2 + EPSILON**2
    log_post = log_prior - (c - grid) ** 2 / (2 * s2)
    p = np.exp(log_post - logsumexp(log_post))
    return p / p.sum()


def exact_summary(c: float) -> tuple[float, float, float, float]:
    """Mean, sd, 5% and 95% of the exact marginal."""
    grid = np.linspace(-15, 15, 30001)
    p = exact_marginal(c, grid)
    mean = float(p @ grid)
    sd = math.sqrt(float(p @ (grid - mean) ** 2))
    cdf = np.cumsum(p)
    return mean, sd, float(grid[np.searchsorted(cdf, 0.05)]), float(grid[np.searchsorted(cdf, 0.95)])


def matches_exact(z: np.ndarray, w: np.ndarray, values=RECORD, tol_sd: float = 0.15) -> list[str]:
    """What differs between a weighted sample and the exact posterior: per parameter, the mean
    (within ``tol_sd`` posterior sds), the sd (within 15%) and the 5% and 95% quantiles (within
    ``2 tol_sd`` sds). Empty when all agree."""
    w = np.asarray(w, float) / np.sum(w)
    problems = []
    for j, c in enumerate(values):
        mean, sd, q5, q95 = exact_summary(c)
        m = float(w @ z[:, j])
        s = math.sqrt(float(w @ (z[:, j] - m) ** 2))
        order = np.argsort(z[:, j])
        cdf = np.cumsum(w[order])
        lo, hi = z[order, j][np.searchsorted(cdf, 0.05)], z[order, j][np.searchsorted(cdf, 0.95)]
        if abs(m - mean) > tol_sd * sd:
            problems.append(f"z{j} mean {m:.3f} against {mean:.3f}")
        if abs(s - sd) > 0.15 * sd:
            problems.append(f"z{j} sd {s:.3f} against {sd:.3f}")
        if abs(lo - q5) > 2 * tol_sd * sd or abs(hi - q95) > 2 * tol_sd * sd:
            problems.append(f"z{j} 90% [{lo:.2f}, {hi:.2f}] against [{q5:.2f}, {q95:.2f}]")
    return problems


SETTINGS = PMCSettings(
    budget=24_000, draws=1000, max_reps=4, final_reps=4, epsilon=EPSILON, chunk=4000, seed=3
)
PROBLEM = SimpleNamespace(keys={"a": "a", "b": "b"}, targets=[])


def toy_run(tmp_path, settings=SETTINGS, values=RECORD, seed=0):
    return run_pmc(
        PROBLEM, settings, tmp_path / "work", {"toy": "1"}, record=toy_record(values), simulator=Toy(seed)
    )


def test_the_posterior_of_a_toy_problem_is_the_exact_one(tmp_path):
    run = toy_run(tmp_path)
    assert run.iterations[-1].final and run.epsilon == EPSILON
    assert run.ess > 1000, run.ess  # independent draws from a proposal fitted to the posterior
    assert matches_exact(run.z, run.weights) == []


def test_the_check_fails_a_pipeline_that_forgets_the_prior(tmp_path, monkeypatch):
    monkeypatch.setattr(pmc, "log_prior", lambda z: np.zeros(len(z)))
    run = toy_run(tmp_path)
    assert matches_exact(run.z, run.weights) != []


def test_the_check_fails_a_pipeline_that_drops_the_weights(tmp_path):
    run = toy_run(tmp_path)
    assert matches_exact(run.z, np.ones(len(run.z))) != []


def test_the_smallest_epsilon_for_the_ess_is_chosen_when_none_is_fixed(tmp_path):
    settings = PMCSettings(**{**SETTINGS.__dict__, "epsilon": None, "ess": 400})
    run = toy_run(tmp_path, settings)
    assert 390 <= run.ess <= 440
    d2 = None  # a smaller epsilon would leave fewer than 400: checked by choose_epsilon's bisection
    assert run.epsilon < 2.0 and d2 is None


def test_a_stopped_run_resumed_ends_with_the_same_draws_and_weights(tmp_path):
    whole = toy_run(tmp_path / "whole")
    # a run stopped part-way: the chunks it finished are in its work folder
    part = tmp_path / "part"
    first = toy_run(part)
    chunks = sorted((part / "work").glob("iter*-chunk*.npy"))
    for c in chunks[len(chunks) // 2 :]:
        c.unlink()  # as if it was killed half-way
    resumed = run_pmc(
        PROBLEM, SETTINGS, part / "work", {"toy": "1"}, resume=True, record=toy_record(), simulator=Toy()
    )
    np.testing.assert_array_equal(resumed.z, whole.z)
    np.testing.assert_array_equal(resumed.weights, whole.weights)
    np.testing.assert_array_equal(first.z, whole.z)


def test_resuming_with_other_inputs_is_refused(tmp_path):
    toy_run(tmp_path)
    other = PMCSettings(**{**SETTINGS.__dict__, "draws": 900})
    with pytest.raises(pmc.ResumeError, match="other inputs .*settings"):
        run_pmc(
            PROBLEM, other, tmp_path / "work", {"toy": "1"}, resume=True, record=toy_record(), simulator=Toy()
        )
    with pytest.raises(pmc.ResumeError, match="no calibration to resume"):
        run_pmc(
            PROBLEM,
            SETTINGS,
            tmp_path / "none",
            {"toy": "1"},
            resume=True,
            record=toy_record(),
            simulator=Toy(),
        )


def _sbc(tmp_path, datasets: int, drop_weights: bool) -> list:
    """A simulation-based calibration of the toy: truths from the prior, records simulated with
    the kernel's noise, each fitted by the pipeline (or by one that drops the weights)."""
    settings = PMCSettings(budget=8_000, draws=500, max_reps=2, final_reps=2, epsilon=EPSILON, chunk=4000)
    ranks = []
    rng = np.random.default_rng(11)
    for i in range(datasets):
        truth = rng.logistic(size=2)
        record = truth + SIGMA * rng.standard_normal(2) + EPSILON * rng.standard_normal(2)
        run = run_pmc(
            PROBLEM,
            PMCSettings(**{**settings.__dict__, "seed": i}),
            tmp_path / f"w{i}",
            {"toy": str(i)},
            record=toy_record(tuple(record)),
            simulator=Toy(i),
        )
        ranks.append(pit(run.z, np.ones(len(run.z)) if drop_weights else run.weights, truth))
    return [uniformity(np.array(ranks)[:, j], 2) for j in range(2)]


@pytest.mark.slow
def test_simulation_based_calibration_passes_the_pipeline_and_fails_one_that_drops_the_weights(tmp_path):
    # (a pipeline that forgets the prior is caught above, not here: with a Gaussian likelihood of a
    # location, the flat-prior posterior's intervals are exact confidence intervals, so their ranks
    # are uniform too: SBC cannot see it)
    good = _sbc(tmp_path / "good", 150, False)
    assert not any(t.rejected for t in good), [t.p_value for t in good]
    assert all(0.8 <= t.cover_90 <= 1.0 for t in good)
    bad = _sbc(tmp_path / "bad", 150, True)
    assert all(t.rejected for t in bad), [t.p_value for t in bad]


def test_uniformity_rejects_ranks_that_pile_up_and_keeps_uniform_ones():
    rng = np.random.default_rng(0)
    assert not uniformity(rng.random(200), 16).rejected
    assert uniformity(rng.random(200) ** 2, 16).rejected  # ranks skewed low: a biased posterior
    squeezed = 0.5 + 0.3 * (rng.random(200) - 0.5)  # every truth mid-posterior: too wide
    assert uniformity(squeezed, 16).rejected and uniformity(squeezed, 16).cover_90 == 1.0
