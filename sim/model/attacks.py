"""One attack's outcome: weapon, salvo, target base, interceptions, US casualties, severity.

Outcomes are drawn a block at a time from the ``attack_outcomes`` stream, all columns at once with
numpy, and handed out one by one. The k-th attack of a replication therefore gets the same outcome
under every policy (common random numbers), however the attack times differ.

Model, per attack:

* weapon ~ categorical(share); salvo = 1 + Poisson(salvo_mean - 1) projectiles;
* base ~ categorical(weight); each projectile is intercepted with the base's probability for the
  weapon, the rest hit;
* harm with probability 1 - (1 - harm_probability_per_hit) ** hits;
* if harmed: injured = ceil(LogNormal(ln injured_median, injured_log_sigma)) (heavy tailed: most
  harmful attacks injure one or two, a rare one dozens), and with probability killed_probability
  killed = 1 + Poisson(killed_mean - 1);
* severity from :func:`severity_level`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import binom, poisson

from sim.scenario.schema import Scenario, SeverityThresholds

NONE, MINOR, SERIOUS, DEATHS, MASS = range(5)

#: One attack's outcome: (base index, weapon, salvo, intercepted, killed, injured, severity).
AttackOutcome = tuple[int, str, int, int, int, int, int]


def severity_level(killed: int, injured: int, thresholds: SeverityThresholds) -> int:
    """Severity index of an attack: 0 none, 1 minor injuries, 2 serious, 3 deaths, 4 mass casualty."""
    if killed >= thresholds.mass_casualty_killed or injured >= thresholds.mass_casualty_injured:
        return MASS
    if killed > 0:
        return DEATHS
    if injured >= thresholds.serious_injured:
        return SERIOUS
    if injured > 0:
        return MINOR
    return NONE


_TAIL = 1e-12  # probability mass left out of the tabulated Poisson tails


def _poisson_pmf(mean: float) -> np.ndarray:
    """Poisson(mean) probabilities of 0..k, k large enough that the tail beyond is below _TAIL."""
    k = max(1, int(mean + 12.0 * math.sqrt(mean) + 12.0))
    pmf = poisson.pmf(np.arange(k + 1), mean)
    return pmf / pmf.sum()


@dataclass(frozen=True)
class AttackTable:
    """The scenario's attack parameters as one lookup table, ready for block draws.

    Every possible (base, weapon, salvo s, hits h) is an entry of a flat table with probability
    weight(base) x share(weapon) x Poisson(s - 1; salvo_mean - 1) x Binomial(h; s, 1 - p_intercept),
    entries below 1e-12 left out and the rest renormalised; one uniform and one ``searchsorted`` on the
    cumulative probabilities draw base, weapon, salvo and hits together (inverse CDF). Each entry keeps
    its harm probability and its outcome tuple for an attack that harms no one.
    """

    weapon_names: tuple[str, ...]
    base_keys: tuple[str, ...]
    base_names: tuple[str, ...]
    base_countries: tuple[str, ...]
    outcome_cdf: np.ndarray  # cumulative probability of the entries
    outcome_harm: np.ndarray  # per entry: chance that the attack harms anyone
    outcome_rows: list[AttackOutcome]  # per entry: the outcome if no one is harmed
    killed_cdf: np.ndarray  # cumulative P(killed - 1 = k)
    injured_log_median: float
    injured_log_sigma: float
    killed_probability: float
    thresholds: SeverityThresholds

    @classmethod
    def from_scenario(cls, s: Scenario) -> AttackTable:
        weapons = s.attacks.weapons
        names = tuple(weapons)
        share_total = sum(w.share for w in weapons.values())
        bases = s.bases
        keys = tuple(bases)
        weight_total = sum(b.weight for b in bases.values())
        prob: list[np.ndarray] = []
        harm: list[np.ndarray] = []
        rows: list[AttackOutcome] = []
        for b, key in enumerate(keys):
            for w in names:
                pair = bases[key].weight / weight_total * weapons[w].share / share_total
                if pair <= 0.0:
                    continue
                extra = _poisson_pmf(weapons[w].salvo_mean - 1.0)
                salvo = np.repeat(np.arange(1, len(extra) + 1), np.arange(2, len(extra) + 2))
                hits = np.concatenate([np.arange(n + 1) for n in range(1, len(extra) + 1)])
                p = pair * extra[salvo - 1] * binom.pmf(
                    hits, salvo, 1.0 - bases[key].intercept_probability[w])
                keep = p > _TAIL
                prob.append(p[keep])
                harm.append(1.0 - (1.0 - weapons[w].harm_probability_per_hit) ** hits[keep])
                rows.extend((b, w, int(n), int(n - h), 0, 0, NONE)
                            for n, h in zip(salvo[keep], hits[keep], strict=True))
        cdf = np.cumsum(np.concatenate(prob))
        cdf /= cdf[-1]
        cas = s.attacks.casualties
        killed_cdf = np.cumsum(_poisson_pmf(cas.killed_mean - 1.0))
        killed_cdf[-1] = 1.0
        return cls(
            weapon_names=names,
            base_keys=keys,
            base_names=tuple(bases[k].name for k in keys),
            base_countries=tuple(bases[k].country for k in keys),
            outcome_cdf=cdf,
            outcome_harm=np.concatenate(harm),
            outcome_rows=rows,
            killed_cdf=killed_cdf,
            injured_log_median=math.log(cas.injured_median),
            injured_log_sigma=cas.injured_log_sigma,
            killed_probability=cas.killed_probability,
            thresholds=s.attacks.severity,
        )

    def draw(self, gen: np.random.Generator, n: int) -> list[AttackOutcome]:
        """Draw the outcomes of the next ``n`` attacks, one tuple
        ``(base index, weapon, salvo, intercepted, killed, injured, severity)`` each.

        Takes 2 x n uniforms from ``gen`` (the table entry, harm), then 2 per harmed attack
        (injured, killed): most attacks harm no one, so casualties are drawn for few.
        """
        u = gen.random((2, n))
        idx = np.minimum(np.searchsorted(self.outcome_cdf, u[0], side="right"),
                         len(self.outcome_cdf) - 1)
        harmed = np.flatnonzero(u[1] < self.outcome_harm[idx]).tolist()
        rows = self.outcome_rows
        block = [rows[i] for i in idx.tolist()]
        if harmed:
            c = gen.random((2, len(harmed)))
            hurt = np.ceil(np.exp(self.injured_log_median + self.injured_log_sigma * ndtri(c[0])))
            p_kill = self.killed_probability
            dead = np.where(c[1] < p_kill, 1 + np.searchsorted(
                self.killed_cdf, c[1] / p_kill if p_kill > 0 else c[1], side="right"), 0)
            for i, h, k in zip(harmed, hurt.tolist(), dead.tolist(), strict=True):
                injured = max(int(h), 1)
                base, weapon, salvo, intercepted = block[i][:4]
                block[i] = (base, weapon, salvo, intercepted, k, injured,
                            severity_level(k, injured, self.thresholds))
        return block
