# cython: language_level=3, boundscheck=False, wraparound=False
"""PROTOTYPE (not part of the package): the `never` policy's replication without SimPy, compiled.

Mirrors sim.model.world.World under policy `never` event for event: the same draws, the same
arithmetic, the same order of SimPy's queue (time, priority, creation order), including the
entries that only show in env.peek() (stale timeouts of a woken process, ended processes)."""
import heapq
import math
from libc.math cimport exp

from sim.model import events as ev
from sim.model.events import ATTACK_RUNG, Event
from sim.model.attacks import severity_level
from sim.model.world import tables_for
from sim.rng import Streams, lognormal

cdef int URGENT = 0
cdef int NORMAL = 1
# queue entry kinds
cdef int K_NOOP = 0        # an event nobody waits on (an ended process): it only shows in peek()
cdef int K_MIL_INIT = 1    # the attack process starts
cdef int K_MIL_TIMEOUT = 2 # payload: the wait's token
cdef int K_WAKE = 3
cdef int K_SCRIPT_INIT = 4 # payload: index of the scripted attack
cdef int K_SCRIPT_TIMEOUT = 5
cdef int K_REPORT = 6      # payload: the row
cdef int K_STOP = 7

cdef int BLOCK = 256
cdef int DRAWS = 128
_new_row = tuple.__new__


