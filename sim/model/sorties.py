"""B-1B and in-theatre sorties: fleet, generation, legs, tankers, crews and turnaround.

A B-1B mission (``logistics`` stream):

1. **Aircraft**: of the home-base aircraft not flying or in turnaround, Binomial(idle,
   mission_capable_rate) are mission capable; the package takes up to ``aircraft_per_package`` of
   them, and waits ``availability_recheck_hours`` if none is.
2. **Generation**: log-normal hours of loading and planning; with ``generation_on_warning_order``
   it starts when the decision starts (:meth:`BomberFleet.prepare`), so it overlaps the decision.
3. **Crew**: a planned block time above ``crew_duty_limit_hours`` cancels the bomber sortie at
   tasking (the package goes to in-theatre aircraft); otherwise each aircraft takes a crew from a
   pool (SimPy resource) before take-off and the crew rests ``crew_rest_hours`` after landing.
4. **Legs**: the block time is outbound leg + time over target + inbound leg, so each leg lasts
   (block_time_hours - time_over_target_hours) / 2. With r refuellings per leg a leg is flown as
   r + 1 equal cruise segments; each refuelling takes a tanker from the pool (a SimPy resource): a
   bomber that finds no tanker waits, which lengthens its mission beyond the nominal block time. A
   tanker is busy ``refuelling_hours`` plus ``tanker_recovery_hours``. With no waiting the block
   time is exactly ``block_time_hours`` and the cruise speed is round_trip_miles / (block time -
   time over target - refuelling time).
5. **Time over target**: when every bomber of the package has arrived the strike is resolved; in-theatre
   aircraft deliver the share of the package that the bombers do not carry at the same time.
6. **Recovery**: after landing each aircraft needs ``turnaround_hours``; with
   ``breakage_probability`` it breaks and needs a log-normal repair time as well.

In-theatre packages fly ceil(weapons / weapons_per_sortie) sorties in waves of at most
``aircraft_available``; the first wave reaches the targets half a sortie after take-off.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import simpy
from simpy.events import ProcessGenerator

from sim.model import events as ev
from sim.model.events import Rung
from sim.model.strikes import StrikePackage, carry_out, strike_rung, weaponeer
from sim.rng import lognormal

if TYPE_CHECKING:
    from sim.model.world import World


class BomberFleet:
    """The CONUS B-1B fleet at the home base, with its tanker pool and crews."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.env = world.env
        self.cfg = world.scenario.b1b
        self.busy = 0
        self._tankers: simpy.Resource | None = None
        self._crews: simpy.Resource | None = None

    @property
    def usable(self) -> bool:
        return self.cfg.enabled and self.cfg.fleet_at_home_base > 0

    @property
    def tankers(self) -> simpy.Resource:
        if self._tankers is None:
            self._tankers = simpy.Resource(self.env, capacity=self.cfg.tanker_pool)
        return self._tankers

    @property
    def crews(self) -> simpy.Resource:
        if self._crews is None:
            self._crews = simpy.Resource(self.env, capacity=self.cfg.crews_available)
        return self._crews

    @property
    def segment_hours(self) -> float:
        """Cruise time between two refuellings (or a refuelling and an end of the leg), hours."""
        c = self.cfg
        leg = (c.block_time_hours - c.time_over_target_hours) / 2.0
        return (leg - c.refuellings_per_leg * c.refuelling_hours) / (c.refuellings_per_leg + 1)

    @property
    def cruise_mph(self) -> float:
        c = self.cfg
        return c.round_trip_miles / (
            c.block_time_hours - c.time_over_target_hours - 2 * c.refuellings_per_leg * c.refuelling_hours
        )

    def prepare(self, package_id: int = -1) -> ProcessGenerator:
        """Process: find mission-capable aircraft and generate them; its value is the number of
        aircraft ready. Started by a warning order (package -1) or by the mission itself."""
        env, c, log = self.env, self.cfg, self.world.log
        gen = self.world.streams["logistics"]
        while True:
            idle = c.fleet_at_home_base - self.busy
            ready = int(gen.binomial(idle, c.mission_capable_rate)) if idle > 0 else 0
            if ready > 0:
                break
            log.record(
                env.now,
                ev.AIRCRAFT_WAIT,
                ev.US,
                package=package_id,
                asset="bomber",
                wait_hours=c.availability_recheck_hours,
                detail=f"no mission-capable B-1B at {c.home_base}",
            )
            yield env.timeout(c.availability_recheck_hours)
        n = min(c.aircraft_per_package, ready)
        self.busy += n
        generation = lognormal(gen, c.generation.median_hours, c.generation.log_sigma)
        how = "on a warning order, " if package_id < 0 else ""
        log.record(
            env.now,
            ev.GENERATION,
            ev.US,
            package=package_id,
            asset="bomber",
            aircraft=n,
            rung=int(Rung.MAJOR_STRIKE),
            wait_hours=generation,
            detail=f"{n} of {ready} mission-capable B-1Bs generated {how}at {c.home_base} "
            f"({generation:.1f} h)",
        )
        yield env.timeout(generation)
        return n

    def mission(self, pkg: StrikePackage, prepared: simpy.Process | None = None) -> ProcessGenerator:
        """Process: one B-1B package from tasking (or from the aircraft ``prepared`` on a warning
        order) to the last landing."""
        env, c, log = self.env, self.cfg, self.world.log
        rung = int(strike_rung(self.world, pkg))
        if c.block_time_hours > c.crew_duty_limit_hours:
            if prepared is not None:
                self.busy -= yield prepared
            log.record(
                env.now,
                ev.SORTIE_CANCELLED,
                ev.US,
                package=pkg.id,
                asset="bomber",
                rung=rung,
                detail=f"planned {c.block_time_hours:g} h block time exceeds the "
                f"{c.crew_duty_limit_hours:g} h crew duty limit: "
                f"in-theatre aircraft strike instead",
            )
            pkg.asset = "fighter"
            yield from self.world.theatre.strike(pkg)
            return
        n = yield (prepared if prepared is not None else env.process(self.prepare(pkg.id)))
        pkg.aircraft = n
        alloc = weaponeer(self.world, pkg, n * c.weapons_per_aircraft[c.loadout])
        t0 = env.now
        crews = [self.crews.request() for _ in range(n)]
        yield env.all_of(crews)
        log.record(
            env.now,
            ev.TAKEOFF,
            ev.US,
            package=pkg.id,
            asset="bomber",
            aircraft=n,
            rung=rung,
            munitions=alloc.bomber_loaded,
            wait_hours=env.now - t0,
            detail=f"{n} B-1Bs take off from {c.home_base} with {alloc.bomber_loaded} "
            f"{c.loadout}; {c.round_trip_miles:,.0f} mi round trip, "
            f"{c.refuellings_per_leg} refuellings a leg, "
            f"cruise {self.cruise_mph:.0f} mph",
        )
        yield env.all_of([env.process(self._leg(pkg, i, "outbound")) for i in range(n)])
        if alloc.theatre_loaded:
            self.world.theatre.log_sorties(pkg, "alongside the bombers")
        log.record(
            env.now,
            ev.TIME_OVER_TARGET,
            ev.US,
            package=pkg.id,
            asset="bomber",
            aircraft=n,
            rung=rung,
            munitions=alloc.bomber_loaded,
            detail=f"{n} B-1Bs over the targets for {c.time_over_target_hours:g} h",
        )
        carry_out(self.world, pkg)
        yield env.timeout(c.time_over_target_hours)
        for i in range(n):
            env.process(self._return(pkg, i, crews[i], t0))

    def _leg(self, pkg: StrikePackage, aircraft: int, leg: str) -> ProcessGenerator:
        env, c = self.env, self.cfg
        seg = self.segment_hours
        for k in range(c.refuellings_per_leg):
            yield env.timeout(seg)
            asked = env.now
            req = self.tankers.request()
            yield req
            wait = env.now - asked
            yield env.timeout(c.refuelling_hours)
            self._release_after(self.tankers, req, c.tanker_recovery_hours)
            self.world.log.record(
                env.now,
                ev.REFUEL,
                ev.US,
                package=pkg.id,
                asset="bomber",
                aircraft=1,
                bomber=aircraft + 1,
                wait_hours=wait,
                detail=f"bomber {aircraft + 1} {leg} refuelling {k + 1}"
                + (f" after waiting {wait:.1f} h for a tanker" if wait > 0 else ""),
            )
        yield env.timeout(seg)

    def _release_after(self, resource: simpy.Resource, request, hours: float) -> None:
        """Give ``request`` back to ``resource`` after ``hours`` (tanker recovery, crew rest)."""

        def release(_event) -> None:
            resource.release(request)

        self.env.timeout(hours).callbacks.append(release)

    def _return(self, pkg: StrikePackage, aircraft: int, crew, took_off: float) -> ProcessGenerator:
        env, c = self.env, self.cfg
        yield from self._leg(pkg, aircraft, "inbound")
        block = env.now - took_off
        self.world.log.record(
            env.now,
            ev.LANDING,
            ev.US,
            package=pkg.id,
            asset="bomber",
            aircraft=1,
            bomber=aircraft + 1,
            wait_hours=round(block - c.block_time_hours, 6),
            detail=f"bomber {aircraft + 1} lands at {c.home_base} after {block:.1f} h",
        )
        self._release_after(self.crews, crew, c.crew_rest_hours)
        busy = c.turnaround_hours
        gen = self.world.streams["logistics"]
        if gen.random() < c.breakage_probability:
            repair = lognormal(gen, c.repair.median_hours, c.repair.log_sigma)
            busy += repair
            self.world.log.record(
                env.now,
                ev.BREAKAGE,
                ev.US,
                package=pkg.id,
                asset="bomber",
                aircraft=1,
                bomber=aircraft + 1,
                wait_hours=repair,
                detail=f"bomber {aircraft + 1} broken: {repair:.0f} h repair",
            )
        yield env.timeout(busy)
        self.busy -= 1


