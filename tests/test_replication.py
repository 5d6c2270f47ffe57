"""One replication: determinism, common random numbers, metrics that agree with the event log."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import sim
from sim.metrics import METRIC_COLUMNS
from sim.model.events import COLUMNS
from sim.replication import run_replication
from tests.conftest import QUIET, rows_of, variant


def test_same_seed_same_output(baseline):
    a, b = run_replication(baseline, 9, 4), run_replication(baseline, 9, 4)
    assert a.events == b.events and a.metrics == b.metrics
    assert run_replication(baseline, 10, 4).events != a.events


def test_first_k_replications_of_a_2k_run_equal_a_k_run(baseline):
    small = sim.run(baseline, reps=3, seed=5)
    large = sim.run(baseline, reps=6, seed=5)
    pd.testing.assert_frame_equal(small.summary, large.summary.iloc[:3])
    pd.testing.assert_frame_equal(small.events, large.events[large.events["rep"] < 3])


def test_policies_share_attacks_until_the_first_us_strike(baseline):
    """Common random numbers: the same replication under another policy sees the same attacks, time
    and outcome, until the first US strike changes the militia's intensity."""
    never = variant("command.policy=never")
    for rep in range(10):
        a = run_replication(baseline, 2, rep).events
        b = run_replication(never, 2, rep).events
        first = min((r.t_hours for r in a if r.event == "strike"), default=math.inf)
        before_a = [r for r in a if r.event == "attack" and r.t_hours < first]
        before_b = [r for r in b if r.event == "attack" and r.t_hours < first]
        assert before_a == before_b and before_a


def test_metrics_agree_with_the_event_log(baseline):
    for rep in range(5):
        events, m = run_replication(baseline, 3, rep)
        attacks = rows_of(events, "attack")
        strikes = rows_of(events, "strike")
        assert m["attacks"] == len(attacks)
        assert m["attacks_iraq"] + m["attacks_syria"] + m["attacks_jordan"] == len(attacks)
        assert m["us_killed"] == sum(r["us_killed"] for r in attacks)
        assert m["targets_destroyed"] == sum(r["destroyed"] for r in strikes)
        assert m["strikes"] == len({(r["package"], r["asset"] == "drone") for r in strikes})
        assert m["sorties_b1b"] == sum(r["aircraft"] for r in rows_of(events, "takeoff"))
        assert sum(m[f"days_at_{r.label}"] for r in sim.model.Rung) == 167
        assert m["max_rung"] == max((r.rung for r in events), default=0)
        assert m["halted"] == bool(rows_of(events, "halt"))


def test_run_returns_the_documented_frames(baseline):
    result = sim.run(baseline, reps=3, seed=1)
    summary, events = result
    assert list(summary.columns) == list(METRIC_COLUMNS)
    assert list(events.columns) == ["rep", "timestamp", *COLUMNS]
    assert pd.api.types.is_datetime64_any_dtype(events["timestamp"])
    first = events.iloc[0]
    exact = pd.Timestamp("2023-10-17") + pd.Timedelta(hours=first["t_hours"])
    assert abs(first["timestamp"] - exact) <= pd.Timedelta(seconds=0.5)
    assert set(summary["outcome"]) <= {"halted", "contained", "spiral"}
    assert summary["rep"].tolist() == [0, 1, 2] and (summary["seed"] == 1).all()


def test_progress_is_reported_for_every_replication(baseline):
    seen = []
    sim.run(baseline, reps=4, seed=1, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_history_scenarios_run_their_documented_attack():
    for name in ("dec_2019", "mar_2020", "feb_2021"):
        s = sim.load_scenario(f"scenarios/history/{name}.toml")
        events = run_replication(s, 1, 0).events
        scripted = [r for r in rows_of(events, "attack") if r["detail"].startswith("documented")]
        assert len(scripted) == 1  # the baseline's Tower 22 is disabled, not run out of its period
        ((key, attack),) = [(k, a) for k, a in s.scripted_attacks.items() if a.enabled]
        assert scripted[0]["detail"] == f"documented attack '{key}'"
        assert (scripted[0]["us_killed"], scripted[0]["us_injured"]) == (attack.us_killed, attack.us_injured)


def test_policy_variants_change_what_the_us_strikes(baseline):
    base = sim.run(baseline, reps=30, seed=3).summary
    never = sim.run(sim.load_scenario("scenarios/policies/never.toml"), reps=30, seed=3).summary
    big = sim.run(sim.load_scenario("scenarios/policies/strike_big.toml"), reps=30, seed=3).summary
    assert (never["strikes"] == 0).all() and (never["targets_struck"] == 0).all()
    assert base["targets_struck"].mean() > 0
    assert big["targets_struck"].mean() > 1.5 * base["targets_struck"].mean()


def test_text_columns_have_no_value_outside_their_categories(baseline):
    events = sim.run(baseline, reps=20, seed=2).events
    for name in ("event", "actor", "country", "location", "asset", "weapon"):
        assert events[name].isna().sum() == 0, name  # a value missing from the categories is NaN


def test_a_campaign_without_events_gives_empty_frames_of_the_right_shape():
    quiet = variant(*QUIET)
    summary, events = sim.run(quiet, reps=2, seed=1)
    assert len(events) == 0 and list(events.columns) == ["rep", "timestamp", *COLUMNS]
    assert summary["attacks"].tolist() == [0, 0] and summary["outcome"].tolist() == ["halted"] * 2


def test_a_rung_stays_current_for_the_ladder_memory_after_its_event(baseline):
    from sim.metrics import _ladder
    from sim.model.events import EventLog, Rung

    log = EventLog()
    log.record(10 * 24.0 + 5.0, "attack", "militia", rung=int(Rung.LETHAL_ATTACK))  # day 10
    log.record(100 * 24.0, "attack", "militia", rung=int(Rung.HARASSMENT))  # day 100
    top, days = _ladder(log.rows, baseline)
    memory = int(baseline.ladder.memory_days)
    assert top == int(Rung.LETHAL_ATTACK)
    assert days[int(Rung.LETHAL_ATTACK)] == memory  # days 10 .. 10 + memory - 1
    assert days[int(Rung.HARASSMENT)] == memory
    assert sum(days) == round(baseline.horizon_hours / 24.0)


def test_a_replication_past_its_event_budget_is_an_error_never_a_hang(baseline, monkeypatch):
    from sim.model import events as ev
    from sim.runner import run_batch

    monkeypatch.setattr(ev, "MAX_EVENTS", 100)  # the baseline records about 255
    with pytest.raises(ev.EventBudgetExceeded, match="replication 3 of seed 7: more than 100 events"):
        sim.run_replication(baseline, 7, 3)
    rows = run_batch(baseline, 7, 0, "base", 0, 2)  # in a sweep: error rows, the sweep goes on
    assert rows["error"].str.startswith("EventBudgetExceeded").all() and rows["attacks"].isna().all()
    monkeypatch.setattr(ev, "MAX_EVENTS", 10_000)
    assert sim.run_replication(baseline, 7, 3).metrics["attacks"] > 0  # within budget: as before


@pytest.mark.slow
def test_rates_past_the_budget_end_esim_run_with_one_line(tmp_path):
    from tests.test_cli import esim

    p = esim(
        "run",
        "scenarios/policies/never.toml",
        "-n",
        "2",
        "-q",
        "--out",
        str(tmp_path / "o"),
        "--set",
        "militia.background_rate_per_day=100",
        "--set",
        "militia.branching_ratio=0.99",
        "--set",
        "patron.enabled=false",
    )
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "more than 200,000 events" in p.stderr and not (tmp_path / "o").exists()
