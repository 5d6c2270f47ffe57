"""Militia attack generation: a marked self-exciting point process simulated by thinning in SimPy.

Intensity, in attacks per hour at time t (hours since the start)::

    lambda(t) = C(t) * ( D(t) * S(t) * (mu + E(t)) + B(t) ) * H(t)

* ``mu``: background rate (``background_rate_per_day`` / 24);
* ``D(t)``: product of the exogenous driver multipliers whose date windows cover t;
* ``E(t)``: self-excitation, ``sum_i alpha / tau_e * exp(-(t - t_i) / tau_e)`` over earlier attacks
  (branching ratio alpha, decay tau_e);
* ``B(t)``: counter-retaliation burst, ``sum_k b * sev_k / tau_b * exp(-(t - s_k) / tau_b)`` over US
  strikes at times s_k with severity sev_k = ln(1 + targets destroyed + militia killed);
* ``S(t)``: deterrence suppression, ``exp(-sum_k d * sev_k * exp(-(t - s_k) / tau_s))``;
* ``C(t)``: remaining capacity in [floor, 1]; destroyed targets remove capacity, which regenerates
  as ``1 - lost * exp(-(t - s) / tau_c)``;
* ``H(t)``: the halt regime: 1, or the share of attacks that go on while the patron's order to halt
  is in force (:mod:`sim.model.patron`).

All three sums are kept as single decaying states, so each evaluation costs O(1). Between events
E and B only decay while C and S stay at or below 1, so ``D * (mu + E) + B`` bounds the intensity
until the next driver boundary; candidates are drawn at that bound and accepted
with probability lambda / bound (Lewis-Shedler thinning). A strike wakes the process
(:class:`Wake`), which redraws from the new state: exponential waits are memoryless, so this is
exact. A change of the halt regime does the same.

The halt is not decided here: the patron (:mod:`sim.model.patron`) orders it and sets ``H``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import simpy
from simpy.core import URGENT
from simpy.events import PENDING, ProcessGenerator

from sim.model import events as ev
from sim.model.attacks import AttackOutcome, AttackTable, severity_level
from sim.model.events import ATTACK_RUNG, Event

_new_row = tuple.__new__

if TYPE_CHECKING:
    from sim.model.world import World
    from sim.scenario.schema import Scenario

_BLOCK = 256  # attack outcomes drawn at a time
_DRAWS = 128  # candidate waits (and acceptance draws) drawn at a time
_INF = float("inf")


class Wake(simpy.Event):
    """Resume a process that waits on an event now, ahead of every other event of this instant,
    with the value :data:`WOKEN` as the value of its ``yield``.

    SimPy's :meth:`simpy.Process.interrupt` schedules the same URGENT event but throws an
    :class:`simpy.Interrupt` into the generator; a value costs no exception, and the attack process
    is woken about 40 times a replication. The process's pending event keeps its place in the
    queue and no longer resumes it (as after an interrupt)."""

    __slots__ = ("process",)

    def __init__(self, process: simpy.Process) -> None:
        env = process.env
        if process._value is not PENDING:
            raise RuntimeError(f"{process} has terminated and cannot be woken")
        if process is env.active_process:
            raise RuntimeError("a process cannot wake itself")
        self.env = env
        self.callbacks = [self._wake]
        self._value = WOKEN
        self._ok = True
        self.process = process
        env.schedule(self, URGENT)

    def _wake(self, event: simpy.Event) -> None:
        process = self.process
        if process._value is not PENDING:
            return  # it ended since (a second wake in the same instant)
        process._target.callbacks.remove(process._resume)
        process._resume(self)


#: The value a woken process receives from its ``yield`` (a timeout's value is None).
WOKEN = object()


def driver_steps(s: Scenario) -> tuple[list[float], list[float]]:
    """Piecewise-constant driver multiplier: (start hours of each step, multiplier on the step)."""
    edges = {0.0}
    windows = []
    for d in s.drivers.values():
        a = s.hours_since_start(d.start_date)
        b = s.hours_since_start(d.end_date) + 24.0
        windows.append((a, b, d.rate_multiplier))
        edges.update(x for x in (a, b) if 0.0 < x < s.horizon_hours)
    starts = sorted(edges)
    values = []
    for x in starts:
        m = 1.0
        for a, b, mult in windows:
            if a <= x < b:
                m *= mult
        values.append(m)
    return starts, values


class Militia:
    """The militia network: attack process, excitation, capacity and the halt."""

    #: Evaluate candidates without a SimPy timeout when no other event can come first (exact; off,
    #: every candidate is a timeout, as a reference for tests).
    lookahead = True

    def __init__(self, world: World, table: AttackTable, steps: tuple[list[float], list[float]]) -> None:
        self.world = world
        self.env = world.env
        p = world.scenario.militia
        self.p = p
        self.mu = p.background_rate_per_day / 24.0
        self.alpha = p.branching_ratio
        self.tau_e = p.excitation_decay_days * 24.0
        self.burst = p.counter_retaliation_attacks_per_severity
        self.tau_b = p.counter_retaliation_decay_days * 24.0
        self.deter = p.deterrence_per_severity
        self.tau_s = p.deterrence_decay_days * 24.0
        self.tau_c = p.capacity_regeneration_days * 24.0
        self.horizon = world.horizon
        # decaying states: value at their reference time
        self.E = self.tE = 0.0
        self.B = self.tB = 0.0
        self.A = self.tA = 0.0
        self.lost = self.tL = 0.0
        self.regime = 1.0  # H(t): the halt regime's multiplier, set by the patron
        # driver step function, read with a forward-moving pointer (time never goes back)
        self._step_t = steps[0] + [_INF]
        self._step_v = steps[1]
        self._step = 0
        # attack outcomes and candidate draws
        self.table = table
        # candidates and bound changes handled without a SimPy timeout (model events, for benchmarks)
        self.inline_events = 0
        self._block: list = []
        self._k = _BLOCK
        self._times_gen = world.streams["attack_times"]
        self.late_share = world.scenario.attacks.casualties.late_diagnosis_share
        self.process = self.env.process(self._generate())
        for key, a in world.scenario.scripted_attacks.items():
            if a.enabled:
                self.env.process(self._scripted(key, a))

    # -- intensity ---------------------------------------------------------------------------
    def _driver(self, t: float) -> tuple[float, float]:
        """Driver multiplier at t and the time it next changes (simulation time only moves forward,
        so the pointer does too, unless asked about the past)."""
        i = self._step
        st = self._step_t
        if t < st[i]:
            i = 0
        while st[i + 1] <= t:
            i += 1
        self._step = i
        return self._step_v[i], st[i + 1]

    def capacity(self, t: float) -> float:
        """Remaining militia capacity at t, as a share of the initial capacity."""
        if self.lost == 0.0:
            return 1.0
        return 1.0 - self.lost * math.exp((self.tL - t) / self.tau_c)

    def intensity(self, t: float) -> float:
        """Attack intensity at t, in attacks per hour (see the module docstring)."""
        d, _ = self._driver(t)
        inner = self.mu
        if self.E:
            inner += self.E * math.exp((self.tE - t) / self.tau_e)
        if self.A:
            inner *= math.exp(-self.A * math.exp((self.tA - t) / self.tau_s))
        lam = d * inner
        if self.B:
            lam += self.B * math.exp((self.tB - t) / self.tau_b)
        if self.lost:
            lam *= 1.0 - self.lost * math.exp((self.tL - t) / self.tau_c)
        return lam * self.regime

    # -- processes ---------------------------------------------------------------------------
    def _generate(self) -> ProcessGenerator:
        """Thinning. Each pass evaluates the decaying states once at the candidate's time t and uses
        them both to accept or reject the candidate and to bound the next one.

        Only a strike (or a scripted attack) changes the states, and only through another SimPy
        event. So while the next candidate comes before the next scheduled event (``env.peek()``),
        nothing can happen in between and the candidate is evaluated at once, without a timeout;
        the process yields to SimPy when another event comes first, and before an attack that the
        US command acts on (so that its decision starts on SimPy's clock at the attack). The events
        are those of one timeout per candidate (tests/test_militia.py checks it).

        This is the model's hot loop: draws, the driver step and the outcome block are read from
        locals (strikes change the decaying states, never the driver schedule or the buffers).
        """
        env = self.env
        exp = math.exp
        mu, tau_e, tau_b, tau_s, tau_c = self.mu, self.tau_e, self.tau_b, self.tau_s, self.tau_c
        horizon = self.horizon
        acts_on = self.world.command.acts_on
        lookahead = self.lookahead
        gen = self._times_gen
        # candidate waits and acceptance draws, a block at a time (fixed order: deterministic)
        waits, w_i = gen.standard_exponential(_DRAWS).tolist(), 0
        accepts, a_i = gen.random(_DRAWS).tolist(), 0
        # attack outcomes, a block at a time; the position survives a restart of the process, so
        # the k-th attack has the same outcome under every policy
        outcomes, o_i = self._block, self._k
        t = env.now
        d, step_end = self._driver(t)
        pending = 0.0  # the bound under which the candidate at time t was drawn
        while True:
            if t >= step_end:
                d, step_end = self._driver(t)
            until = step_end
            e = self.E * exp((self.tE - t) / tau_e) if self.E else 0.0
            b = self.B * exp((self.tB - t) / tau_b) if self.B else 0.0
            regime = self.regime
            if pending:
                pending_bound, pending = pending, 0.0
                lam = d * (mu + e)
                if self.A:
                    lam *= exp(-self.A * exp((self.tA - t) / tau_s))
                lam += b
                if self.lost:
                    lam *= 1.0 - self.lost * exp((self.tL - t) / tau_c)
                lam *= regime
                if a_i == _DRAWS:
                    accepts, a_i = gen.random(_DRAWS).tolist(), 0
                a_i += 1
                if accepts[a_i - 1] * pending_bound <= lam:
                    if o_i == _BLOCK:
                        outcomes, o_i = (
                            self.table.draw(
                                self.world.streams["attack_outcomes"],
                                _BLOCK,
                                self.world.streams["engagements"] if self.world.command.engages else None,
                            ),
                            0,
                        )
                    o_i += 1
                    outcome = outcomes[o_i - 1]
                    acts = None  # not asked yet, or asked before a yield
                    if t > env.now:
                        if acts_on(outcome, t) or not lookahead:
                            if (yield env.timeout(t - env.now)) is WOKEN:  # nothing else can come first
                                pending, t = 0.0, env.now  # but a wake-up: redraw from now
                                continue
                        else:
                            acts = False  # asked, and nothing changed since
                    self.attack(t, outcome, acts=acts)
                    e = self.E  # now referenced at t
            bound = (d * (mu + e) + b) * regime
            if until > horizon:
                until = horizon
            if bound > 0.0:
                if w_i == _DRAWS:
                    waits, w_i = gen.standard_exponential(_DRAWS).tolist(), 0
                w_i += 1
                t_next = t + waits[w_i - 1] / bound
                if t_next < until:
                    pending = bound
                    if not lookahead or t_next >= env.peek():
                        if (yield env.timeout(t_next - env.now)) is WOKEN:
                            pending, t = 0.0, env.now  # the state changed: waits are memoryless
                            continue
                    else:
                        self.inline_events += 1
                    t = t_next
                    continue
            if until >= horizon:
                self._block, self._k = outcomes, o_i
                return  # no more attacks before the end (a strike may restart us)
            if not lookahead or until >= env.peek():
                if (yield env.timeout(until - env.now)) is WOKEN:
                    pending, t = 0.0, env.now
                    continue
            else:
                self.inline_events += 1
            t = until  # the bound changes here (a driver step)

    def _scripted(self, key: str, a) -> ProcessGenerator:
        s = self.world.scenario
        yield self.env.timeout(s.hours_since_start(a.time))
        outcome = (
            self.table.base_keys.index(a.base),
            a.weapon,
            a.salvo,
            a.intercepted,
            a.us_killed,
            a.us_injured,
            severity_level(a.us_killed, a.us_injured, s.attacks.severity),
            0.0 if a.engaged else 1.0,
        )
        self.attack(self.env.now, outcome, scripted=key)
        if a.us_injured and a.later_diagnoses and self.late_share:
            tab = self.table
            self.world.injuries.report_later(
                self.env.now, a.us_injured, tab.base_countries[outcome[0]], tab.base_names[outcome[0]]
            )
        self._restart()

    def attack(self, t: float, outcome: AttackOutcome, scripted: str = "", acts: bool | None = None) -> None:
        """Record an attack, excite the process and tell the US command and the patron. A generated
        attack's injured are split into those reported at once and those diagnosed later; a
        documented attack (``scripted``: its key) keeps its reported count (later diagnoses come on
        top).
        ``acts``: whether the command acts on it, when the caller asked with nothing changed since."""
        base, weapon, salvo, intercepted, killed, injured, severity, _ = outcome
        tab = self.table
        if injured and self.late_share and not scripted:
            injured -= self.world.injuries.report_late(
                t, injured, tab.base_countries[base], tab.base_names[base]
            )
        country = tab.base_countries[base]
        location = tab.base_names[base]
        # the row built positionally (tuple.__new__ skips the named tuple's keyword handling):
        # this runs for every attack
        log = self.world.log
        if len(log.rows) >= log.limit:
            log.overflow(t)
        log.rows.append(
            _new_row(
                Event,
                (
                    t,
                    ev.ATTACK,
                    ev.MILITIA,
                    country,
                    location,
                    -1,
                    "",
                    ATTACK_RUNG[severity],
                    severity,
                    weapon,
                    salvo,
                    intercepted,
                    killed,
                    injured,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    math.nan,
                    0.0,
                    ev.documented_attack_detail(scripted) if scripted else "",
                    scripted,
                    0,
                ),
            )
        )
        if self.alpha:
            e = self.E
            if e:
                e *= math.exp((self.tE - t) / self.tau_e)
            self.E = e + self.alpha / self.tau_e
            self.tE = t
        command = self.world.command
        if killed:
            self.world.us_killed += killed
            self.world.patron.on_us_deaths(t)
        if command.acts_on(outcome, t) if acts is None else acts:
            command.on_attack(t, outcome, country, location)
        if command.counts_runs:
            command.recent.append(t)

    # -- reactions to US strikes ---------------------------------------------------------------
    def on_strike(
        self,
        t: float,
        destroyed: int,
        killed: int,
        capacity_loss: float,
        record: Callable[[float], None] | None = None,
    ) -> float:
        """Apply a US strike from time t on and return the capacity left: first its damage (capacity,
        burst, deterrence), then ``record(capacity)`` (the strike's own event rows)."""
        p = self.p
        severity = math.log1p(destroyed + killed)
        if capacity_loss > 0.0:
            c = max(p.capacity_floor, self.capacity(t) - capacity_loss)
            self.lost, self.tL = 1.0 - c, t
        if severity > 0.0:
            if self.burst:
                self.B = self.B * math.exp((self.tB - t) / self.tau_b) + self.burst * severity / self.tau_b
                self.tB = t
            if self.deter:
                self.A = self.A * math.exp((self.tA - t) / self.tau_s) + self.deter * severity
                self.tA = t
        capacity = self.capacity(t)
        if record is not None:
            record(capacity)
        self._restart()
        return capacity

    def _restart(self) -> None:
        """Make the attack process thin again from now: the intensity has changed."""
        if self.process.is_alive:
            Wake(self.process)
        else:
            self.process = self.env.process(self._generate())

    def set_regime(self, multiplier: float) -> None:
        """Enter a halt regime from now: the attack rate is multiplied by ``multiplier`` (1: none)."""
        self.regime = multiplier
        self._restart()
