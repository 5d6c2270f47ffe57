"""Weaponeering against its formulas (reference/facts.md section 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.model.weapons import (
    CEP_TO_SIGMA,
    allocate,
    cumulative_kill,
    kill_probability,
    sspk_carleton,
    sspk_cookie_cutter,
    weapons_for,
)
from sim.scenario.schema import Munition


def test_cookie_cutter_at_one_cep_is_one_half():
    assert sspk_cookie_cutter(10.0, 10.0) == pytest.approx(0.5)
    assert sspk_cookie_cutter(20.0, 10.0) == pytest.approx(1 - 0.5**4)


def test_cookie_cutter_matches_monte_carlo_miss_distances():
    rng = np.random.default_rng(7)
    cep, lr = 13.0, 18.0
    miss = rng.normal(0.0, cep / CEP_TO_SIGMA, size=(400_000, 2))
    inside = (np.hypot(miss[:, 0], miss[:, 1]) <= lr).mean()
    assert sspk_cookie_cutter(lr, cep) == pytest.approx(inside, abs=0.003)


def test_carleton_matches_its_damage_function_by_monte_carlo():
    rng = np.random.default_rng(8)
    cep, lr = 10.0, 12.0
    sigma = cep / CEP_TO_SIGMA
    b = lr / math.sqrt(2.0)  # equal lethal area with the cookie cutter
    miss = rng.normal(0.0, sigma, size=(400_000, 2))
    damage = np.exp(-(miss**2).sum(axis=1) / (2 * b * b)).mean()
    assert sspk_carleton(lr, cep) == pytest.approx(damage, abs=0.003)
    assert sspk_carleton(lr, cep) == pytest.approx(b * b / (b * b + sigma * sigma))


def test_kill_probability_is_arrival_times_reliability_times_sspk():
    m = Munition(cep_m=5.0, lethal_radius_m=10.0, reliability=0.9, arrival_probability=0.8)
    assert kill_probability(m, 0.5, "cookie_cutter") == pytest.approx(
        0.8 * 0.9 * sspk_cookie_cutter(5.0, 5.0)
    )


def test_weapons_for_desired_damage_expectancy():
    # facts.md: n = ceil(ln(1 - DE) / ln(1 - p))
    assert weapons_for(0.5, 0.9, 10) == 4  # 1 - 0.5**4 = 0.9375 >= 0.9 > 1 - 0.5**3
    assert weapons_for(0.9, 0.9, 10) == 1
    assert weapons_for(0.3, 0.99, 4) == 4  # capped
    assert weapons_for(0.0, 0.9, 3) == 3
    assert weapons_for(1.0, 0.9, 3) == 1


@given(p=st.floats(0.01, 0.99), de=st.floats(0.05, 0.99))
def test_weapons_for_is_the_smallest_number_that_reaches_the_expectancy(p, de):
    n = weapons_for(p, de, 1000)
    assert cumulative_kill(p, n) >= de - 1e-9
    if n > 1:
        assert cumulative_kill(p, n - 1) < de + 1e-9


@given(p=st.floats(0.0, 1.0), n=st.integers(0, 20))
def test_more_weapons_never_lower_the_kill_probability(p, n):
    assert cumulative_kill(p, n + 1) >= cumulative_kill(p, n)


def test_worked_check_from_the_facts():
    # 84 of 85 destroyed by 125 weapons implies an effective per-weapon kill probability near 0.95
    n_per_target = 125 / 85
    p = 1 - (1 - 84 / 85) ** (1 / n_per_target)
    assert p == pytest.approx(0.95, abs=0.01)


@given(
    n=st.lists(st.integers(1, 4), min_size=1, max_size=40),
    capacity=st.integers(0, 60),
    share=st.floats(0.0, 1.0),
    reserve=st.floats(0.0, 1.0),
)
def test_allocation_respects_bomber_capacity_and_share(n, capacity, share, reserve):
    pk = [0.9] * len(n)
    a = allocate(n, n, pk, pk, capacity, share, reserve)
    assert a.bomber_loaded <= capacity
    assert a.bomber_first <= min(share * sum(n), capacity / (1 + reserve)) + 1e-9
    assert a.bomber_first + a.theatre_first == sum(a.weapons) == sum(n)
    assert a.bomber_loaded >= a.bomber_first and a.theatre_loaded >= a.theatre_first
    assert len(a.weapons) == len(a.p_first_wave) == len(n)
