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
With ``b1b.generation_on_warning_order`` the bombers are generated from the moment the decision
starts (a warning order), so their preparation overlaps the decision.

Three more ways the US strikes, each off under the ``never`` policy (run responses also under
``deaths_only``, which answers deaths alone):

* **Self-defence engagements** (``command.self_defense``): aircraft or armed drones already in
  theatre find and engage an attack's launch team with ``engagement_probability`` (the attack's
  own uniform from the ``engagements`` stream, so the k-th attack is engaged alike under every
  policy), ``lag`` after the attack, killing Poisson(``killed_mean``) militia.
* **Run responses** (``command.run_response``): ``attacks`` attacks within ``window_days``, none
  of them answered on its own, draw a planned strike with the package of severity ``package``; no
  new run response for ``cooldown_days``.
* **Commanders hunted on their own** (``command.targeted_strike.standalone_per_day``): armed-drone
  strikes ordered as a Poisson process, without a package (stream ``hunts``).

Each decision started on an attack is news to the patron (:mod:`sim.model.patron`): a US response
in preparation.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from simpy.events import ProcessGenerator

from sim.model import events as ev
from sim.model.attacks import DEATHS, NONE, AttackOutcome
from sim.model.strikes import plan_package, self_defense_strike, strike_rung, targeted_strike
from sim.rng import lognormal
from sim.scenario.schema import SEVERITY_LEVELS

