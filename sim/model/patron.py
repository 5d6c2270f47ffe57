"""The militias' patron and the halt it can order: a decision, not a chance after any strike.

The record reads the halt of February 2024 as a switch of regime ordered by the militias' patron
after US deaths and the prospect of a large US response (reference: Kata'ib Hezbollah announced the
suspension of its attacks on 30 Jan 2024, two days after Tower 22 and before the US strikes;
Harakat al-Nujaba said it would go on; attacks stopped after 4 Feb). The model:

1. **Information.** The patron learns of US deaths in an attack at once, and of a US response in
   preparation when the US command starts a decision on an attack of ``min_response_severity`` or
   worse (decisions are announced: "we will respond").
2. **Decision.** When US killed in the campaign reach ``us_killed_threshold`` and, if
   ``requires_us_response``, a US response is in preparation, the patron decides once (stream
   ``militia_response``), with ``order_probability``, to order a halt. Under a policy that never
   answers, no response is ever in preparation: the threat that the record credits is absent.
3. **Order and compliance.** The order comes ``order_lag`` (log-normal hours) after the decision's
   trigger: the leading group stops at once (the attack rate falls to 1 - ``leading_group_share``
   of itself); the other groups comply after ``compliance`` (log-normal days), when only holdouts
   attack, at ``holdout_rate_multiplier`` of the usual rate.
4. **End.** The halt ends ``duration`` (log-normal days) after the order; the rate goes back to 1.

Every step is an event row (``halt``, ``halt_complete``, ``resume``, actor ``patron``/``militia``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simpy.events import ProcessGenerator

from sim.model import events as ev
from sim.model.events import Rung
from sim.rng import lognormal
from sim.scenario.schema import SEVERITY_LEVELS

if TYPE_CHECKING:
    from sim.model.world import World


class Patron:
    """Decides whether the militias halt, from US deaths and the threat of a US response."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.env = world.env
        self.cfg = world.scenario.patron
        self.response_from = SEVERITY_LEVELS.index(self.cfg.min_response_severity)
        self.response_prepared = False
        self.decided = False  # the patron decides once per replication

    def on_us_deaths(self, t: float) -> None:
        """US personnel were killed at ``t`` (hours); the world's tally is already updated."""
        self._weigh(t, "US deaths")

    def on_response_prepared(self, t: float, severity: int) -> None:
        """The US command started a decision at ``t`` on an attack of ``severity``."""
        if severity >= self.response_from:
            self.response_prepared = True
            self._weigh(t, "a US response in preparation")

    def _weigh(self, t: float, news: str) -> None:
        c = self.cfg
        if self.decided or not c.enabled or self.world.us_killed < c.us_killed_threshold:
            return
        if c.requires_us_response and not self.response_prepared:
            return
        self.decided = True
        gen = self.world.streams["militia_response"]
        if gen.random() >= c.order_probability:
            return
        lag = lognormal(gen, c.order_lag.median_hours, c.order_lag.log_sigma)
        comply = lognormal(gen, c.compliance.median_days, c.compliance.log_sigma)
        last = lognormal(gen, c.duration.median_days, c.duration.log_sigma)
        self.env.process(self._halt(t + lag, comply, last, news))

    def _halt(self, at: float, comply_days: float, duration_days: float, news: str) -> ProcessGenerator:
        env, c, log = self.env, self.cfg, self.world.log
        militia = self.world.militia
        end = at + 24.0 * duration_days
        full = min(at + 24.0 * comply_days, end)
        yield env.timeout(at - env.now)  # events at or after the horizon never run
        militia.set_regime(1.0 - c.leading_group_share)
        log.record(
            env.now,
            ev.HALT,
            ev.PATRON,
            rung=int(Rung.QUIET),
            detail=f"the patron orders a halt after {news} and {self.world.us_killed} US "
            f"killed: the leading group suspends its attacks "
            f"({c.leading_group_share:.0%} of them); the others comply within "
            f"{comply_days:.0f} days, for about {duration_days:.0f} days in all",
        )
        yield env.timeout(full - env.now)
        militia.set_regime(c.holdout_rate_multiplier)
        log.record(
            env.now,
            ev.HALT_COMPLETE,
            ev.MILITIA,
            rung=int(Rung.QUIET),
            detail=f"every group complies with the halt; holdouts attack at "
            f"{c.holdout_rate_multiplier:.0%} of the usual rate",
        )
        yield env.timeout(end - env.now)
        militia.set_regime(1.0)
        log.record(
            env.now,
            ev.RESUME,
            ev.MILITIA,
            rung=int(Rung.HARASSMENT),
            detail="the halt ends: the militias resume their attacks",
        )
