"""Attack outcomes: the block draw against its distributions, and the severity levels."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sim.model.attacks import DEATHS, MASS, MINOR, NONE, SERIOUS, AttackTable, severity_level
from sim.scenario.schema import SeverityThresholds
from tests.conftest import variant


@pytest.fixture(scope="module")
def big_block():
    s = variant()
    table = AttackTable.from_scenario(s)
    outcomes = table.draw(np.random.default_rng(11), 200_000)
    base, weapon, salvo, intercepted, killed, injured, severity = zip(*outcomes, strict=True)
    columns = SimpleNamespace(
        base=list(base), weapon=[table.weapon_names.index(w) for w in weapon], salvo=list(salvo),
        intercepted=list(intercepted), killed=list(killed), injured=list(injured),
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
