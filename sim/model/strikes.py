"""A US strike package and its outcome on facilities and targets; casualties; capacity loss.

A package is planned when the decision to strike is taken (``decisions`` stream): facilities are
drawn by weight without replacement (cycling if the package needs more than exist), targets are
spread over them (each facility gets at least one) and given types by share. Weighted sampling
without replacement takes the largest Efraimidis-Spirakis keys u ** (1 / weight), compared as
ln(u) / weight.

At time over target (``weapons`` stream), each target is destroyed with probability
1 - (1 - p) ** n; battle damage assessment sees a survivor with ``bda_detection_probability`` and, if
``reattack``, the platform's spare weapons re-attack it with the same number of weapons, target by
target while the spares cover it (a target they cannot cover is skipped). Occupants (``casualties``
stream) are Poisson(occupants_mean x the facility's ``occupancy_factor`` x (1 - dispersal if warned))
and each dies with ``lethality_destroyed`` if the target is destroyed, else ``lethality_survived``, so
militia killed are Poisson(occupants_mean x occupancy_factor x (1 - dispersal) x lethality) (Poisson
thinning). Civilians are present with ``civilian_probability``; then Poisson(civilians_mean) of them are
there and die with the same chances. Each destroyed target removes its type's ``capacity_loss`` from
militia capacity.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simpy.events import ProcessGenerator

from sim.model import events as ev
from sim.model.events import Rung
from sim.model.weapons import Allocation, allocate, cumulative_kill, kill_probability, weapons_for
from sim.rng import lognormal, poisson_from_uniform
from sim.scenario.schema import Scenario

if TYPE_CHECKING:
    from sim.model.world import World


@dataclass(frozen=True)
class TargetTable:
    """Target types and facilities of a scenario, as per-type lists."""

    type_names: tuple[str, ...]
    type_cum_share: list[float]
    occupants: list[float]
    civ_probability: list[float]
    civ_mean: list[float]
    capacity_loss: list[float]
    facility_names: tuple[str, ...]
    facility_countries: tuple[str, ...]
    facility_weight: list[float]
    facility_cum_weight: list[float]
    facility_occupancy: list[float]
    n_bomber: list[int]  # per type: bomber weapons to reach the desired damage expectancy
    n_theatre: list[int]  # per type: the same for the in-theatre munition
    pk_bomber: list[float]  # per type: chance that those weapons destroy the target
    pk_theatre: list[float]

    @classmethod
    def from_scenario(cls, s: Scenario) -> TargetTable:
        types = s.targets.types
        names = tuple(types)
        fac = s.targets.facilities
        weights = [f.weight for f in fac.values()]
        share = [types[k].share for k in names]
        lr_factor = [types[k].lethal_radius_factor for k in names]
        n_b, pk_b = _weaponeer_types(s, s.b1b.loadout, lr_factor)
        n_f, pk_f = _weaponeer_types(s, s.theatre.munition, lr_factor)
        return cls(
            type_names=names,
            type_cum_share=_cumulative(share),
            occupants=[types[k].occupants_mean for k in names],
            civ_probability=[types[k].civilian_probability for k in names],
            civ_mean=[types[k].civilians_mean for k in names],
            capacity_loss=[types[k].capacity_loss for k in names],
            facility_names=tuple(f.name for f in fac.values()),
            facility_countries=tuple(f.country for f in fac.values()),
            facility_weight=weights,
            facility_cum_weight=_cumulative(weights),
            facility_occupancy=[f.occupancy_factor for f in fac.values()],
            n_bomber=n_b,
            n_theatre=n_f,
            pk_bomber=pk_b,
            pk_theatre=pk_f,
        )


def _cumulative(weights: list[float]) -> list[float]:
    total = sum(weights)
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc / total)
    out[-1] = 1.0
    return out


def _weaponeer_types(s: Scenario, munition: str, lr_factor: list[float]):
    """Per target type: weapons to reach the desired damage expectancy, and their kill chance."""
    m = s.munitions[munition]
    t = s.targets
    n, pk = [], []
    for f in lr_factor:
        p = kill_probability(m, f, t.damage_function)
        k = weapons_for(p, t.desired_damage_expectancy, t.max_weapons_per_target)
        n.append(k)
        pk.append(cumulative_kill(p, k))
    return n, pk


def _pick(cum: list[float], u: float) -> int:
    return min(bisect.bisect_right(cum, u), len(cum) - 1)


@dataclass
class StrikePackage:
    """One US strike package from decision to outcome. Targets are listed facility by facility."""

    id: int
    severity: int
    asset: str
    warned: bool
    facilities: list[int]  # indices into TargetTable facilities
    facility_targets: list[int]  # targets at each facility
    target_type: list[int]  # per target
    allocation: Allocation | None = None
    aircraft: int = 0

    @property
    def targets(self) -> int:
        return len(self.target_type)

    @property
    def weaponeered(self) -> Allocation:
        """The package's allocation; weaponeering comes before any sortie flies."""
        if self.allocation is None:
            raise RuntimeError(f"package {self.id} was not weaponeered")
        return self.allocation


