"""One attack's outcome: weapon, salvo, target base, interceptions, US casualties, severity.

Outcomes are drawn a block at a time from the ``attack_outcomes`` stream, all columns at once with
numpy, and handed out one by one. The k-th attack of a replication therefore gets the same outcome
under every policy (common random numbers), however the attack times differ.

Model, per attack:

* weapon ~ categorical(share); salvo = 1 + Poisson(salvo_mean - 1) projectiles;
* base ~ categorical(weight); each projectile is intercepted with the base's probability for the weapon;
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

from sim.scenario.schema import Scenario, SeverityThresholds

NONE, MINOR, SERIOUS, DEATHS, MASS = range(5)


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


def severity_levels(killed: np.ndarray, injured: np.ndarray, t: SeverityThresholds) -> np.ndarray:
    """Vectorised :func:`severity_level`."""
    return np.select(
        [
            (killed >= t.mass_casualty_killed) | (injured >= t.mass_casualty_injured),
            killed > 0,
            injured >= t.serious_injured,
            injured > 0,
        ],
        [MASS, DEATHS, SERIOUS, MINOR],
        default=NONE,
    )


@dataclass(frozen=True)
class AttackTable:
    """The scenario's attack parameters as arrays, ready for block draws."""

    weapon_names: tuple[str, ...]
    weapon_cum_share: np.ndarray
    salvo_extra_mean: np.ndarray
    harm_per_hit: np.ndarray
    base_keys: tuple[str, ...]
    base_names: tuple[str, ...]
    base_countries: tuple[str, ...]
    base_cum_weight: np.ndarray
    intercept: np.ndarray  # bases x weapons
    injured_log_median: float
    injured_log_sigma: float
    killed_probability: float
    killed_extra_mean: float
    thresholds: SeverityThresholds

    @classmethod
    def from_scenario(cls, s: Scenario) -> AttackTable:
        weapons = s.attacks.weapons
        names = tuple(weapons)
        share = np.array([weapons[w].share for w in names], dtype=float)
        bases = s.bases
        keys = tuple(bases)
        weight = np.array([bases[k].weight for k in keys], dtype=float)
        cas = s.attacks.casualties
        return cls(
            weapon_names=names,
            weapon_cum_share=np.cumsum(share) / share.sum(),
            salvo_extra_mean=np.array([weapons[w].salvo_mean - 1.0 for w in names]),
            harm_per_hit=np.array([weapons[w].harm_probability_per_hit for w in names]),
            base_keys=keys,
            base_names=tuple(bases[k].name for k in keys),
            base_countries=tuple(bases[k].country for k in keys),
            base_cum_weight=np.cumsum(weight) / weight.sum(),
            intercept=np.array(
                [[bases[k].intercept_probability[w] for w in names] for k in keys], dtype=float
            ),
            injured_log_median=math.log(cas.injured_median),
            injured_log_sigma=cas.injured_log_sigma,
            killed_probability=cas.killed_probability,
            killed_extra_mean=cas.killed_mean - 1.0,
            thresholds=s.attacks.severity,
        )

    def draw(self, gen: np.random.Generator, n: int) -> AttackBlock:
        """Draw the outcomes of the next ``n`` attacks."""
        u = gen.random((5, n))
        weapon = np.minimum(np.searchsorted(self.weapon_cum_share, u[0], side="right"),
                            len(self.weapon_names) - 1)
        base = np.minimum(np.searchsorted(self.base_cum_weight, u[1], side="right"),
                          len(self.base_keys) - 1)
        salvo = 1 + gen.poisson(self.salvo_extra_mean[weapon])
        hits = gen.binomial(salvo, 1.0 - self.intercept[base, weapon])
        harmed = u[2] < 1.0 - (1.0 - self.harm_per_hit[weapon]) ** hits
        injured_draw = np.ceil(
            np.exp(self.injured_log_median + self.injured_log_sigma * gen.standard_normal(n))
        ).astype(np.int64)
        injured = np.where(harmed, np.maximum(injured_draw, 1), 0)
        lethal = harmed & (u[3] < self.killed_probability)
        killed = np.where(lethal, 1 + gen.poisson(self.killed_extra_mean, n), 0)
        severity = severity_levels(killed, injured, self.thresholds)
        return AttackBlock(
            weapon.tolist(), base.tolist(), salvo.tolist(), (salvo - hits).tolist(),
            killed.tolist(), injured.tolist(), severity.tolist(),
        )


@dataclass(frozen=True, slots=True)
class AttackBlock:
    """Outcomes of a block of attacks, column by column, as Python lists (fast scalar access)."""

    weapon: list[int]
    base: list[int]
    salvo: list[int]
    intercepted: list[int]
    killed: list[int]
    injured: list[int]
    severity: list[int]
