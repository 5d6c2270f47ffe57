"""The US retaliation decision: policy, decision lag, package, asset, warning and weather.

Policies (``command.policy``) set the lowest attack severity that is answered:

* ``severity_triggered``: attacks of ``command.min_severity`` or worse (the default);
* ``proportional``: every attack;
* ``deaths_only``: attacks that kill US personnel;
* ``never``: none.

An answered attack starts a decision whose lag is drawn (log-normal) for the package's asset class.
A worse attack while a decision is pending supersedes it; an equal or milder one does not start a
new one. When the lag has run, the package for the trigger's severity is planned, a public warning
is issued if the scenario asks for one, an armed drone may be sent after a commander, and the strike
waits for clear weather before the aircraft go: a CONUS B-1B mission for ``bomber`` packages (if the
fleet is enabled and has aircraft, otherwise in-theatre aircraft), in-theatre sorties for ``fighter``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.model import events as ev
from sim.model.attacks import DEATHS, NONE
from sim.model.strikes import plan_package, strike_rung, targeted_strike
from sim.rng import lognormal
from sim.scenario.schema import SEVERITY_LEVELS

if TYPE_CHECKING:
    from sim.model.world import World

NEVER = len(SEVERITY_LEVELS)


def policy_threshold(policy: str, min_severity: str) -> int:
    """Lowest severity index that the policy answers (``NEVER`` answers nothing)."""
    return {
        "severity_triggered": SEVERITY_LEVELS.index(min_severity),
        "proportional": NONE,
        "deaths_only": DEATHS,
        "never": NEVER,
    }[policy]


class USCommand:
    """Decides whether, when and how the US strikes back."""

    def __init__(self, world: World):
        self.world = world
        self.env = world.env
        self.cfg = world.scenario.command
        self.threshold = policy_threshold(self.cfg.policy, self.cfg.min_severity)
        self.warning_from = SEVERITY_LEVELS.index(self.cfg.warning.min_severity)
        self.pending_severity = -1
        self.pending_decision = 0
        self.packages = 0

    def acts_on(self, severity: int) -> bool:
        """Whether an attack of this severity, now, starts a decision (the militia asks first, to
        bring SimPy's clock to the attack before the decision is scheduled)."""
        return severity >= self.threshold and severity > self.pending_severity

    def on_attack(self, severity: int, country: str, location: str) -> None:
        """Start a decision on an attack that :meth:`acts_on` accepts, at the time of the attack."""
        self.pending_decision += 1
        self.pending_severity = severity
        trigger = f"{SEVERITY_LEVELS[severity].replace('_', ' ')} attack on {location} ({country})"
        self.env.process(self._decide(self.pending_decision, severity, trigger))

    def asset_for(self, severity: int) -> str:
        """The package's asset class, falling back to in-theatre aircraft if no bomber can fly."""
        asset = self.cfg.packages[SEVERITY_LEVELS[severity]].asset
        if asset == "bomber" and not self.world.bombers.usable:
            return "fighter"
        return asset

    def _decide(self, decision: int, severity: int, trigger: str):
        world = self.world
        cfg = self.cfg
        level = SEVERITY_LEVELS[severity]
        package_cfg = cfg.packages[level]
        asset = self.asset_for(severity)
        lag = getattr(cfg.decision_lag, asset)
        gen = world.streams["decisions"]
        yield self.env.timeout(lognormal(gen, lag.median_hours, lag.log_sigma))
        if decision != self.pending_decision:
            return  # superseded by a worse attack
        self.pending_severity = -1
        self.packages += 1
        pid = self.packages
        warned = cfg.warning.enabled and severity >= self.warning_from
        pkg = plan_package(world, pid, severity, asset, warned,
                           package_cfg.facilities, package_cfg.targets)
        hunt = gen.random() < package_cfg.targeted_strike_probability
        t = self.env.now
        what = (f"{pkg.targets} targets at {package_cfg.facilities} facilities by "
                f"{'B-1B bombers' if asset == 'bomber' else 'in-theatre aircraft'}"
                if pkg.targets else "no air strike")
        world.log.record(
            t, ev.DECISION, ev.US, package=pid, asset=asset, severity=severity,
            rung=int(strike_rung(world, pkg)) if pkg.targets else int(ev.Rung.QUIET),
            targets=pkg.targets,
            detail=f"answering the {trigger}: {what}"
                   + ("; armed drone to hunt a commander" if hunt else ""),
        )
        if hunt:
            self.env.process(targeted_strike(world, pid, severity))
        if not pkg.targets:
            return
        if warned:
            world.log.record(t, ev.WARNING, ev.US, package=pid, asset=asset, severity=severity,
                             detail="public warning of a coming response: militia disperse")
        yield from self._wait_for_weather(pid)
        if asset == "bomber":
            yield from world.bombers.mission(pkg)
        else:
            yield from world.theatre.strike(pkg)

    def _wait_for_weather(self, package_id: int):
        weather = self.cfg.weather
        gen = self.world.streams["weather"]
        while gen.random() >= weather.clear_probability:
            self.world.log.record(self.env.now, ev.WEATHER_DELAY, ev.US, package=package_id,
                                  wait_hours=weather.recheck_hours,
                                  detail="clouds over the targets: strike held")
            yield self.env.timeout(weather.recheck_hours)
