"""The seed tree: root seed -> replication -> one named stream per source of randomness.

A stream is ``SeedSequence(root_seed, spawn_key=(replication, stream_id))``. It depends only on the
root seed, the replication index and the stream's name, never on the order in which replications run
or on how many run, so:

* the same seed gives the same output whatever the worker count or backend;
* the first k replications of a 2k run equal a k run;
* the same replication under two policies draws the same attack times and outcomes for as long as the
  two runs ask the same questions of a stream (common random numbers).

Streams are created lazily: a replication in which no bomber flies never pays for the logistics stream.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.random.bit_generator import ISeedSequence
from scipy.special import ndtri

#: Stable ids of the named streams. Append new names; never renumber (it would change old results).
STREAM_IDS: dict[str, int] = {
    "attack_times": 1,
    "attack_outcomes": 2,
    "decisions": 3,
    "logistics": 4,
    "weapons": 5,
    "casualties": 6,
    "militia_response": 7,  # the patron's decision to order a halt
    "weather": 8,
    "engagements": 9,
    "injury_reports": 10,
    "hunts": 11,
    "engagement_outcomes": 12,
    "parameters": 13,  # the posterior draw of a group of replications (sim.posterior)
}


def stream_seed(root_seed: int, rep: int, name: str) -> np.random.SeedSequence:
    """The SeedSequence of one named stream of one replication."""
    return np.random.SeedSequence(int(root_seed), spawn_key=(int(rep), STREAM_IDS[name]))


# -- the same seeding, faster -------------------------------------------------------------------
# numpy's SeedSequence (O'Neill's seed_seq hash, numpy.random.bit_generator) costs about 20 us a
# stream, a twentieth of a replication for twelve streams. Its hash constants advance the same way
# whatever the data, so the pool mixed from the root seed is the same for every replication and
# the words mixed in for the replication index are the same for every stream: both are cached, and
# a stream pays only for mixing in its own id and drawing the generator's four 64-bit words.
# tests/test_rng.py checks the words against numpy's SeedSequence for seeds and replications of
# one and several 32-bit words.
_MASK = 0xFFFFFFFF
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_POOL = 4
#: the constants of generate_state's eight 32-bit words (two per 64-bit word of PCG64's seed)
_OUT = [_INIT_B]
for _ in range(8):
    _OUT.append((_OUT[-1] * _MULT_B) & _MASK)


def _words(n: int) -> list[int]:
    """``n`` as little-endian 32-bit words (numpy's coercion of a non-negative int entropy)."""
    out = [n & _MASK]
    n >>= 32
    while n:
        out.append(n & _MASK)
        n >>= 32
    return out


def _mix_in(pool: list[int], hash_const: int, values: list[int]) -> int:
    """Mix ``values`` into every pool word, in place; return the hash constant after them."""
    for value in values:
        for d in range(_POOL):
            v = value ^ hash_const
            hash_const = (hash_const * _MULT_A) & _MASK
            v = (v * hash_const) & _MASK
            v ^= v >> 16
            r = (_MIX_L * pool[d] - _MIX_R * v) & _MASK
            pool[d] = r ^ (r >> 16)
    return hash_const


def _root_pool(root_seed: int) -> tuple[list[int], int]:
    """The pool mixed from the root seed alone, and the hash constant after it."""
    entropy = _words(root_seed)
    entropy += [0] * (_POOL - len(entropy))  # a spawn key pads the run entropy to the pool size
    hash_const = _INIT_A
    pool = []
    for value in entropy[:_POOL]:
        v = value ^ hash_const
        hash_const = (hash_const * _MULT_A) & _MASK
        v = (v * hash_const) & _MASK
        pool.append(v ^ (v >> 16))
    for s in range(_POOL):
        for d in range(_POOL):
            if s != d:
                v = pool[s] ^ hash_const
                hash_const = (hash_const * _MULT_A) & _MASK
                v = (v * hash_const) & _MASK
                v ^= v >> 16
                r = (_MIX_L * pool[d] - _MIX_R * v) & _MASK
                pool[d] = r ^ (r >> 16)
    hash_const = _mix_in(pool, hash_const, entropy[_POOL:])
    return pool, hash_const


class _Words(ISeedSequence):
    """A seed sequence whose state is already known: PCG64 asks it for four 64-bit words."""

    __slots__ = ("words",)

    def __init__(self, words: np.ndarray) -> None:
        self.words = words

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        if n_words != 4 or np.dtype(dtype) != np.uint64:  # pragma: no cover - PCG64 asks this only
            raise ValueError("only PCG64's seeding is supported")
        return self.words


def _hashed(value: int, hash_const: int) -> tuple[list[int], int]:
    """A one-word value hashed for each of the pool's words, and the hash constant after them."""
    out = []
    for _ in range(_POOL):
        v = value ^ hash_const
        hash_const = (hash_const * _MULT_A) & _MASK
        v = (v * hash_const) & _MASK
        out.append(v ^ (v >> 16))
    return out, hash_const


#: per (root seed, replication): the pool and hash constant before the stream id is mixed in
_REPLICATION_POOLS: dict[tuple[int, int], tuple[list[int], int]] = {}
#: per (hash constant, stream id): the id hashed for each pool word (the constant depends only on
#: how many 32-bit words the root seed and the replication index take)
_HASHED_IDS: dict[tuple[int, int], list[int]] = {}


def pcg64_words(root_seed: int, rep: int, stream_id: int) -> np.ndarray:
    """``SeedSequence(root_seed, spawn_key=(rep, stream_id)).generate_state(4, np.uint64)``,
    computed with the root's and the replication's share of the hash cached."""
    key = (root_seed, rep)
    hit = _REPLICATION_POOLS.get(key)
    if hit is None:
        pool, hash_const = _root_pool(root_seed)
        hash_const = _mix_in(pool, hash_const, _words(rep))
        if len(_REPLICATION_POOLS) > 4096:
            _REPLICATION_POOLS.clear()
        hit = _REPLICATION_POOLS[key] = (pool, hash_const)
    pool, hash_const = hit
    hashed = _HASHED_IDS.get((hash_const, stream_id))
    if hashed is None:
        hashed = _HASHED_IDS[hash_const, stream_id] = _hashed(stream_id, hash_const)[0]
    mixed = []
    for x, v in zip(pool, hashed, strict=True):
        r = (_MIX_L * x - _MIX_R * v) & _MASK
        mixed.append(r ^ (r >> 16))
    o = _OUT
    w = []
    for i in range(8):
        v = ((mixed[i & 3] ^ o[i]) * o[i + 1]) & _MASK
        w.append(v ^ (v >> 16))
    return np.array(
        [w[0] | w[1] << 32, w[2] | w[3] << 32, w[4] | w[5] << 32, w[6] | w[7] << 32], dtype=np.uint64
    )


class Streams:
    """The named random streams of one replication, created on first use."""

    __slots__ = ("seed", "rep", "_made")

    def __init__(self, seed: int, rep: int):
        if seed < 0 or rep < 0:
            raise ValueError("seed and replication index must be non-negative")
        self.seed = int(seed)
        self.rep = int(rep)
        self._made: dict[str, np.random.Generator] = {}

    def __getitem__(self, name: str) -> np.random.Generator:
        gen = self._made.get(name)
        if gen is None:
            words = pcg64_words(self.seed, self.rep, STREAM_IDS[name])
            # numpy takes any ISeedSequence; its stubs name only SeedSequence
            gen = np.random.Generator(np.random.PCG64(_Words(words)))  # type: ignore[arg-type]
            self._made[name] = gen
        return gen


def lognormal(gen: np.random.Generator, median: float, log_sigma: float) -> float:
    """One log-normal draw (one standard normal from ``gen``) with the given median and log-sd."""
    return math.exp(math.log(median) + log_sigma * float(gen.standard_normal()))


def poisson_from_uniform(mean: float, u: float) -> int:
    """Poisson(mean) by inversion of one uniform draw ``u`` (exact for mean up to 50; above, the
    normal approximation). One uniform per draw keeps common random numbers aligned, and for the
    small means of casualty counts it is ~5x faster than numpy's array Poisson."""
    if mean <= 0.0:
        return 0
    if mean > 50.0:
        return max(0, round(mean + math.sqrt(mean) * float(ndtri(u))))
    p = math.exp(-mean)
    cdf = p
    k = 0
    while u > cdf:
        k += 1
        p *= mean / k
        cdf += p
        if p < 1e-300:
            break
    return k
