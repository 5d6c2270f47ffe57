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

import functools
import math
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import gammaln, ndtri, xlog1py, xlogy

from sim.model import events as ev
from sim.rng import lognormal
from sim.scenario.schema import Scenario, SeverityThresholds

if TYPE_CHECKING:
    from sim.model.world import World

NONE, MINOR, SERIOUS, DEATHS, MASS = range(5)

#: One attack's outcome: (base index, weapon, salvo, intercepted, killed, injured, severity, u), u
#: the uniform that decides whether US aircraft in theatre engage the launch team (1.0: never).
AttackOutcome = tuple[int, str, int, int, int, int, int, float]


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
    n = np.arange(k + 1, dtype=np.float64)
    pmf = np.exp(xlogy(n, mean) - mean - gammaln(n + 1.0))
    return pmf / pmf.sum()


def _binomial_pmf(k: np.ndarray, n: np.ndarray, p: float) -> np.ndarray:
    """Binomial(k; n, p), elementwise (scipy.stats.binom.pmf without its per-call overhead)."""
    log_choose = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
    return np.exp(log_choose + xlogy(k, p) + xlog1py(n - k, -p))


@functools.lru_cache(maxsize=16)
def _outcome_grid(signature: tuple) -> tuple[np.ndarray, list[AttackOutcome], np.ndarray, np.ndarray]:
    """The (base, weapon, salvo, hits) entries of an attack table: cumulative probabilities, outcome
    rows, weapon index and hits per entry.

    ``signature`` holds every number the grid depends on: ``((weapon, share, salvo_mean), ...)`` and
    ``((base weight, (intercept probability per weapon, ...)), ...)``. Cached, because a calibration
    builds many scenarios that differ only in what the grid does not depend on.
    """
    weapons, bases = signature
    share_total = sum(share for _, share, _ in weapons)
    weight_total = sum(weight for weight, _ in bases)
    grid = []  # per weapon: every (salvo s, hits h <= s) pair and the Poisson weight of s
    for _, _, salvo_mean in weapons:
        extra = _poisson_pmf(salvo_mean - 1.0)
        salvo = np.repeat(np.arange(1, len(extra) + 1), np.arange(2, len(extra) + 2))
        hits = np.concatenate([np.arange(n + 1) for n in range(1, len(extra) + 1)])
        grid.append((salvo, hits, extra[salvo - 1]))
    prob: list[np.ndarray] = []
    weapon_index: list[np.ndarray] = []
    all_hits: list[np.ndarray] = []
    rows: list[AttackOutcome] = []
    for b, (weight, intercept) in enumerate(bases):
        for j, (name, share, _) in enumerate(weapons):
            pair = weight / weight_total * share / share_total
            if pair <= 0.0:
                continue
            salvo, hits, poisson_weight = grid[j]
            p = pair * poisson_weight * _binomial_pmf(hits, salvo, 1.0 - intercept[j])
            keep = p > _TAIL
            prob.append(p[keep])
            kept, kept_hits = salvo[keep], hits[keep]
            m = len(kept)
            weapon_index.append(np.full(m, j))
            all_hits.append(kept_hits)
            rows.extend(
                zip(
                    repeat(b, m),
                    repeat(name, m),
                    kept.tolist(),
                    (kept - kept_hits).tolist(),
                    repeat(0, m),
                    repeat(0, m),
                    repeat(NONE, m),
                    repeat(1.0, m),
                    strict=True,
                )
            )
    cdf = np.cumsum(np.concatenate(prob))
    cdf /= cdf[-1]
    return cdf, rows, np.concatenate(weapon_index), np.concatenate(all_hits)


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
    outcome_heads: list[tuple]  # per entry: its first seven fields (all but the engagement's u)
    killed_cdf: np.ndarray  # cumulative P(killed - 1 = k)
    injured_log_median: float
    injured_log_sigma: float
    killed_probability: float
    thresholds: SeverityThresholds

    @classmethod
    def from_scenario(cls, s: Scenario) -> AttackTable:
        weapons = s.attacks.weapons
        names = tuple(weapons)
        bases = s.bases
        keys = tuple(bases)
        signature = (
            tuple((w, weapons[w].share, weapons[w].salvo_mean) for w in names),
            tuple((bases[k].weight, tuple(bases[k].intercept_probability[w] for w in names)) for k in keys),
        )
        cdf, rows, weapon_index, hits = _outcome_grid(signature)
        per_hit = np.array([weapons[w].harm_probability_per_hit for w in names])
        harm = 1.0 - (1.0 - per_hit[weapon_index]) ** hits
        cas = s.attacks.casualties
        killed_cdf = np.cumsum(_poisson_pmf(cas.killed_mean - 1.0))
        killed_cdf[-1] = 1.0
        return cls(
            weapon_names=names,
            base_keys=keys,
            base_names=tuple(bases[k].name for k in keys),
            base_countries=tuple(bases[k].country for k in keys),
            outcome_cdf=cdf,
            outcome_harm=harm,
            outcome_rows=rows,
            outcome_heads=[row[:7] for row in rows],
            killed_cdf=killed_cdf,
            injured_log_median=math.log(cas.injured_median),
            injured_log_sigma=cas.injured_log_sigma,
            killed_probability=cas.killed_probability,
            thresholds=s.attacks.severity,
        )

    def draw(
        self, gen: np.random.Generator, n: int, engagements: np.random.Generator | None = None
    ) -> list[AttackOutcome]:
        """Draw the outcomes of the next ``n`` attacks, one tuple
        ``(base index, weapon, salvo, intercepted, killed, injured, severity, u)`` each.

        Takes 2 x n uniforms from ``gen`` (the table entry, harm), then 2 per harmed attack
        (injured, killed): most attacks harm no one, so casualties are drawn for few. With
        ``engagements``, n uniforms from it give each attack its ``u`` (else 1.0).
        """
        u = gen.random((2, n))
        idx = np.minimum(np.searchsorted(self.outcome_cdf, u[0], side="right"), len(self.outcome_cdf) - 1)
        harmed = np.flatnonzero(u[1] < self.outcome_harm[idx]).tolist()
        rows = self.outcome_rows
        if engagements is None:
            block = [rows[i] for i in idx.tolist()]
        else:
            heads = self.outcome_heads
            block = [
                heads[i] + (e,) for i, e in zip(idx.tolist(), engagements.random(n).tolist(), strict=True)
            ]
        if harmed:
            c = gen.random((2, len(harmed)))
            hurt = np.ceil(np.exp(self.injured_log_median + self.injured_log_sigma * ndtri(c[0])))
            p_kill = self.killed_probability
            dead = np.where(
                c[1] < p_kill,
                1 + np.searchsorted(self.killed_cdf, c[1] / p_kill if p_kill > 0 else c[1], side="right"),
                0,
            )
            for i, h, k in zip(harmed, hurt.tolist(), dead.tolist(), strict=True):
                injured = max(int(h), 1)
                base, weapon, salvo, intercepted = block[i][:4]
                block[i] = (
                    base,
                    weapon,
                    salvo,
                    intercepted,
                    k,
                    injured,
                    severity_level(k, injured, self.thresholds),
                    block[i][7],
                )
        return block


