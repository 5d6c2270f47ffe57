"""The seed tree: named streams that depend only on (seed, replication, name)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import poisson

from sim.rng import STREAM_IDS, Streams, pcg64_words, poisson_from_uniform, stream_seed


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


def reference_generator(seed: int, rep: int, name: str) -> np.random.Generator:
    """The stream as numpy's own SeedSequence seeds it (the definition of the seed tree)."""
    return np.random.Generator(np.random.PCG64(stream_seed(seed, rep, name)))


@given(
    seed=st.one_of(st.integers(0, 2**32 + 5), st.integers(0, 2**130)),
    rep=st.one_of(st.integers(0, 10_000), st.integers(2**32 - 2, 2**70)),
    stream_id=st.sampled_from(sorted(STREAM_IDS.values())),
)
def test_the_fast_seeding_gives_numpys_seed_sequence_words(seed, rep, stream_id):
    want = np.random.SeedSequence(seed, spawn_key=(rep, stream_id)).generate_state(4, np.uint64)
    assert np.array_equal(pcg64_words(seed, rep, stream_id), want)


@pytest.mark.parametrize(
    "seed, rep", [(0, 0), (20231017, 0), (20231017, 999), (2**32, 7), (2**64 + 3, 2**33)]
)
def test_every_stream_draws_what_numpys_seeding_draws(seed, rep):
    streams = Streams(seed, rep)
    for name in STREAM_IDS:
        assert np.array_equal(streams[name].random(5), reference_generator(seed, rep, name).random(5)), name


def test_the_seeding_check_sees_a_wrong_word():
    """The comparison above can fail: the words of a neighbouring replication or stream differ."""
    words = pcg64_words(20231017, 3, 1)
    assert not np.array_equal(words, pcg64_words(20231017, 4, 1))
    assert not np.array_equal(words, pcg64_words(20231017, 3, 2))
    assert not np.array_equal(words, pcg64_words(20231018, 3, 1))


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