class TheatreAir:
    """In-theatre strike aircraft (fighters) flying short sorties."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.env = world.env
        self.cfg = world.scenario.theatre

    def sorties_for(self, weapons: int) -> tuple[int, int]:
        """(sorties, waves) needed to deliver ``weapons``."""
        c = self.cfg
        sorties = math.ceil(weapons / c.weapons_per_sortie)
        return sorties, math.ceil(sorties / c.aircraft_available)

    def log_sorties(self, pkg: StrikePackage, how: str) -> None:
        alloc = pkg.weaponeered
        sorties, waves = self.sorties_for(alloc.theatre_loaded)
        self.world.log.record(
            self.env.now,
            ev.THEATRE_SORTIES,
            ev.US,
            package=pkg.id,
            asset="fighter",
            aircraft=sorties,
            munitions=alloc.theatre_loaded,
            rung=int(strike_rung(self.world, pkg)),
            detail=f"{sorties} in-theatre sorties in {waves} wave{'s' if waves > 1 else ''} "
            f"with {alloc.theatre_loaded} {self.cfg.munition} {how}",
        )

    def strike(self, pkg: StrikePackage) -> ProcessGenerator:
        """Process: an in-theatre package from launch to time over target."""
        alloc = weaponeer(self.world, pkg, 0)
        sorties, waves = self.sorties_for(alloc.theatre_loaded)
        pkg.aircraft = sorties
        self.log_sorties(pkg, "launched")
        yield self.env.timeout(self.cfg.sortie_hours / 2.0 + (waves - 1) * self.cfg.sortie_hours)
        carry_out(self.world, pkg)
