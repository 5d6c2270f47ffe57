"""The event log: a named row whose fields are the columns, with explicit id columns."""

from __future__ import annotations

import math

import pytest

from sim.model.events import COL, COLUMNS, Event, EventLog


def test_the_row_is_a_named_tuple_whose_fields_are_the_columns_with_the_ids_last():
    assert Event._fields == COLUMNS and COLUMNS[:3] == ("t_hours", "event", "actor")
    assert COLUMNS[-2:] == ("scripted", "bomber")  # explicit ids, never parsed from ``detail``
    assert all(COL[name] == i for i, name in enumerate(COLUMNS))
    row = Event(2.0, "refuel", "us", package=3, bomber=2)
    assert row[COL["package"]] == row.package == 3 and row.bomber == 2 and row.scripted == ""


def test_a_documented_attack_and_a_bomber_leg_carry_their_ids(baseline):
    from sim.replication import run_replication

    rows = run_replication(baseline, 20231017, 0).events
    scripted = {r.scripted for r in rows if r.event == "attack"} - {""}
    assert scripted == {k for k, a in baseline.scripted_attacks.items() if a.enabled}
    assert "tower_22" in scripted
    legs = [r for r in rows if r.event in ("refuel", "landing")]
    assert legs and all(r.bomber >= 1 for r in legs)
    assert all(r.bomber == 0 for r in rows if r.event not in ("refuel", "landing", "breakage"))


def test_record_fills_defaults_and_rejects_unknown_fields():
    log = EventLog()
    log.record(1.5, "strike", "us", targets=4, destroyed=3)
    row = log.rows[0]._asdict()
    assert (row["t_hours"], row["targets"], row["destroyed"], row["package"]) == (1.5, 4, 3, -1)
    assert math.isnan(row["militia_capacity"]) and row["detail"] == ""
    with pytest.raises(TypeError):
        log.record(2.0, "strike", "us", target=4)
