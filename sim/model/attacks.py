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
    """The scenario's attack parameters as lookup tables, ready for block draws.

    Salvo and hits are drawn jointly by inverse CDF: for each (base, weapon) pair, the outcomes
    (salvo s, hits h) with probability Poisson(s - 1; salvo_mean - 1) x Binomial(h; s, 1 - p_intercept)
    are laid end to end, pair j occupying the interval [j, j + 1) of a flat cumulative table, so one
    ``searchsorted`` draws a whole block. Killed in a lethal attack is drawn the same way.
    """

    weapon_names: tuple[str, ...]
    weapon_cum_share: np.ndarray
    base_keys: tuple[str, ...]
    base_names: tuple[str, ...]
    base_countries: tuple[str, ...]
    base_cum_weight: np.ndarray
    outcome_cdf: np.ndarray  # flat: pair index + cumulative probability within the pair
    outcome_salvo: np.ndarray
    outcome_hits: np.ndarray
    outcome_harm: np.ndarray  # chance that the attack harms anyone, given its hits and weapon
    killed_cdf: np.ndarray  # cumulative P(killed - 1 = k)
    injured_log_median: float
    injured_log_sigma: float
    killed_probability: float
    thresholds: SeverityThresholds

    @classmethod
    def from_scenario(cls, s: Scenario) -> AttackTable:
        weapons = s.attacks.weapons
        names = tuple(weapons)
        share = np.array([weapons[w].share for w in names], dtype=float)
        bases = s.bases
        keys = tuple(bases)
        weight = np.array([bases[k].weight for k in keys], dtype=float)
        cdf, salvo, hits, harm = [], [], [], []
        for j, (k, w) in enumerate((k, w) for k in keys for w in names):
            profile = weapons[w]
            extra = _poisson_pmf(profile.salvo_mean - 1.0)
            sal = np.repeat(np.arange(1, len(extra) + 1), np.arange(2, len(extra) + 2))
            hit = np.concatenate([np.arange(n + 1) for n in range(1, len(extra) + 1)])
            prob = extra[sal - 1] * binom.pmf(hit, sal, 1.0 - bases[k].intercept_probability[w])
            prob /= prob.sum()
            keep = prob > _TAIL
            sal, hit, prob = sal[keep], hit[keep], prob[keep] / prob[keep].sum()
            c = np.cumsum(prob)
            c[-1] = 1.0
            cdf.append(j + c)
            salvo.append(sal)
            hits.append(hit)
            harm.append(1.0 - (1.0 - profile.harm_probability_per_hit) ** hit)
        cas = s.attacks.casualties
        killed_cdf = np.cumsum(_poisson_pmf(cas.killed_mean - 1.0))
        killed_cdf[-1] = 1.0
        return cls(
            weapon_names=names,
            weapon_cum_share=np.cumsum(share) / share.sum(),
            base_keys=keys,
            base_names=tuple(bases[k].name for k in keys),
            base_countries=tuple(bases[k].country for k in keys),
            base_cum_weight=np.cumsum(weight) / weight.sum(),
            outcome_cdf=np.concatenate(cdf),
            outcome_salvo=np.concatenate(salvo),
            outcome_hits=np.concatenate(hits),
            outcome_harm=np.concatenate(harm),
            killed_cdf=killed_cdf,
            injured_log_median=math.log(cas.injured_median),
            injured_log_sigma=cas.injured_log_sigma,
            killed_probability=cas.killed_probability,
            thresholds=s.attacks.severity,
        )

    def draw(self, gen: np.random.Generator, n: int) -> list[AttackOutcome]:
        """Draw the outcomes of the next ``n`` attacks, one tuple
        ``(base index, weapon, salvo, intercepted, killed, injured, severity)`` each.

        Takes 4 x n uniforms from ``gen`` (weapon, base, salvo and hits, harm), then 2 per harmed
        attack (injured, killed): most attacks harm no one, so casualties are drawn for few.
        """
        u = gen.random((4, n))
        nw = len(self.weapon_names)
        weapon = np.minimum(np.searchsorted(self.weapon_cum_share, u[0], side="right"), nw - 1)
        base = np.minimum(np.searchsorted(self.base_cum_weight, u[1], side="right"),
                          len(self.base_keys) - 1)
        idx = np.searchsorted(self.outcome_cdf, base * nw + weapon + u[2], side="right")
        idx = np.minimum(idx, len(self.outcome_cdf) - 1)
        salvo = self.outcome_salvo[idx]
        harmed = np.flatnonzero(u[3] < self.outcome_harm[idx]).tolist()
        killed = [0] * n
        injured = [0] * n
        severity = [NONE] * n
        if harmed:
            c = gen.random((2, len(harmed)))
            hurt = np.ceil(np.exp(self.injured_log_median + self.injured_log_sigma * ndtri(c[0])))
            p_kill = self.killed_probability
            dead = np.where(c[1] < p_kill, 1 + np.searchsorted(
                self.killed_cdf, c[1] / p_kill if p_kill > 0 else c[1], side="right"), 0)
            for i, h, k in zip(harmed, hurt.tolist(), dead.tolist(), strict=True):
                injured[i] = max(int(h), 1)
                killed[i] = k
                severity[i] = severity_level(k, injured[i], self.thresholds)
        names = self.weapon_names
        return list(zip(base.tolist(), [names[w] for w in weapon.tolist()], salvo.tolist(),
                        (salvo - self.outcome_hits[idx]).tolist(), killed, injured, severity,
                        strict=True))