def plan_package(
    world: World, package_id: int, severity: int, asset: str, warned: bool, facilities: int, targets: int
) -> StrikePackage:
    """Choose the facilities and targets of a package (``decisions`` stream)."""
    tab = world.targets
    weights = tab.facility_weight
    extra = max(targets - facilities, 0)
    u = world.streams["decisions"].random(len(weights) + extra + targets).tolist()
    keys = sorted(
        (
            (math.log(x) / w if x > 0.0 else -math.inf, i)
            for i, (x, w) in enumerate(zip(u, weights, strict=False))
            if w > 0
        ),
        reverse=True,
    )
    chosen = [keys[i % len(keys)][1] for i in range(facilities)]
    # every facility gets one target, the rest are spread at random
    per_facility = [1] * facilities
    for x in u[len(weights) : len(weights) + extra]:
        per_facility[int(x * facilities)] += 1
    cum = tab.type_cum_share
    target_type = [_pick(cum, x) for x in u[len(weights) + extra :]]
    return StrikePackage(package_id, severity, asset, warned, chosen, per_facility, target_type)


def weaponeer(world: World, pkg: StrikePackage, bomber_capacity: int) -> Allocation:
    """Weapons per target for the package's platforms (deterministic: no randomness)."""
    s = world.scenario
    tab = world.targets
    types = pkg.target_type
    share = s.b1b.weapon_share if bomber_capacity > 0 else 0.0
    alloc = allocate(
        [tab.n_bomber[k] for k in types],
        [tab.n_theatre[k] for k in types],
        [tab.pk_bomber[k] for k in types],
        [tab.pk_theatre[k] for k in types],
        bomber_capacity,
        share,
        s.targets.reserve_fraction,
    )
    pkg.allocation = alloc
    return alloc


@dataclass(frozen=True)
class StrikeResult:
    """Per-facility outcome of a package (lists in the order of ``StrikePackage.facilities``)."""

    destroyed: list[int]
    munitions: list[int]
    militia_killed: list[int]
    civilians_killed: list[int]
    capacity_loss: float
    reattacked: int


def resolve(world: World, pkg: StrikePackage) -> StrikeResult:
    """Draw the outcome of a package at time over target.

    Every target takes exactly three uniforms from ``weapons`` (first wave, damage assessment,
    re-attack) and three from ``casualties`` (militia, civilian presence, civilians), whatever
    happens to it, so that two policies striking the same targets draw alike.
    """
    s = world.scenario.targets
    tab = world.targets
    alloc = pkg.weaponeered
    n_t = pkg.targets
    w = world.streams["weapons"].random(3 * n_t).tolist()
    c = world.streams["casualties"].random(3 * n_t).tolist()
    dispersal = world.scenario.command.warning.dispersal_fraction if pkg.warned else 0.0
    spare_b, spare_t = alloc.spares()
    bda = s.bda_detection_probability if s.reattack else -1.0
    l_hit, l_miss = s.lethality_destroyed, s.lethality_survived
    weapons, p_first, k = alloc.weapons, alloc.p_first_wave, alloc.bomber_targets
    occupants, civ_p, civ_mean, cap = tab.occupants, tab.civ_probability, tab.civ_mean, tab.capacity_loss
    destroyed, munitions, militia, civilians = [], [], [], []
    loss = 0.0
    reattacked = 0
    i = 0
    for fac, count in zip(pkg.facilities, pkg.facility_targets, strict=True):
        d = m = mk = ck = 0
        stay = (1.0 - dispersal) * tab.facility_occupancy[fac]
        for _ in range(count):
            kind = pkg.target_type[i]
            n = weapons[i]
            m += n
            hit = w[3 * i] < p_first[i]
            if not hit and w[3 * i + 1] < bda:
                if i < k and n <= spare_b:
                    spare_b -= n
                elif i >= k and n <= spare_t:
                    spare_t -= n
                else:
                    n = 0
                if n:
                    m += n
                    reattacked += 1
                    hit = w[3 * i + 2] < p_first[i]
            lethality = l_hit if hit else l_miss
            if hit:
                d += 1
                loss += cap[kind]
            mk += poisson_from_uniform(occupants[kind] * stay * lethality, c[3 * i])
            if c[3 * i + 1] < civ_p[kind]:
                ck += poisson_from_uniform(civ_mean[kind] * lethality, c[3 * i + 2])
            i += 1
        destroyed.append(d)
        munitions.append(m)
        militia.append(mk)
        civilians.append(ck)
    return StrikeResult(destroyed, munitions, militia, civilians, loss, reattacked)


