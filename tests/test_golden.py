"""Golden output: the exact event rows of replication 0 at a fixed seed, under two policies.

Every other test would pass if a change consumed the random streams in another order (all the
outputs would still be plausible); this one fails. Change a digest only on purpose, with a line in
CHANGELOG.md saying why the rows changed (the model or the streams), never to make a refactoring
pass: a refactoring leaves the rows as they were.
"""

from __future__ import annotations

import hashlib

import pytest

import sim
from sim.model.events import COL
from tests.conftest import BASELINE

#: The 23 fields of the event row as of CHANGELOG 0.1.0 (a new field does not change the digest).
FIELDS = (
    "t_hours",
    "event",
    "actor",
    "country",
    "location",
    "package",
    "asset",
    "rung",
    "severity",
    "weapon",
    "salvo",
    "intercepted",
    "us_killed",
    "us_injured",
    "aircraft",
    "targets",
    "destroyed",
    "munitions",
    "militia_killed",
    "civilians_killed",
    "militia_capacity",
    "wait_hours",
    "detail",
)

GOLDEN = {
    "severity_triggered": ("d8c9987d9c67142403913b0b68b096f40a06ac6db0b54efc7e21ac6d8923d5e1", 235),
    "never": ("4560d74e97a27fb33dac3a8b7667d1f4fd5c8528a586acb6f0d7b524d882a02f", 301),
}


def digest(rows) -> str:
    """SHA-256 of the rows' fields as text (floats by repr: every bit counts)."""
    h = hashlib.sha256()
    for r in rows:
        h.update(repr(tuple(r[COL[f]] for f in FIELDS)).encode())
    return h.hexdigest()


@pytest.mark.parametrize("policy", sorted(GOLDEN))
def test_replication_0_at_a_fixed_seed_records_exactly_the_golden_rows(policy):
    scenario = sim.load_scenario(BASELINE, [f"command.policy={policy}"])
    rows = sim.run_replication(scenario, 20231017, 0).events
    want, count = GOLDEN[policy]
    assert (digest(rows), len(rows)) == (want, count), (
        "replication 0 changed: if on purpose, update GOLDEN and say why in CHANGELOG.md"
    )


def test_the_digest_sees_a_change_in_any_field_or_in_the_order():
    rows = [tuple(range(len(FIELDS))), tuple(range(1, len(FIELDS) + 1))]
    base = digest(rows)
    assert digest(rows[::-1]) != base
    changed = list(rows[0])
    changed[COL["militia_capacity"]] += 1e-12
    assert digest([tuple(changed), rows[1]]) != base
