"""The event log: the record signature and the columns stay in step."""

from __future__ import annotations

import inspect
import math

import pytest

from sim.model.events import COLUMNS, EventLog


def test_record_parameters_are_the_columns_in_order():
    assert tuple(inspect.signature(EventLog.record).parameters)[1:] == COLUMNS


def test_record_fills_defaults_and_rejects_unknown_fields():
    log = EventLog()
    log.record(1.5, "strike", "us", targets=4, destroyed=3)
    row = dict(zip(COLUMNS, log.rows[0], strict=True))
    assert (row["t_hours"], row["targets"], row["destroyed"], row["package"]) == (1.5, 4, 3, -1)
    assert math.isnan(row["militia_capacity"]) and row["detail"] == ""
    with pytest.raises(TypeError):
        log.record(2.0, "strike", "us", target=4)
