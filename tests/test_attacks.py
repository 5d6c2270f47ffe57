"""Attack outcomes: the block draw against its distributions, and the severity levels."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from sim.model.attacks import DEATHS, MASS, MINOR, NONE, SERIOUS, AttackTable, severity_level
from sim.scenario.schema import SeverityThresholds
from tests.conftest import variant


@pytest.fixture(scope="module")
def big_block():
    s = variant("attacks.casualties.killed_probability=0.1")  # enough lethal attacks to measure
    table = AttackTable.from_scenario(s)
    outcomes = table.draw(np.random.default_rng(11), 200_000)
    base, weapon, salvo, intercepted, killed, injured, severity, engaged = zip(*outcomes, strict=True)
    assert set(engaged) == {1.0}  # no engagement draws without an engagements stream
    columns = SimpleNamespace(
        base=list(base),
        weapon=[table.weapon_names.index(w) for w in weapon],
        salvo=list(salvo),
        intercepted=list(intercepted),
        killed=list(killed),
        injured=list(injured),
        severity=list(severity),
    )
    return s, table, columns


def test_block_draws_are_consistent(big_block):
    _, _, b = big_block
    salvo, icpt = np.array(b.salvo), np.array(b.intercepted)
    killed, injured = np.array(b.killed), np.array(b.injured)
    assert (salvo >= 1).all() and (icpt >= 0).all() and (icpt <= salvo).all()
    assert (killed >= 0).all() and (injured >= 0).all()
    assert ((killed == 0) | (injured >= 1)).all()  # the lethal attacks also injure


def test_weapon_and_base_shares_follow_the_scenario(big_block):
    s, table, b = big_block
    weapons = np.bincount(b.weapon, minlength=len(table.weapon_names)) / len(b.weapon)
    for i, name in enumerate(table.weapon_names):
        share = s.attacks.weapons[name].share / sum(w.share for w in s.attacks.weapons.values())
        assert weapons[i] == pytest.approx(share, abs=0.005)
    bases = np.bincount(b.base, minlength=len(table.base_keys)) / len(b.base)
    total = sum(x.weight for x in s.bases.values())
    for i, key in enumerate(table.base_keys):
        assert bases[i] == pytest.approx(s.bases[key].weight / total, abs=0.005)


def test_salvo_and_interceptions_follow_their_distributions(big_block):
    s, table, b = big_block
    weapon, base = np.array(b.weapon), np.array(b.base)
    salvo, icpt = np.array(b.salvo), np.array(b.intercepted)
    for w, name in enumerate(table.weapon_names):
        mine = weapon == w
        assert salvo[mine].mean() == pytest.approx(s.attacks.weapons[name].salvo_mean, rel=0.03)
        at = mine & (base == table.base_keys.index("al_asad"))
        p = s.bases["al_asad"].intercept_probability[name]
        assert icpt[at].sum() / salvo[at].sum() == pytest.approx(p, abs=0.03)


def test_lethal_share_of_harmful_attacks(big_block):
    s, _, b = big_block
    harmed = np.array(b.injured) > 0
    lethal = np.array(b.killed) > 0
    assert lethal[harmed].mean() == pytest.approx(s.attacks.casualties.killed_probability, abs=0.01)
    killed = np.array(b.killed)[lethal]
    assert killed.mean() == pytest.approx(s.attacks.casualties.killed_mean, rel=0.05)


def test_injuries_are_heavy_tailed(big_block):
    _, _, b = big_block
    injured = np.array(b.injured)
    hurt = injured[injured > 0]
    assert np.median(hurt) <= 3 and hurt.max() >= 30  # most hurt few, a rare attack many


@pytest.mark.parametrize(
    "killed, injured, level",
    [(0, 0, NONE), (0, 2, MINOR), (0, 3, SERIOUS), (1, 0, DEATHS), (3, 47, MASS), (0, 20, MASS)],
)
def test_severity_levels(killed, injured, level):
    t = SeverityThresholds(serious_injured=3, mass_casualty_killed=3, mass_casualty_injured=20)
    assert severity_level(killed, injured, t) == level


def test_block_severity_matches_the_scalar_rule(big_block):
    s, _, b = big_block
    for k, i, sev in zip(b.killed[:5000], b.injured[:5000], b.severity[:5000], strict=True):
        assert sev == severity_level(k, i, s.attacks.severity)


def test_engagement_draws_come_from_their_own_stream_and_leave_the_outcomes_alone():
    table = AttackTable.from_scenario(variant())
    plain = table.draw(np.random.default_rng(3), 500)
    with_u = table.draw(np.random.default_rng(3), 500, np.random.default_rng(4))
    assert [o[:7] for o in plain] == [o[:7] for o in with_u]  # common random numbers
    u = np.array([o[7] for o in with_u])
    assert ((0 <= u) & (u < 1)).all() and abs(u.mean() - 0.5) < 0.05


def test_late_diagnoses_are_reported_after_their_delay_and_counted_in_the_injured():
    from sim.metrics import replication_metrics
    from sim.replication import run_replication
    from tests.conftest import NO_2023_DOCUMENTED, rows_of

    s = variant(
        *NO_2023_DOCUMENTED,
        "attacks.casualties.late_diagnosis_share=0.5",
        "attacks.casualties.diagnosis_delay.median_days=3",
        "attacks.casualties.diagnosis_delay.log_sigma=0",
        "command.policy=never",
    )
    at_once = late = 0
    for rep in range(30):
        events = run_replication(s, 2, rep).events
        attacks = {(r["t_hours"], r["location"]): r for r in rows_of(events, "attack")}
        reports = rows_of(events, "injury_report")
        for r in reports:  # each report comes 3 days after an attack on the same base
            assert r["us_injured"] >= 1
            assert any(loc == r["location"] and t == pytest.approx(r["t_hours"] - 72) for t, loc in attacks)
        generated = [a for a in attacks.values() if not a["detail"]]
        at_once += sum(a["us_injured"] for a in generated)
        late += sum(r["us_injured"] for r in reports)
        metrics = replication_metrics(events, s)
        assert metrics["us_injured"] == sum(a["us_injured"] for a in attacks.values()) + sum(
            r["us_injured"] for r in reports
        )
    assert late / (late + at_once) == pytest.approx(0.5, abs=0.08)


def test_a_documented_attack_keeps_its_first_report_and_later_diagnoses_come_on_top():
    """Al-Tanf, 18 Oct 2023: 20 injured first reported; with half of all injuries diagnosed late, as
    many again come later on average (negative binomial); Tower 22's 47 is final (no reports)."""
    from sim.replication import run_replication
    from tests.conftest import QUIET, TOWER_22, rows_of

    s = variant(
        *QUIET,
        *TOWER_22,
        "scripted_attacks.al_tanf_2023_10_18.enabled=true",
        "attacks.casualties.late_diagnosis_share=0.5",
    )
    later = []
    for rep in range(200):
        events = run_replication(s, 9, rep).events
        tanf = [r for r in rows_of(events, "attack") if r["location"] == "Al-Tanf Garrison"]
        assert [r["us_injured"] for r in tanf] == [20]
        reports = rows_of(events, "injury_report")
        assert all(r["location"] == "Al-Tanf Garrison" for r in reports)  # none for Tower 22
        later.append(sum(r["us_injured"] for r in reports))
    assert np.mean(later) == pytest.approx(20, abs=4 * math.sqrt(40 / 200))  # NB(20, 0.5): var 40
