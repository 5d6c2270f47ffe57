"""Weaponeering: kill probability, weapons per target, allocation between platforms.

Notation (docs/sources.md section 2): CEP circular error probable (m); sigma = CEP / 1.1774 the
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
    """Which platform strikes each target, with how many weapons and what kill probability.

    Bombers strike the first ``bomber_targets`` targets of the package, in-theatre aircraft the rest.
    Per-target fields are lists (packages are small: Python beats numpy's per-call overhead).
    """

    weapons: list[int]  # first-wave weapons per target
    p_first_wave: list[float]  # 1 - (1 - p) ** weapons: chance the first wave destroys the target
    bomber_targets: int
    bomber_first: int  # first-wave weapons of the bombers
    theatre_first: int
    bomber_loaded: int
    theatre_loaded: int

    @property
    def first_wave(self) -> int:
        return self.bomber_first + self.theatre_first

    def spares(self) -> tuple[int, int]:
        """Spare weapons for re-attack: (bombers, in-theatre aircraft)."""
        return self.bomber_loaded - self.bomber_first, self.theatre_loaded - self.theatre_first


def allocate(
    n_bomber: list[int],
    n_theatre: list[int],
    pk_bomber: list[float],
    pk_theatre: list[float],
    bomber_capacity: int,
    bomber_share: float,
    reserve_fraction: float,
) -> Allocation:
    """Split a package's targets between bombers and in-theatre aircraft.

    ``n_*`` are first-wave weapons per target and ``pk_*`` the chance that they destroy it, for each
    platform's munition. Bombers take targets in order while their first-wave weapons stay within
    ``min(bomber_share * sum(n_bomber), bomber_capacity / (1 + reserve_fraction))``; in-theatre
    aircraft take the rest. Each platform loads its first wave plus ``reserve_fraction`` spares for
    re-attack (bombers never beyond their capacity).
    """
    k = 0
    bomber_first = 0
    if bomber_capacity > 0 and bomber_share > 0.0:
        budget = min(bomber_share * sum(n_bomber), bomber_capacity / (1.0 + reserve_fraction))
        for n in n_bomber:
            if bomber_first + n > budget + 1e-9:
                break
            bomber_first += n
            k += 1
    weapons = n_bomber[:k] + n_theatre[k:]
    theatre_first = sum(weapons) - bomber_first
    return Allocation(
        weapons=weapons,
        p_first_wave=pk_bomber[:k] + pk_theatre[k:],
        bomber_targets=k,
        bomber_first=bomber_first,
        theatre_first=theatre_first,
        bomber_loaded=min(bomber_capacity, math.ceil(bomber_first * (1.0 + reserve_fraction))),
        theatre_loaded=math.ceil(theatre_first * (1.0 + reserve_fraction)),
    )