def strike_rung(world: World, pkg: StrikePackage) -> Rung:
    if pkg.asset == "bomber" or pkg.targets >= world.scenario.ladder.major_strike_targets:
        return Rung.MAJOR_STRIKE
    return Rung.LIMITED_STRIKE


def carry_out(world: World, pkg: StrikePackage) -> StrikeResult:
    """Resolve a package now, log one ``strike`` row per facility and let the militia react."""
    t = world.env.now
    r = resolve(world, pkg)
    tab = world.targets
    rung = int(strike_rung(world, pkg))
    detail = "warned in advance" if pkg.warned else ""
    if r.reattacked:
        detail = (
            detail + "; " if detail else ""
        ) + f"{r.reattacked} target{'s' if r.reattacked > 1 else ''} re-attacked after damage assessment"

    def record(capacity: float) -> None:
        for j, fac in enumerate(pkg.facilities):
            world.log.record(
                t,
                ev.STRIKE,
                ev.US,
                country=tab.facility_countries[fac],
                location=tab.facility_names[fac],
                package=pkg.id,
                asset=pkg.asset,
                rung=rung,
                severity=pkg.severity,
                aircraft=pkg.aircraft,
                targets=pkg.facility_targets[j],
                destroyed=r.destroyed[j],
                munitions=r.munitions[j],
                militia_killed=r.militia_killed[j],
                civilians_killed=r.civilians_killed[j],
                militia_capacity=capacity,
                detail=detail,
            )

    world.militia.on_strike(t, sum(r.destroyed), sum(r.militia_killed), r.capacity_loss, record)
    return r


def targeted_strike(world: World, package_id: int, severity: int, lag: bool = True) -> ProcessGenerator:
    """Process: an armed-drone strike on a militia commander (stream ``hunts``): after the drone
    decision lag when it goes with a package (``lag``), at once when it was ordered on its own."""
    s = world.scenario
    cfg = s.command.targeted_strike
    gen = world.streams["hunts"]
    if lag:
        wait = s.command.decision_lag.drone
        yield world.env.timeout(lognormal(gen, wait.median_hours, wait.log_sigma))
    t = world.env.now
    u = gen.random(3).tolist()
    success = u[0] < cfg.success_probability
    killed = 1 + poisson_from_uniform(cfg.escorts_killed_mean, u[1]) if success else 0
    tab = world.targets
    fac = _pick(tab.facility_cum_weight, u[2])
    alone = "" if lag else " ordered on its own"

    def record(capacity: float) -> None:
        world.log.record(
            t,
            ev.STRIKE,
            ev.US,
            country=tab.facility_countries[fac],
            location=tab.facility_names[fac],
            package=package_id,
            asset="drone",
            rung=int(Rung.LEADERSHIP_STRIKE),
            severity=severity,
            aircraft=1,
            targets=1,
            destroyed=int(success),
            munitions=cfg.munitions,
            militia_killed=killed,
            militia_capacity=capacity,
            detail=(
                f"armed-drone strike{alone} kills a militia commander"
                if success
                else f"armed-drone strike{alone} on a militia commander misses"
            ),
        )

    world.militia.on_strike(t, int(success), killed, cfg.capacity_loss if success else 0.0, record)


def self_defense_strike(world: World, package_id: int, country: str, location: str) -> ProcessGenerator:
    """Process: aircraft or an armed drone on call in theatre engage the launch team of an attack on
    ``location`` (stream ``engagement_outcomes``): ``lag`` later, Poisson(``killed_mean``) killed."""
    cfg = world.scenario.command.self_defense
    gen = world.streams["engagement_outcomes"]
    wait = lognormal(gen, cfg.lag.median_hours, cfg.lag.log_sigma)
    killed = poisson_from_uniform(cfg.killed_mean, float(gen.random()))
    yield world.env.timeout(wait)
    t = world.env.now

    def record(capacity: float) -> None:
        world.log.record(
            t,
            ev.STRIKE,
            ev.US,
            country=country,
            location=location,
            package=package_id,
            asset="self_defense",
            rung=int(Rung.LIMITED_STRIKE),
            aircraft=1,
            targets=1,
            destroyed=1,
            munitions=1,
            militia_killed=killed,
            militia_capacity=capacity,
            detail=f"self-defence engagement of the launch team of the attack on {location}, "
            f"{wait:.1f} h after it",
        )

    world.militia.on_strike(t, 1, killed, cfg.capacity_loss, record)