if TYPE_CHECKING:
    import simpy

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

    def __init__(self, world: World) -> None:
        self.world = world
        self.env = world.env
        self.cfg = world.scenario.command
        self.threshold = policy_threshold(self.cfg.policy, self.cfg.min_severity)
        self.warning_from = SEVERITY_LEVELS.index(self.cfg.warning.min_severity)
        self.pending_severity = -1
        self.pending_decision = 0
        self.packages = 0
        strikes_at_all = self.cfg.policy != "never"
        #: chance that an attack's launch team is engaged (0 under ``never``)
        self.engage_p = self.cfg.self_defense.engagement_probability if strikes_at_all else 0.0
        self.engages = self.engage_p > 0.0
        run = self.cfg.run_response
        #: whether attacks are counted for run responses (``recent`` holds their times, hours)
        self.counts_runs = run.enabled and self.cfg.policy in ("severity_triggered", "proportional")
        self.recent: deque[float] = deque()
        self.run_window = run.window_days * 24.0
        self.run_attacks = run.attacks
        self.run_severity = SEVERITY_LEVELS.index(run.package)
        self.run_next = 0.0  # no run response before this time (cooldown)
        self.warning_order: simpy.Process | None = None  # bombers generated for a pending decision
        hunts = self.cfg.targeted_strike.standalone_per_day
        if strikes_at_all and hunts > 0.0:
            self.env.process(self._hunt(hunts / 24.0))

    def _run_due(self, t: float) -> bool:
        """Whether an attack at ``t`` completes a run that draws a strike."""
        if not self.counts_runs or t < self.run_next or self.pending_severity >= 0:
            return False
        recent, start = self.recent, t - self.run_window
        while recent and recent[0] <= start:
            recent.popleft()
        return len(recent) + 1 >= self.run_attacks

    def acts_on(self, outcome: AttackOutcome, t: float) -> bool:
        """Whether an attack with this outcome at ``t`` (hours) makes the command act: a decision on
        its severity, a self-defence engagement, or a run response (the militia asks first, to bring
        SimPy's clock to the attack before anything is scheduled)."""
        severity = outcome[6]
        return (
            (severity >= self.threshold and severity > self.pending_severity)
            or outcome[7] < self.engage_p
            or self._run_due(t)
        )

    def on_attack(self, t: float, outcome: AttackOutcome, country: str, location: str) -> None:
        """Act on an attack that :meth:`acts_on` accepts, at the time of the attack."""
        severity = outcome[6]
        if outcome[7] < self.engage_p:
            self.env.process(self_defense_strike(self.world, self._next_package(), country, location))
        if severity >= self.threshold and severity > self.pending_severity:
            trigger = f"{ev.SEVERITY_WORDS[SEVERITY_LEVELS[severity]]} attack on {location} ({country})"
            self._start(severity, trigger)
            self.world.patron.on_response_prepared(t, severity)
        elif self._run_due(t):
            self.run_next = t + self.cfg.run_response.cooldown_days * 24.0
            self.recent.clear()
            days = self.cfg.run_response.window_days
            self._start(
                self.run_severity,
                f"run of {self.run_attacks} attacks in {days:g} days, the last on {location} ({country})",
            )

    def _start(self, severity: int, trigger: str) -> None:
        self.pending_decision += 1
        self.pending_severity = severity
        if (
            self.asset_for(severity) == "bomber"
            and self.world.scenario.b1b.generation_on_warning_order
            and self.warning_order is None
        ):
            self.warning_order = self.env.process(self.world.bombers.prepare())
        self.env.process(self._decide(self.pending_decision, severity, trigger))

    def _next_package(self) -> int:
        self.packages += 1
        return self.packages

    def _hunt(self, rate_per_hour: float) -> ProcessGenerator:
        """Process: armed-drone strikes on commanders ordered on their own (Poisson, ``hunts``)."""
        gen = self.world.streams["hunts"]
        while True:
            yield self.env.timeout(float(gen.exponential(1.0 / rate_per_hour)))
            self.env.process(targeted_strike(self.world, self._next_package(), NONE, lag=False))

    def asset_for(self, severity: int) -> str:
        """The package's asset class, falling back to in-theatre aircraft if no bomber can fly."""
        asset = self.cfg.packages[SEVERITY_LEVELS[severity]].asset
        if asset == "bomber" and not self.world.bombers.usable:
            return "fighter"
        return asset

    def _decide(self, decision: int, severity: int, trigger: str) -> ProcessGenerator:
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
        pid = self._next_package()
        warned = cfg.warning.enabled and severity >= self.warning_from
        pkg = plan_package(world, pid, severity, asset, warned, package_cfg.facilities, package_cfg.targets)
        hunt = gen.random() < package_cfg.targeted_strike_probability
        t = self.env.now
        what = (
            f"{ev.plural(pkg.targets, 'target')} at "
            f"{ev.plural(len(pkg.facilities), 'facility', 'facilities')} by "
            f"{'B-1B bombers' if asset == 'bomber' else 'in-theatre aircraft'}"
            if pkg.targets
            else "no air strike"
        )
        world.log.record(
            t,
            ev.DECISION,
            ev.US,
            package=pid,
            asset=asset,
            severity=severity,
            rung=int(strike_rung(world, pkg)) if pkg.targets else int(ev.Rung.QUIET),
            targets=pkg.targets,
            detail=f"answering the {trigger}: {what}" + ("; armed drone to hunt a commander" if hunt else ""),
        )
        if hunt:
            self.env.process(targeted_strike(world, pid, severity))
        prepared = None
        if asset == "bomber":
            prepared, self.warning_order = self.warning_order, None
        if not pkg.targets:
            return
        if warned:
            world.log.record(
                t,
                ev.WARNING,
                ev.US,
                package=pid,
                asset=asset,
                severity=severity,
                detail="public warning of a coming response: militia disperse",
            )
        yield from self._wait_for_weather(pid)
        if asset == "bomber":
            yield from world.bombers.mission(pkg, prepared)
        else:
            yield from world.theatre.strike(pkg)

    def _wait_for_weather(self, package_id: int) -> ProcessGenerator:
        weather = self.cfg.weather
        gen = self.world.streams["weather"]
        while gen.random() >= weather.clear_probability:
            self.world.log.record(
                self.env.now,
                ev.WEATHER_DELAY,
                ev.US,
                package=package_id,
                wait_hours=weather.recheck_hours,
                detail="clouds over the targets: strike held",
            )
            yield self.env.timeout(weather.recheck_hours)
