"""Strike outcomes: destruction, casualties, the warning, and more weapons under common random numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.model.strikes import plan_package, resolve, weaponeer
from sim.model.world import World
from sim.replication import run_replication
from tests.conftest import QUIET, rows_of, tower_22, variant


def strike_totals(scenario, rep: int):
    rows = rows_of(run_replication(scenario, 21, rep).events, "strike")
    rows = [r for r in rows if r["asset"] != "drone"]
    return (
        sum(r["targets"] for r in rows),
        sum(r["destroyed"] for r in rows),
        sum(r["militia_killed"] for r in rows),
    )


def test_warning_lowers_militia_casualties_but_not_destruction():
    warned = tower_22("command.warning.enabled=true", "command.warning.dispersal_fraction=0.8")
    silent = tower_22("command.warning.enabled=false")
    killed_w = killed_s = 0
    for rep in range(30):
        tw, dw, kw = strike_totals(warned, rep)
        ts, ds, ks = strike_totals(silent, rep)
        assert (tw, dw) == (ts, ds)  # same targets, same destruction (common random numbers)
        assert kw <= ks  # inverse-CDF casualties: a lower mean never gives more deaths
        killed_w += kw
        killed_s += ks
    assert killed_w < 0.5 * killed_s


def test_warning_is_logged_before_the_strike():
    events = run_replication(tower_22(), 21, 0).events
    warning = rows_of(events, "warning")
    strikes = [r for r in rows_of(events, "strike") if r["asset"] == "bomber"]
    assert warning and strikes and warning[0]["t_hours"] < strikes[0]["t_hours"]
    assert all("warned" in r["detail"] for r in strikes)


@given(seed=st.integers(0, 10_000), cap=st.integers(1, 3), targets=st.integers(1, 60))
def test_more_weapons_never_destroy_less_under_common_random_numbers(seed, cap, targets):
    """Same targets and draws, one more weapon allowed per target: pathwise, nothing destroyed
    before survives (no re-attack, so the first wave is the whole strike)."""
    destroyed = []
    for k in (cap, cap + 1):
        s = variant(
            "targets.reattack=false",
            "targets.desired_damage_expectancy=0.9999",
            f"targets.max_weapons_per_target={k}",
        )
        w = World(s, seed, 0)
        pkg = plan_package(w, 1, 2, "fighter", False, min(targets, 7), targets)
        weaponeer(w, pkg, 0)
        destroyed.append(resolve(w, pkg).destroyed)
    assert all(b >= a for a, b in zip(destroyed[0], destroyed[1], strict=True))


@given(seed=st.integers(0, 10_000), facilities=st.integers(1, 9), extra=st.integers(0, 90))
def test_package_plan_and_outcome_are_consistent(seed, facilities, extra):
    s = variant()
    w = World(s, seed, 0)
    targets = facilities + extra
    pkg = plan_package(w, 1, 2, "fighter", True, facilities, targets)
    assert sum(pkg.facility_targets) == targets and min(pkg.facility_targets) >= 1
    assert len(pkg.facilities) == facilities
    alloc = weaponeer(w, pkg, 48)
    r = resolve(w, pkg)
    for d, n, m, k, c in zip(
        r.destroyed, pkg.facility_targets, r.munitions, r.militia_killed, r.civilians_killed, strict=True
    ):
        assert 0 <= d <= n and m >= n and k >= 0 and c >= 0
    assert sum(r.munitions) <= alloc.bomber_loaded + alloc.theatre_loaded
    assert 0 <= r.capacity_loss <= 1


AL_ASAD = (
    "scripted_attacks.al_asad_2023_11_20.enabled=true",
    "command.self_defense.lag.log_sigma=0",
    "command.self_defense.lag.median_hours=2",
)


def test_an_engaged_documented_attack_draws_a_self_defence_strike_unless_the_us_never_strikes():
    """Al-Asad, 20 Nov 2023 (record): the launch team was engaged within hours."""
    s = variant(*QUIET, *AL_ASAD)
    t = s.hours_since_start(s.scripted_attacks["al_asad_2023_11_20"].time)
    killed = []
    for rep in range(200):
        strikes = rows_of(run_replication(s, 3, rep).events, "strike")
        engaged = [r for r in strikes if r["asset"] == "self_defense"]
        assert [r["t_hours"] for r in engaged] == [pytest.approx(t + 2)]
        assert (engaged[0]["location"], engaged[0]["country"]) == ("Al-Asad Air Base", "Iraq")
        killed.append(engaged[0]["militia_killed"])
    mean = s.command.self_defense.killed_mean
    assert np.mean(killed) == pytest.approx(mean, abs=4 * math.sqrt(mean / 200))
    never = variant(*QUIET, *AL_ASAD, "command.policy=never")
    assert not rows_of(run_replication(never, 3, 0).events, "strike")


def test_each_attack_is_engaged_with_its_probability():
    s = variant("command.self_defense.engagement_probability=0.2", "patron.enabled=false")
    attacks = engaged = 0
    for rep in range(10):
        events = run_replication(s, 5, rep).events
        attacks += len(rows_of(events, "attack"))
        engaged += sum(r["asset"] == "self_defense" for r in rows_of(events, "strike"))
    assert engaged / attacks == pytest.approx(0.2, abs=4 * math.sqrt(0.2 * 0.8 / attacks))


def test_commanders_are_hunted_on_their_own_at_their_rate():
    s = variant(*QUIET, "command.targeted_strike.standalone_per_day=0.5")
    days = s.horizon_hours / 24
    hunts = []
    for rep in range(40):
        strikes = rows_of(run_replication(s, 6, rep).events, "strike")
        assert all(r["asset"] == "drone" and "on its own" in r["detail"] for r in strikes)
        hunts.append(len(strikes))
    assert np.mean(hunts) == pytest.approx(0.5 * days, abs=4 * math.sqrt(0.5 * days / 40))
    never = variant(*QUIET, "command.targeted_strike.standalone_per_day=0.5", "command.policy=never")
    assert not rows_of(run_replication(never, 6, 0).events, "strike")
