"""A US strike package and its outcome on facilities and targets; casualties; capacity loss.

A package is planned when the decision to strike is taken (``decisions`` stream): facilities are
drawn by weight without replacement (cycling if the package needs more than exist), targets are
spread over them (each facility gets at least one) and given types by share.

At time over target (``weapons`` stream), each target is destroyed with probability
1 - (1 - p) ** n; battle damage assessment sees a survivor with ``bda_detection_probability`` and, if
``reattack``, the platform's spare weapons re-attack it with the same number of weapons. Occupants
(``casualties`` stream) ~ Poisson(occupants_mean x (1 - dispersal if warned)); each dies with
``lethality_destroyed`` if the target is destroyed, else ``lethality_survived``. Civilians are
present with ``civilian_probability`` (then Poisson(civilians_mean), at least one) and die with
the same chances. Each destroyed target removes its type's ``capacity_loss`` from militia capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sim.model import events as ev
from sim.model.events import Rung
from sim.model.weapons import Allocation, allocate, kill_probability, reattack_mask, weapons_for
from sim.scenario.schema import Scenario

if TYPE_CHECKING:
    from sim.model.world import World


@dataclass(frozen=True)
class TargetTable:
    """Target types and facilities of a scenario as arrays."""

    type_names: tuple[str, ...]
    type_cum_share: np.ndarray
    occupants: np.ndarray
    civ_probability: np.ndarray
    civ_mean: np.ndarray
    capacity_loss: np.ndarray
    lr_factor: np.ndarray
    facility_names: tuple[str, ...]
    facility_countries: tuple[str, ...]
    facility_weight: np.ndarray

    @classmethod
    def from_scenario(cls, s: Scenario) -> TargetTable:
        types = s.targets.types
        names = tuple(types)
        share = np.array([types[k].share for k in names], dtype=float)
        fac = s.targets.facilities
        fkeys = tuple(fac)
        return cls(
            type_names=names,
            type_cum_share=np.cumsum(share) / share.sum(),
            occupants=np.array([types[k].occupants_mean for k in names]),
            civ_probability=np.array([types[k].civilian_probability for k in names]),
            civ_mean=np.array([types[k].civilians_mean for k in names]),
            capacity_loss=np.array([types[k].capacity_loss for k in names]),
            lr_factor=np.array([types[k].lethal_radius_factor for k in names]),
            facility_names=tuple(fac[k].name for k in fkeys),
            facility_countries=tuple(fac[k].country for k in fkeys),
            facility_weight=np.array([fac[k].weight for k in fkeys], dtype=float),
        )

    def kill_probabilities(self, s: Scenario, munition: str) -> np.ndarray:
        """Per-weapon kill probability of ``munition`` against each target type."""
        m = s.munitions[munition]
        return np.array([kill_probability(m, f, s.targets.damage_function) for f in self.lr_factor])


@dataclass
class StrikePackage:
    """One US strike package from decision to outcome."""

    id: int
    severity: int
    asset: str
    warned: bool
    facilities: list[int]  # indices into TargetTable facilities
    target_type: np.ndarray  # per target
    target_facility: np.ndarray  # per target: position in ``facilities``
    allocation: Allocation | None = None
    aircraft: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def targets(self) -> int:
        return len(self.target_type)


def plan_package(world: World, package_id: int, severity: int, asset: str, warned: bool,
                 facilities: int, targets: int) -> StrikePackage:
    """Choose the facilities and targets of a package (``decisions`` stream)."""
    tab = world.targets
    gen = world.streams["decisions"]
    weight = tab.facility_weight
    chosen: list[int] = []
    while len(chosen) < facilities:
        take = min(facilities - len(chosen), int((weight > 0).sum()))
        chosen.extend(gen.choice(len(weight), size=take, replace=False,
                                 p=weight / weight.sum()).tolist())
    # every facility gets one target, the rest spread at random
    extra = gen.integers(0, max(facilities, 1), size=max(targets - facilities, 0))
    target_facility = np.sort(np.concatenate([np.arange(facilities), extra])).astype(np.int64)
    type_idx = np.searchsorted(tab.type_cum_share, gen.random(targets), side="right")
    target_type = np.minimum(type_idx, len(tab.type_names) - 1)
    return StrikePackage(package_id, severity, asset, warned, chosen, target_type, target_facility)


def weaponeer(world: World, pkg: StrikePackage, bomber_capacity: int) -> Allocation:
    """Weapons per target for the package's platforms (deterministic: no randomness)."""
    s = world.scenario
    t = s.targets
    p_b = world.p_kill_bomber[pkg.target_type]
    p_f = world.p_kill_theatre[pkg.target_type]
    n_b = np.array([weapons_for(p, t.desired_damage_expectancy, t.max_weapons_per_target)
                    for p in p_b], dtype=np.int64)
    n_f = np.array([weapons_for(p, t.desired_damage_expectancy, t.max_weapons_per_target)
                    for p in p_f], dtype=np.int64)
    share = s.b1b.weapon_share if bomber_capacity > 0 else 0.0
    alloc = allocate(p_b, p_f, n_b, n_f, bomber_capacity, share, t.reserve_fraction)
    pkg.allocation = alloc
    return alloc


