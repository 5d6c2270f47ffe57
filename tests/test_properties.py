"""Properties of whole replications over random seeds and parameters (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from sim.metrics import METRIC_COLUMNS
from sim.replication import run_replication
from tests.conftest import variant

COUNTS = [
    c
    for c in METRIC_COLUMNS
    if c not in ("rep", "seed", "draw", "outcome", "halted", "halt_day", "lag_lethal_to_strike_hours")
]

scenarios = st.builds(
    lambda alpha, mu, tankers, policy, killed, share: variant(
        f"militia.branching_ratio={alpha}",
        f"militia.background_rate_per_day={mu}",
        f"b1b.tanker_pool={tankers}",
        f'command.policy="{policy}"',
        f"attacks.casualties.killed_probability={killed}",
        f"b1b.weapon_share={share}",
    ),
    alpha=st.sampled_from([0.0, 0.3, 0.7]),
    mu=st.sampled_from([0.0, 0.5, 2.0]),
    tankers=st.integers(1, 4),
    policy=st.sampled_from(["severity_triggered", "proportional", "deaths_only", "never"]),
    killed=st.sampled_from([0.0, 0.1, 0.6]),
    share=st.sampled_from([0.0, 0.38, 1.0]),
)


@given(scenario=scenarios, seed=st.integers(0, 2**32 - 1), rep=st.integers(0, 50))
def test_replication_invariants(scenario, seed, rep):
    events, m = run_replication(scenario, seed, rep)
    times = [r.t_hours for r in events]
    assert times == sorted(times)  # event times never decrease
    assert all(0 <= t <= scenario.horizon_hours for t in times)
    for name in COUNTS:
        assert m[name] >= 0, name
    assert m["targets_destroyed"] <= m["targets_struck"]
    assert m["munitions_expended"] >= m["targets_struck"]  # every struck target takes a weapon
    assert m["attacks"] == m["attacks_iraq"] + m["attacks_syria"] + m["attacks_jordan"]
    for r in events:
        if r.event == "attack":
            assert 0 <= r.intercepted <= r.salvo  # intercepted <= salvo
        if r.event == "strike":
            assert 0 <= r.destroyed <= r.targets  # destroyed <= targets
    assert m["halted"] == (not math.isnan(m["halt_day"]))
    assert (events, m) == tuple(run_replication(scenario, seed, rep))  # same seed, same output