cdef class Kernel:
    cdef public list queue, rows
    cdef public double now, horizon
    cdef long seq
    cdef public object streams, s, table, gen
    # militia state
    cdef double mu, alpha, tau_e, tau_b, tau_s, tau_c
    cdef double E, tE, B, tB, A, tA, lost, tL, regime, late_share
    cdef list step_t, step_v
    cdef Py_ssize_t step
    cdef object block
    cdef Py_ssize_t k
    cdef public long inline_events
    # the attack process: alive, its current wait's token, its generator locals
    cdef bint alive
    cdef long token
    cdef double t, d, step_end, pending
    cdef list waits, accepts
    cdef Py_ssize_t w_i, a_i
    cdef object outcomes
    cdef Py_ssize_t o_i
    cdef list scripted
    cdef int us_killed
    cdef double delay_median, delay_sigma

    def __init__(self, scenario, int seed, int rep):
        s = self.s = scenario
        if s.command.policy != "never":
            raise NotImplementedError("prototype: policy 'never' only")
        p = s.patron
        if p.enabled and not p.requires_us_response:
            raise NotImplementedError("prototype: a halt without a US response")
        self.queue = []
        self.rows = []
        self.now = 0.0
        self.seq = 0
        self.streams = Streams(seed, rep)
        self.horizon = s.horizon_hours
        tables = tables_for(s)
        self.table = tables.attacks
        m = s.militia
        self.mu = m.background_rate_per_day / 24.0
        self.alpha = m.branching_ratio
        self.tau_e = m.excitation_decay_days * 24.0
        self.tau_b = m.counter_retaliation_decay_days * 24.0
        self.tau_s = m.deterrence_decay_days * 24.0
        self.tau_c = m.capacity_regeneration_days * 24.0
        self.E = self.tE = self.B = self.tB = self.A = self.tA = self.lost = self.tL = 0.0
        self.regime = 1.0
        self.step_t = tables.driver_steps[0] + [math.inf]
        self.step_v = tables.driver_steps[1]
        self.step = 0
        self.block = []
        self.k = BLOCK
        self.inline_events = 0
        self.gen = self.streams["attack_times"]
        cas = s.attacks.casualties
        self.late_share = cas.late_diagnosis_share
        self.delay_median = cas.diagnosis_delay.median_days
        self.delay_sigma = cas.diagnosis_delay.log_sigma
        self.us_killed = 0
        self.token = 0
        self.alive = False
        self._start_process()
        self.scripted = [(key, a) for key, a in s.scripted_attacks.items() if a.enabled]
        for i in range(len(self.scripted)):
            self._schedule(0.0, URGENT, K_SCRIPT_INIT, i)

    cdef inline void _schedule(self, double delay, int prio, int kind, object payload):
        heapq.heappush(self.queue, (self.now + delay, prio, self.seq, kind, payload))
        self.seq += 1

    cdef inline double _peek(self):
        return self.queue[0][0] if self.queue else math.inf

    cdef void _start_process(self):
        self.alive = True
        self._schedule(0.0, URGENT, K_MIL_INIT, None)

    cdef tuple _driver(self, double t):
        cdef Py_ssize_t i = self.step
        st = self.step_t
        if t < <double>st[i]:
            i = 0
        while <double>st[i + 1] <= t:
            i += 1
        self.step = i
        return self.step_v[i], st[i + 1]

    def run(self):
        self._schedule(self.horizon - self.now, URGENT, K_STOP, None)
        q = self.queue
        while True:
            t, prio, seq, kind, payload = heapq.heappop(q)
            self.now = t
            if kind == K_MIL_TIMEOUT:
                if payload == self.token:
                    self._generate(False)
            elif kind == K_MIL_INIT:
                self._begin()
                self._generate(False)
            elif kind == K_WAKE:
                if self.alive:
                    self.token += 1  # its timeout no longer resumes it
                    self._generate(True)
            elif kind == K_REPORT:
                self.rows.append(payload)
            elif kind == K_SCRIPT_INIT:
                key, a = self.scripted[payload]
                self._schedule(self.s.hours_since_start(a.time), NORMAL, K_SCRIPT_TIMEOUT, payload)
            elif kind == K_SCRIPT_TIMEOUT:
                self._scripted(payload)
            elif kind == K_STOP:
                return self.rows

    cdef void _begin(self):
        gen = self.gen
        self.waits = gen.standard_exponential(DRAWS).tolist()
        self.w_i = 0
        self.accepts = gen.random(DRAWS).tolist()
        self.a_i = 0
        self.outcomes = self.block
        self.o_i = self.k
        self.t = self.now
        self.d, self.step_end = self._driver(self.t)
        self.pending = 0.0

    cdef void _wait(self, double until):
        self.token += 1
        self._schedule(until - self.now, NORMAL, K_MIL_TIMEOUT, self.token)

    cdef void _generate(self, bint woken):
        """Run the thinning loop from where it stopped until its next wait (or its end)."""
        cdef double t, d, step_end, pending, until, e, b, regime, pending_bound, lam, bound, t_next
        cdef double mu = self.mu, tau_e = self.tau_e, tau_b = self.tau_b, tau_s = self.tau_s
        cdef double tau_c = self.tau_c, horizon = self.horizon
        cdef Py_ssize_t w_i = self.w_i, a_i = self.a_i, o_i = self.o_i
        waits, accepts, outcomes = self.waits, self.accepts, self.outcomes
        t, d, step_end, pending = self.t, self.d, self.step_end, self.pending
        if woken:
            pending, t = 0.0, self.now
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
                if a_i == DRAWS:
                    accepts, a_i = self.gen.random(DRAWS).tolist(), 0
                a_i += 1
                if <double>accepts[a_i - 1] * pending_bound <= lam:
                    if o_i == BLOCK:
                        outcomes, o_i = self.table.draw(self.streams["attack_outcomes"], BLOCK, None), 0
                    o_i += 1
                    self._attack(t, outcomes[o_i - 1], "")
                    e = self.E
            bound = (d * (mu + e) + b) * regime
            if until > horizon:
                until = horizon
            if bound > 0.0:
                if w_i == DRAWS:
                    waits, w_i = self.gen.standard_exponential(DRAWS).tolist(), 0
                w_i += 1
                t_next = t + <double>waits[w_i - 1] / bound
                if t_next < until:
                    pending = bound
                    if t_next >= self._peek():
                        self._wait(t_next)
                        self.t = t_next
                        break
                    self.inline_events += 1
                    t = t_next
                    continue
            if until >= horizon:
                self.block, self.k = outcomes, o_i
                self.alive = False
                self._schedule(0.0, NORMAL, K_NOOP, None)  # the process's own end
                return
            if until >= self._peek():
                self._wait(until)
                self.t = until
                break
            self.inline_events += 1
            t = until
        self.d, self.step_end, self.pending = d, step_end, pending
        self.waits, self.accepts, self.outcomes = waits, accepts, outcomes
        self.w_i, self.a_i, self.o_i = w_i, a_i, o_i

    cdef void _attack(self, double t, tuple outcome, str scripted):
        base, weapon, salvo, intercepted, killed, injured, severity, _ = outcome
        tab = self.table
        if injured and self.late_share and not scripted:
            injured -= self._report_late(t, injured, tab.base_countries[base], tab.base_names[base])
        self.rows.append(
            _new_row(
                Event,
                (t, ev.ATTACK, ev.MILITIA, tab.base_countries[base], tab.base_names[base], -1, "",
                 ATTACK_RUNG[severity], severity, weapon, salvo, intercepted, killed, injured,
                 0, 0, 0, 0, 0, 0, math.nan, 0.0,
                 ev.documented_attack_detail(scripted) if scripted else "", scripted, 0),
            )
        )
        cdef double e
        if self.alpha:
            e = self.E
            if e:
                e *= exp((self.tE - t) / self.tau_e)
            self.E = e + self.alpha / self.tau_e
            self.tE = t
        if killed:
            self.us_killed += killed  # the patron waits for a US response, which never comes

    cdef int _report_late(self, double t, int injured, str country, str location):
        gen = self.streams["injury_reports"]
        late = int(gen.binomial(injured, self.late_share))
        self._report(gen, t, late, country, location)
        return late

    cdef void _report(self, gen, double t, int late, str country, str location):
        days = lognormal(gen, self.delay_median, self.delay_sigma)
        cdef double when = t + 24.0 * days
        if not late or when >= self.horizon:
            return
        row = Event(when, ev.INJURY_REPORT, ev.US, country=country, location=location, us_injured=late,
                    detail=f"{late} more injured in the attack on {location}, diagnosed {days:.0f} days after it")
        self._schedule(when - self.now, NORMAL, K_REPORT, row)

    cdef void _scripted(self, int i):
        key, a = self.scripted[i]
        s = self.s
        tab = self.table
        outcome = (
            tab.base_keys.index(a.base), a.weapon, a.salvo, a.intercepted, a.us_killed, a.us_injured,
            severity_level(a.us_killed, a.us_injured, s.attacks.severity), 0.0 if a.engaged else 1.0,
        )
        self._attack(self.now, outcome, key)
        if a.us_injured and a.later_diagnoses and self.late_share:
            gen = self.streams["injury_reports"]
            late = int(gen.negative_binomial(a.us_injured, 1.0 - self.late_share)) if self.late_share < 1.0 else 0
            self._report(gen, self.now, late, tab.base_countries[outcome[0]], tab.base_names[outcome[0]])
        # _restart: wake the attack process, or start it again
        if self.alive:
            self._schedule(0.0, URGENT, K_WAKE, None)
        else:
            self._start_process()
        self._schedule(0.0, NORMAL, K_NOOP, None)  # the scripted process's own end