class InjuryReports:
    """Injuries diagnosed after the attack (mostly brain injuries): a share of an attack's injured is
    reported ``diagnosis_delay`` later, in an ``injury_report`` row (``injury_reports`` stream)."""

    def __init__(self, world: World) -> None:
        self.world = world
        cas = world.scenario.attacks.casualties
        self.share = cas.late_diagnosis_share
        self.delay = cas.diagnosis_delay

    def report_late(self, t: float, injured: int, country: str, location: str) -> int:
        """Of ``injured`` in an attack at ``t`` (hours), how many are diagnosed late:
        Binomial(injured, share); their report is logged at its time."""
        gen = self.world.streams["injury_reports"]
        late = int(gen.binomial(injured, self.share))
        self._report(gen, t, late, country, location)
        return late

    def report_later(self, t: float, reported: int, country: str, location: str) -> int:
        """Later diagnoses of a documented attack whose first report counted ``reported`` injured:
        the late among all injured given the ``reported`` at once, NegativeBinomial(reported,
        1 - share), the same account as :meth:`report_late` seen from the first report."""
        gen = self.world.streams["injury_reports"]
        late = int(gen.negative_binomial(reported, 1.0 - self.share)) if self.share < 1.0 else 0
        self._report(gen, t, late, country, location)
        return late

    def _report(self, gen, t: float, late: int, country: str, location: str) -> None:
        days = lognormal(gen, self.delay.median_days, self.delay.log_sigma)
        when = t + 24.0 * days
        if not late or when >= self.world.horizon:
            return
        env = self.world.env

        def report(_event) -> None:
            self.world.log.record(
                when,
                ev.INJURY_REPORT,
                ev.US,
                country=country,
                location=location,
                us_injured=late,
                detail=f"{late} more injured in the attack on {location}, diagnosed {days:.0f} days after it",
            )

        env.timeout(when - env.now).callbacks.append(report)
