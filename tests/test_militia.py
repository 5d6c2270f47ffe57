"""Attack generation: the intensity formula, the thinning, drivers, excitation and the halt."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from sim.model.world import World
from sim.replication import run_replication
from tests.conftest import NO_2023_DOCUMENTED, rows_of, tower_22, variant

NO_US_RESPONSE = ("command.policy=never", *NO_2023_DOCUMENTED)


def attack_counts(scenario, reps: int, window_days: tuple[float, float] | None = None):
    counts = []
    for rep in range(reps):
        times = [r["t_hours"] / 24 for r in rows_of(run_replication(scenario, 3, rep).events, "attack")]
        if window_days:
            times = [t for t in times if window_days[0] <= t < window_days[1]]
        counts.append(len(times))
    return np.array(counts)


def test_background_rate_and_driver_window_give_the_expected_count():
    s = variant(*NO_US_RESPONSE, "militia.branching_ratio=0", "militia.background_rate_per_day=2")
    counts = attack_counts(s, 200)
    truce = s.drivers["gaza_truce"]
    truce_days = (truce.end_date - truce.start_date).days + 1
    expected = 2.0 * (167 - truce_days + truce_days * truce.rate_multiplier)
    assert counts.mean() == pytest.approx(expected, abs=4 * math.sqrt(expected / 200))
    assert counts.var() == pytest.approx(expected, rel=0.25)  # Poisson without excitation


def test_no_attacks_while_a_driver_multiplier_is_zero():
    s = variant(*NO_US_RESPONSE, "drivers.gaza_truce.rate_multiplier=0")
    start = s.hours_since_start(s.drivers["gaza_truce"].start_date) / 24
    assert attack_counts(s, 60, (start, start + 8)).sum() == 0


def test_branching_ratio_scales_the_count_by_one_over_one_minus_alpha():
    base = ("drivers.gaza_truce.rate_multiplier=1", "militia.background_rate_per_day=1", *NO_US_RESPONSE)
    plain = attack_counts(variant(*base, "militia.branching_ratio=0"), 150).mean()
    excited = attack_counts(variant(*base, "militia.branching_ratio=0.5"), 150).mean()
    assert excited / plain == pytest.approx(2.0, rel=0.08)


def test_intensity_formula(baseline):
    w = World(baseline, 1, 0)
    m = w.militia
    t = 2000.0  # 8 Jan 2024: no driver window
    m.E, m.tE = 0.5, 1990.0
    m.B, m.tB = 0.2, 1980.0
    m.A, m.tA = 0.7, 1900.0
    m.lost, m.tL = 0.3, 1800.0
    p = baseline.militia
    mu = p.background_rate_per_day / 24
    E = 0.5 * math.exp(-10 / (p.excitation_decay_days * 24))
    B = 0.2 * math.exp(-20 / (p.counter_retaliation_decay_days * 24))
    S = math.exp(-0.7 * math.exp(-100 / (p.deterrence_decay_days * 24)))
    C = 1 - 0.3 * math.exp(-200 / (p.capacity_regeneration_days * 24))
    assert m.intensity(t) == pytest.approx(C * (S * (mu + E) + B))
    m.regime = 0.3  # a halt regime set by the patron
    assert m.intensity(t) == pytest.approx(C * (S * (mu + E) + B) * 0.3)
    truce = baseline.drivers["gaza_truce"]
    m.regime = 1.0
    t_truce = baseline.hours_since_start(truce.start_date) + 12
    m.E = m.B = m.A = m.lost = 0.0
    assert m.intensity(t_truce) == pytest.approx(mu * truce.rate_multiplier)


def _strike_at(world: World, t: float, destroyed: int, killed: int, loss: float):
    def proc():
        yield world.env.timeout(t)
        world.militia.on_strike(world.env.now, destroyed, killed, loss)

    world.env.process(proc())


def test_thinning_follows_the_intensity_after_a_strike():
    """Without excitation the intensity after a strike is deterministic: the mean number of attacks in
    the 20 days after it must equal the integral of the intensity (burst, deterrence, capacity)."""
    s = variant(
        *NO_US_RESPONSE,
        "militia.branching_ratio=0",
        "patron.enabled=false",
        "militia.counter_retaliation_attacks_per_severity=3",
        "militia.deterrence_per_severity=0.3",
    )
    t0, t1 = 60 * 24.0, 80 * 24.0
    counts = []
    for rep in range(300):
        w = World(s, 5, rep)
        _strike_at(w, t0, 20, 10, 0.3)
        w.run()
        counts.append(sum(1 for r in w.log.rows if r.event == "attack" and t0 <= r.t_hours < t1))
    ref = World(s, 5, 0)
    ref.militia.on_strike(t0, 20, 10, 0.3)
    expected, _ = quad(ref.militia.intensity, t0, t1, limit=200)
    assert np.mean(counts) == pytest.approx(expected, abs=4 * math.sqrt(expected / 300))
    quiet_rate = s.militia.background_rate_per_day * 20
    assert expected != pytest.approx(quiet_rate, rel=0.05)  # the strike did change the rate


HALT_ORDER = (
    "patron.order_probability=1",
    "patron.order_lag.median_hours=48",
    "patron.order_lag.log_sigma=0",
    "patron.leading_group_share=0.6",
    "patron.compliance.median_days=10",
    "patron.compliance.log_sigma=0",
    "patron.duration.median_days=40",
    "patron.duration.log_sigma=0",
)


def test_the_patron_orders_the_halt_after_us_deaths_and_a_us_response_in_preparation():
    """Tower 22 kills three and the US starts a decision: 48 h later the order cuts the rate to 40%
    (the leading group stops), 10 days later to the holdouts' 0%, and 40 days after the order the
    rate is back to the usual."""
    s = tower_22(
        "militia.background_rate_per_day=3",
        "patron.holdout_rate_multiplier=0",
        "attacks.casualties.killed_probability=0",
        "command.self_defense.engagement_probability=0",
        "command.run_response.enabled=false",
        "command.targeted_strike.standalone_per_day=0",
        *HALT_ORDER,
    )
    t22 = s.hours_since_start(s.scripted_attacks["tower_22"].time)
    order, full, end = t22 + 48, t22 + 48 + 240, t22 + 48 + 960
    counts = {"before": 0, "leading": 0, "holdouts": 0, "after": 0}
    for rep in range(40):
        rows = run_replication(s, 4, rep).events
        halts, complete, resume = (rows_of(rows, k) for k in ("halt", "halt_complete", "resume"))
        assert [h["t_hours"] for h in halts] == [pytest.approx(order)]
        assert (
            halts[0]["actor"] == "patron"
            and "US deaths" in halts[0]["detail"]
            or "response" in halts[0]["detail"]
        )
        assert [c["t_hours"] for c in complete] == [pytest.approx(full)]
        assert [r["t_hours"] for r in resume] == [pytest.approx(end)]
        for r in rows_of(rows, "attack"):
            t = r["t_hours"]
            if t22 - 240 <= t < t22:
                counts["before"] += 1
            elif order <= t < order + 240:
                counts["leading"] += 1
            elif full <= t < end:
                counts["holdouts"] += 1
            elif end <= t < end + 240:
                counts["after"] += 1
    assert counts["holdouts"] == 0
    ratio = counts["leading"] / counts["before"]
    assert ratio == pytest.approx(0.4, abs=0.12)  # of 720 attacks before: ~288 expected
    assert counts["after"] / counts["before"] == pytest.approx(1.0, abs=0.15)


def test_no_halt_without_the_threat_of_a_us_response_unless_the_scenario_drops_that_condition():
    never = tower_22("command.policy=never", *HALT_ORDER)
    assert not [r for r in run_replication(never, 4, 0).events if r.event == "halt"]
    deaths_alone = tower_22("command.policy=never", "patron.requires_us_response=false", *HALT_ORDER)
    assert [r.event for r in run_replication(deaths_alone, 4, 0).events].count("halt") == 1


def test_no_halt_without_us_deaths():
    s = variant(
        "command.policy=proportional",
        "attacks.casualties.killed_probability=0",
        "scripted_attacks.tower_22.enabled=false",
        *HALT_ORDER,
    )
    for rep in range(5):
        events = run_replication(s, 4, rep).events
        assert not [r for r in events if r.event == "halt"]
        assert [r for r in events if r.event == "decision"]  # the US did respond to attacks


def test_the_patron_decides_once_and_its_order_follows_the_first_trigger():
    s = tower_22("patron.order_probability=0", *HALT_ORDER[1:])
    w = World(s, 2, 0)
    w.us_killed = 3
    w.patron.on_response_prepared(10.0, 4)
    assert w.patron.decided
    w.patron.cfg = w.patron.cfg.model_copy(update={"order_probability": 1.0})
    w.patron.on_response_prepared(20.0, 4)  # already decided: no second draw
    w.run()
    assert not [r for r in w.log.rows if r.event == "halt"]


def test_capacity_loss_and_regeneration(baseline):
    w = World(baseline, 1, 0)
    m = w.militia
    m.on_strike(100.0, 10, 0, 0.4)
    assert m.capacity(100.0) == pytest.approx(0.6)
    tau = baseline.militia.capacity_regeneration_days * 24
    assert m.capacity(100.0 + tau) == pytest.approx(1 - 0.4 / math.e)
    m.on_strike(100.0, 10, 0, 5.0)
    assert m.capacity(100.0) == pytest.approx(baseline.militia.capacity_floor)


def test_attack_outcomes_continue_their_block_after_the_process_restarts():
    """When the attack process has ended and a strike restarts it, its attacks take the next outcomes
    of the same block, not a new block (the k-th attack has the same outcome under every policy)."""
    s = variant(
        *NO_US_RESPONSE,
        "militia.background_rate_per_day=0",
        "militia.branching_ratio=0",
        "attacks.casualties.late_diagnosis_share=0",
    )
    w = World(s, 8, 0)
    block = w.militia.table.draw(np.random.default_rng(1), 256)
    w.militia._block, w.militia._k = block, 5
    after_truce = s.hours_since_start(s.drivers["gaza_truce"].end_date) + 48.0
    w.env.run(until=after_truce)
    assert not w.militia.process.is_alive and w.militia._k == 5  # no attack possible: it ended
    w.militia.mu = 2.0  # attacks per hour from now on
    w.militia._restart()
    w.env.run(until=after_truce + 24.0)
    attacks = [r for r in w.log.rows if r.event == "attack"]
    assert attacks
    for row, outcome in zip(attacks, block[5:], strict=False):
        base, weapon, salvo, intercepted, killed, injured, severity, _ = outcome
        assert (row.weapon, row.salvo, row.intercepted, row.us_killed, row.us_injured, row.severity) == (
            weapon,
            salvo,
            intercepted,
            killed,
            injured,
            severity,
        )


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("command.policy=proportional",),
        ("patron.holdout_rate_multiplier=0.1", "patron.order_probability=1"),
        (
            "command.self_defense.engagement_probability=0.3",
            "command.run_response.attacks=4",
            "attacks.casualties.late_diagnosis_share=0.5",
        ),
    ],
)
def test_lookahead_gives_the_same_events_as_one_timeout_per_candidate(monkeypatch, overrides):
    s = variant(*overrides)
    with_lookahead = [run_replication(s, 7, rep).events for rep in range(25)]
    monkeypatch.setattr("sim.model.militia.Militia.lookahead", False)
    without = [run_replication(s, 7, rep).events for rep in range(25)]
    for a, b in zip(with_lookahead, without, strict=True):
        assert len(a) == len(b)
        for ra, rb in zip(a, b, strict=True):
            assert ra[0] == pytest.approx(rb[0], abs=1e-6)  # float rounding of summed delays
            assert ra[1:20] == rb[1:20] and ra[22] == rb[22]
            assert ra[20] == pytest.approx(rb[20], nan_ok=True) and ra[21] == pytest.approx(rb[21])


def test_a_woken_process_gets_woken_at_once_and_its_old_timeout_never_resumes_it():
    import simpy

    from sim.model.militia import WOKEN, Wake

    env = simpy.Environment()
    seen = []

    def sleeper():
        for _ in range(2):
            value = yield env.timeout(10.0)
            seen.append((env.now, value))

    def waker(process):
        yield env.timeout(3.0)
        Wake(process)

    asleep = env.process(sleeper())
    env.process(waker(asleep))
    env.run(until=30.0)
    # woken at hour 3; the timeout due at hour 10 finds nobody; the next one ends at hour 13
    assert seen == [(3.0, WOKEN), (13.0, None)]


def test_a_process_that_ended_cannot_be_woken():
    import simpy

    from sim.model.militia import Wake

    env = simpy.Environment()

    def brief():
        yield env.timeout(1.0)

    process = env.process(brief())
    env.run()
    with pytest.raises(RuntimeError, match="cannot be woken"):
        Wake(process)