@dataclass(frozen=True)
class StrikeResult:
    destroyed: np.ndarray  # bool per target
    munitions: np.ndarray  # weapons expended per target
    militia_killed: np.ndarray
    civilians_killed: np.ndarray
    capacity_loss: float
    reattacked: int


def resolve(world: World, pkg: StrikePackage) -> StrikeResult:
    """Draw the outcome of a package at time over target."""
    s = world.scenario.targets
    tab = world.targets
    alloc = pkg.allocation
    n_t = pkg.targets
    gen = world.streams["weapons"]
    u = gen.random((3, n_t))
    pk = 1.0 - (1.0 - alloc.p_kill) ** alloc.weapons
    destroyed = u[0] < pk
    munitions = alloc.weapons.copy()
    reattacked = np.zeros(n_t, dtype=bool)
    if s.reattack:
        seen = ~destroyed & (u[1] < s.bda_detection_probability)
        bomber_first = int(alloc.weapons[alloc.by_bomber].sum())
        theatre_first = int(alloc.weapons[~alloc.by_bomber].sum())
        reattacked = (
            reattack_mask(seen & alloc.by_bomber, alloc.weapons, alloc.bomber_loaded - bomber_first)
            | reattack_mask(seen & ~alloc.by_bomber, alloc.weapons,
                            alloc.theatre_loaded - theatre_first)
        )
        destroyed |= reattacked & (u[2] < pk)
        munitions += np.where(reattacked, alloc.weapons, 0)
    cas = world.streams["casualties"]
    types = pkg.target_type
    dispersal = world.scenario.command.warning.dispersal_fraction if pkg.warned else 0.0
    occupants = cas.poisson(tab.occupants[types] * (1.0 - dispersal))
    lethality = np.where(destroyed, s.lethality_destroyed, s.lethality_survived)
    killed = cas.binomial(occupants, lethality)
    present = cas.random(n_t) < tab.civ_probability[types]
    civilians = np.where(present, np.maximum(cas.poisson(tab.civ_mean[types]), 1), 0)
    civ_killed = cas.binomial(civilians, lethality)
    loss = float(tab.capacity_loss[types][destroyed].sum())
    return StrikeResult(destroyed, munitions, killed, civ_killed, loss, int(reattacked.sum()))


def strike_rung(world: World, pkg: StrikePackage) -> Rung:
    if pkg.asset == "bomber" or pkg.targets >= world.scenario.ladder.major_strike_targets:
        return Rung.MAJOR_STRIKE
    return Rung.LIMITED_STRIKE


def carry_out(world: World, pkg: StrikePackage) -> StrikeResult:
    """Resolve a package now, log one ``strike`` row per facility and let the militia react."""
    t = world.env.now
    result = resolve(world, pkg)
    destroyed = int(result.destroyed.sum())
    killed = int(result.militia_killed.sum())
    capacity = world.militia.on_strike(t, destroyed, killed, result.capacity_loss)
    tab = world.targets
    rung = int(strike_rung(world, pkg))
    nf = len(pkg.facilities)
    f = pkg.target_facility
    per = {
        "targets": np.bincount(f, minlength=nf),
        "destroyed": np.bincount(f, weights=result.destroyed, minlength=nf),
        "munitions": np.bincount(f, weights=result.munitions, minlength=nf),
        "militia_killed": np.bincount(f, weights=result.militia_killed, minlength=nf),
        "civilians_killed": np.bincount(f, weights=result.civilians_killed, minlength=nf),
    }
    for j, fac in enumerate(pkg.facilities):
        world.log.record(
            t, ev.STRIKE, ev.US, country=tab.facility_countries[fac],
            location=tab.facility_names[fac], package=pkg.id, asset=pkg.asset, rung=rung,
            severity=pkg.severity, aircraft=pkg.aircraft,
            **{k: int(v[j]) for k, v in per.items()},
            militia_capacity=capacity,
            detail="warned in advance" if pkg.warned else "",
        )
    if result.reattacked:
        pkg.notes.append(f"{result.reattacked} targets re-attacked after damage assessment")
    return result


def targeted_strike(world: World, package_id: int, severity: int):
    """Process: an armed-drone strike on a militia commander (``decisions`` and ``casualties``)."""
    s = world.scenario
    cfg = s.command.targeted_strike
    lag = s.command.decision_lag.drone
    gen = world.streams["decisions"]
    yield world.env.timeout(math.exp(math.log(lag.median_hours)
                                     + lag.log_sigma * gen.standard_normal()))
    t = world.env.now
    success = bool(gen.random() < cfg.success_probability)
    killed = 1 + int(world.streams["casualties"].poisson(cfg.escorts_killed_mean)) if success else 0
    tab = world.targets
    fac = int(gen.choice(len(tab.facility_weight),
                         p=tab.facility_weight / tab.facility_weight.sum()))
    capacity = world.militia.on_strike(t, int(success), killed,
                                       cfg.capacity_loss if success else 0.0)
    world.log.record(
        t, ev.STRIKE, ev.US, country=tab.facility_countries[fac],
        location=tab.facility_names[fac], package=package_id, asset="drone",
        rung=int(Rung.LEADERSHIP_STRIKE), severity=severity, aircraft=1, targets=1,
        destroyed=int(success), munitions=cfg.munitions, militia_killed=killed,
        militia_capacity=capacity,
        detail="armed-drone strike kills a militia commander" if success
        else "armed-drone strike on a militia commander misses",
    )
