"""B-1B logistics: nominal block time, tanker waits, crew duty limit, fleet availability."""

from __future__ import annotations

import pytest

from sim.replication import run_replication
from tests.conftest import rows_of, tower_22


def mission(scenario, rep: int = 0):
    events = run_replication(scenario, 11, rep).events
    return {
        name: rows_of(events, name)
        for name in (
            "decision",
            "generation",
            "takeoff",
            "refuel",
            "time_over_target",
            "landing",
            "strike",
            "sortie_cancelled",
            "theatre_sorties",
        )
    }


def test_tower_22_draws_a_b1b_package_of_85_targets_at_7_facilities():
    m = mission(tower_22())
    package = [r for r in m["strike"] if r["asset"] == "bomber"]
    assert m["decision"][0]["asset"] == "bomber" and m["decision"][0]["severity"] == 4
    assert sum(r["targets"] for r in package) == 85 and len(package) == 7
    assert m["takeoff"][0]["aircraft"] == 2


def test_with_ample_tankers_the_mission_flies_the_documented_44_hours():
    s = tower_22("b1b.tanker_pool=8")
    m = mission(s)
    takeoff = m["takeoff"][0]["t_hours"]
    for landing in m["landing"]:
        assert landing["t_hours"] - takeoff == pytest.approx(44.0)
        assert landing["wait_hours"] == pytest.approx(0.0)
    leg = (44.0 - s.b1b.time_over_target_hours) / 2
    assert m["time_over_target"][0]["t_hours"] - takeoff == pytest.approx(leg)
    assert len(m["refuel"]) == 2 * 2 * s.b1b.refuellings_per_leg
    assert all(r["wait_hours"] == 0 for r in m["refuel"])


def test_refuelling_waits_lengthen_the_sortie():
    s = tower_22("b1b.tanker_pool=1", "b1b.tanker_recovery_hours=3")
    m = mission(s)
    takeoff = m["takeoff"][0]["t_hours"]
    assert max(r["wait_hours"] for r in m["refuel"]) > 0
    own_waits = {}
    for landing in m["landing"]:
        bomber = landing["bomber"]
        own_waits[bomber] = sum(r["wait_hours"] for r in m["refuel"] if r["bomber"] == bomber)
        block = landing["t_hours"] - takeoff
        assert landing["wait_hours"] == pytest.approx(block - 44.0)
        # a bomber also holds over the target for its wingman: at least its own waits
        assert block >= 44.0 + own_waits[bomber] - 1e-9
    last = max(m["landing"], key=lambda r: r["t_hours"])
    assert last["t_hours"] - takeoff == pytest.approx(44.0 + max(own_waits.values()))
    assert last["t_hours"] - takeoff > 44.0


def test_crew_duty_limit_below_the_block_time_cancels_the_bombers():
    m = mission(tower_22("b1b.crew_duty_limit_hours=40"))
    assert len(m["sortie_cancelled"]) == 1 and "crew duty limit" in m["sortie_cancelled"][0]["detail"]
    assert m["takeoff"] == []
    assert {r["asset"] for r in m["strike"] if r["asset"] != "drone"} == {"fighter"}
    assert sum(r["targets"] for r in m["strike"] if r["asset"] == "fighter") == 85


def test_no_bomber_available_falls_back_to_in_theatre_aircraft():
    m = mission(tower_22("b1b.enabled=false"))
    assert m["decision"][0]["asset"] == "fighter" and m["takeoff"] == []
    assert m["theatre_sorties"] and m["theatre_sorties"][0]["aircraft"] > 0


def test_bombers_carry_at_most_their_loads():
    s = tower_22()
    for rep in range(10):
        m = mission(s, rep)
        for t in m["takeoff"]:
            assert t["munitions"] <= t["aircraft"] * s.b1b.weapons_per_aircraft[s.b1b.loadout]


def test_generation_on_a_warning_order_overlaps_the_decision():
    """With a warning order the B-1Bs are generated from the attack on, and take off as soon as the
    decision is taken (the generation is shorter than the decision lag); without, after it."""
    fixed = (
        "b1b.generation.log_sigma=0",
        "b1b.generation.median_hours=18",
        "command.decision_lag.bomber.log_sigma=0",
        "command.decision_lag.bomber.median_hours=60",
        "b1b.mission_capable_rate=1",
    )
    takeoffs = {}
    for overlap in (True, False):
        s = tower_22(*fixed, f"b1b.generation_on_warning_order={str(overlap).lower()}")
        t22 = s.hours_since_start(s.scripted_attacks["tower_22"].time)
        events = run_replication(s, 1, 0).events
        generation = rows_of(events, "generation")
        assert len(generation) == 1
        assert generation[0]["t_hours"] == pytest.approx(t22 if overlap else t22 + 60)
        assert generation[0]["package"] == (-1 if overlap else 1)
        takeoffs[overlap] = rows_of(events, "takeoff")[0]["t_hours"] - t22
    assert takeoffs[True] == pytest.approx(60) and takeoffs[False] == pytest.approx(60 + 18)
