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
}


def stream_seed(root_seed: int, rep: int, name: str) -> np.random.SeedSequence:
    """The SeedSequence of one named stream of one replication."""
    return np.random.SeedSequence(int(root_seed), spawn_key=(int(rep), STREAM_IDS[name]))


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
            gen = np.random.Generator(np.random.PCG64(stream_seed(self.seed, self.rep, name)))
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
