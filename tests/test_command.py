"""The US retaliation decision: policies, severity thresholds, superseded decisions."""

from __future__ import annotations

from sim.model.attacks import DEATHS
from sim.replication import run_replication
from sim.scenario.schema import SEVERITY_LEVELS
from tests.conftest import QUIET, rows_of, variant


def decisions(scenario, reps: int = 20):
    out = []
    for rep in range(reps):
        out.extend(rows_of(run_replication(scenario, 4, rep).events, "decision"))
    return out


def test_never_strikes_back():
    s = variant("command.policy=never")
    for rep in range(20):
        events = run_replication(s, 4, rep).events
        assert rows_of(events, "decision") == [] and rows_of(events, "strike") == []


def test_deaths_only_answers_only_lethal_attacks():
    d = decisions(variant("command.policy=deaths_only", "attacks.casualties.killed_probability=0.5"))
    assert d and all(r["severity"] >= DEATHS for r in d)


def test_severity_triggered_answers_from_its_threshold():
    s = variant()
    threshold = SEVERITY_LEVELS.index(s.command.min_severity)
    d = decisions(s)
    assert d and all(r["severity"] >= threshold for r in d)


def test_proportional_answers_harmless_attacks_too():
    d = decisions(variant("command.policy=proportional"), reps=3)
    assert any(r["severity"] == 0 for r in d)


def test_a_worse_attack_supersedes_a_pending_decision():
    scripted = []
    for key, hour, killed, injured in (("a", "05", 0, 4), ("b", "06", 3, 47)):
        scripted += [
            f"scripted_attacks.{key}.time=2024-01-28T{hour}:00:00",
            f'scripted_attacks.{key}.base="erbil"',
            f'scripted_attacks.{key}.weapon="drone"',
            f"scripted_attacks.{key}.salvo=1",
            f"scripted_attacks.{key}.us_killed={killed}",
            f"scripted_attacks.{key}.us_injured={injured}",
        ]
    s = variant(
        *QUIET,
        *scripted,
        "command.decision_lag.fighter.median_hours=48",
        "command.decision_lag.fighter.log_sigma=0",
    )
    d = rows_of(run_replication(s, 4, 0).events, "decision")
    assert [r["severity"] for r in d] == [4]


RUN = (
    "militia.background_rate_per_day=4",
    "command.run_response.attacks=10",
    "command.run_response.window_days=3",
    "command.run_response.cooldown_days=5",
    "command.decision_lag.fighter.median_hours=12",
    "command.decision_lag.fighter.log_sigma=0",
    "attacks.casualties.killed_probability=0",
    "patron.enabled=false",
)


def test_a_run_of_attacks_draws_a_planned_strike_then_a_cooldown():
    s = variant(*QUIET, *RUN)
    for rep in range(5):
        events = run_replication(s, 4, rep).events
        runs = [r for r in rows_of(events, "decision") if "run of 10 attacks in 3 days" in r["detail"]]
        assert runs
        attack_times = [r["t_hours"] for r in rows_of(events, "attack")]
        starts = [r["t_hours"] - 12 for r in runs]  # each decision 12 h after the attack ending its run
        for t in starts:
            assert min(abs(a - t) for a in attack_times) < 1e-6
            assert sum(t - 72 < a <= t + 1e-6 for a in attack_times) >= 10
        assert all(b - a >= 5 * 24 for a, b in zip(starts, starts[1:], strict=False))


def test_run_responses_are_off_for_policies_that_answer_only_deaths_or_nothing():
    for policy in ("deaths_only", "never"):
        s = variant(*QUIET, *RUN, f"command.policy={policy}")
        assert not rows_of(run_replication(s, 4, 0).events, "decision")
