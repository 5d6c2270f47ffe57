"""The seed tree: named streams that depend only on (seed, replication, name)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import poisson

from sim.rng import STREAM_IDS, Streams, poisson_from_uniform


def test_streams_do_not_depend_on_the_order_they_are_asked_for():
    a, b = Streams(5, 3), Streams(5, 3)
    a_first = a["weapons"].random(4)
    b["decisions"].random(10)
    assert np.array_equal(b["weapons"].random(4), a_first)


def test_streams_differ_by_name_replication_and_seed():
    draws = {
        (seed, rep, name): Streams(seed, rep)[name].random()
        for seed in (1, 2)
        for rep in (0, 1)
        for name in STREAM_IDS
    }
    assert len(set(draws.values())) == len(draws)


def test_stream_ids_are_unique():
    assert len(set(STREAM_IDS.values())) == len(STREAM_IDS)


@given(mean=st.floats(0.0, 49.0), u=st.floats(0.0, 0.999999))
def test_poisson_from_uniform_is_the_inverse_cdf(mean, u):
    k = poisson_from_uniform(mean, u)
    assert k >= 0
    if mean > 0:
        assert poisson.cdf(k, mean) >= u - 1e-9
        if k > 0:
            assert poisson.cdf(k - 1, mean) <= u + 1e-9


def test_poisson_from_uniform_large_mean_uses_normal_approximation():
    draws = [poisson_from_uniform(400.0, u) for u in np.random.default_rng(1).random(4000)]
    assert np.mean(draws) == pytest.approx(400, rel=0.01)
    assert np.std(draws) == pytest.approx(20, rel=0.1)
