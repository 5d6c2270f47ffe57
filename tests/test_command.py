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
        scripted += [f"scripted_attacks.{key}.time=2024-01-28T{hour}:00:00",
                     f'scripted_attacks.{key}.base="erbil"', f'scripted_attacks.{key}.weapon="drone"',
                     f"scripted_attacks.{key}.salvo=1", f"scripted_attacks.{key}.us_killed={killed}",
                     f"scripted_attacks.{key}.us_injured={injured}"]
    s = variant(*QUIET, *scripted, "command.decision_lag.fighter.median_hours=48",
                "command.decision_lag.fighter.log_sigma=0")
    d = rows_of(run_replication(s, 4, 0).events, "decision")
    assert [r["severity"] for r in d] == [4]
