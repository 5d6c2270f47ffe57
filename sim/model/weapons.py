"""Weaponeering: kill probability, weapons per target, allocation between platforms.

Notation (reference/facts.md section 2): CEP circular error probable (m); sigma = CEP / 1.1774 the
per-axis miss standard deviation; LR lethal radius (m) = munition lethal radius x target hardness
factor; R reliability; Pa probability of arrival.

* cookie cutter: SSPK = 1 - 0.5 ** ((LR / CEP) ** 2)
* Carleton: SSPK = b^2 / (b^2 + sigma^2) for the damage function D(r) = exp(-r^2 / (2 b^2)); b is set
  to LR / sqrt(2) so that both functions have the same lethal area, pi LR^2.
* per weapon p = Pa * R * SSPK; with n weapons Pk = 1 - (1 - p) ** n
* weapons to reach a desired damage expectancy DE: n = ceil(ln(1 - DE) / ln(1 - p)), at least 1 and at
  most the cap per target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.scenario.schema import Munition

CEP_TO_SIGMA = 1.1774


def sspk_cookie_cutter(lethal_radius_m: float, cep_m: float) -> float:
    """Single-shot kill probability with a cookie-cutter damage function."""
    return 1.0 - 0.5 ** ((lethal_radius_m / cep_m) ** 2)


def sspk_carleton(lethal_radius_m: float, cep_m: float) -> float:
    """Single-shot kill probability with a Carleton damage function of equal lethal area."""
    b2 = lethal_radius_m**2 / 2.0
    sigma = cep_m / CEP_TO_SIGMA
    return b2 / (b2 + sigma**2)


SSPK = {"cookie_cutter": sspk_cookie_cutter, "carleton": sspk_carleton}


def kill_probability(m: Munition, lethal_radius_factor: float, damage_function: str) -> float:
    """Probability that one weapon of munition ``m`` destroys a target of the given hardness."""
    sspk = SSPK[damage_function](m.lethal_radius_m * lethal_radius_factor, m.cep_m)
    return m.arrival_probability * m.reliability * sspk


def cumulative_kill(p: float, n: int) -> float:
    """Probability that at least one of n independent weapons destroys the target."""
    return 1.0 - (1.0 - p) ** n


def weapons_for(p: float, desired_damage_expectancy: float, cap: int) -> int:
    """Weapons per target to reach the desired damage expectancy, between 1 and ``cap``."""
    if p >= 1.0:
        return 1
    if p <= 0.0:
        return cap
    n = math.ceil(math.log(1.0 - desired_damage_expectancy) / math.log(1.0 - p) - 1e-12)
    return max(1, min(cap, n))


@dataclass(frozen=True)
class Allocation:
    """Which platform strikes each target, with how many weapons and what kill probability."""

    weapons: np.ndarray  # first-wave weapons per target
    p_kill: np.ndarray  # per-weapon kill probability per target
    by_bomber: np.ndarray  # bool per target
    bomber_loaded: int
    theatre_loaded: int

    @property
    def first_wave(self) -> int:
        return int(self.weapons.sum())


def allocate(
    p_bomber: np.ndarray,
    p_theatre: np.ndarray,
    n_bomber: np.ndarray,
    n_theatre: np.ndarray,
    bomber_capacity: int,
    bomber_share: float,
    reserve_fraction: float,
) -> Allocation:
    """Split a package's targets between bombers and in-theatre aircraft.

    Bombers take targets in order while their first-wave weapons stay within
    ``min(bomber_share * sum(n_bomber), bomber_capacity / (1 + reserve))``; in-theatre aircraft take
    the rest. Each platform loads its first wave plus ``reserve_fraction`` spare weapons for re-attack
    (bombers never beyond their capacity).
    """
    budget = min(bomber_share * float(n_bomber.sum()), bomber_capacity / (1.0 + reserve_fraction))
    by_bomber = np.cumsum(n_bomber) <= budget + 1e-9 if bomber_capacity > 0 else np.zeros(
        len(n_bomber), dtype=bool)
    weapons = np.where(by_bomber, n_bomber, n_theatre)
    p_kill = np.where(by_bomber, p_bomber, p_theatre)
    bomber_first = int(weapons[by_bomber].sum())
    theatre_first = int(weapons[~by_bomber].sum())
    bomber_loaded = min(bomber_capacity, math.ceil(bomber_first * (1.0 + reserve_fraction)))
    theatre_loaded = math.ceil(theatre_first * (1.0 + reserve_fraction))
    return Allocation(weapons, p_kill, by_bomber, bomber_loaded, theatre_loaded)


def reattack_mask(survivors: np.ndarray, weapons: np.ndarray, spare: int) -> np.ndarray:
    """Targets seen surviving that the spare weapons can re-attack, in order, each with its first-wave
    number of weapons."""
    need = np.where(survivors, weapons, 0)
    return survivors & (np.cumsum(need) <= spare)
