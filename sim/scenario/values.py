"""Set numbers in a validated scenario by dotted key path, and check that a value is allowed there.

Used by the calibration (a particle's parameter values) and by sweeps (a design point's factor
values). Values are set with pydantic ``model_copy``, without re-validating: check the range once
with :func:`value_problem`, then set many values cheaply.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from sim.scenario.loader import describe_validation_error
from sim.scenario.schema import Scenario, check_references


def current_value(scenario: Scenario, key: str) -> Any:
    """The value at a dotted key path (tables and dict entries alike)."""
    node: Any = scenario
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def key_problem(scenario: Scenario, key: str) -> str | None:
    """Why ``key`` cannot take a number in ``scenario``, or None."""
    try:
        value = current_value(scenario, key)
    except (KeyError, AttributeError):
        return f"'{key}' is not a key of the scenario"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"'{key}' is not a number in the scenario"
    return None


def value_problem(scenario: Scenario, key: str, value: float) -> str | None:
    """Why the scenario would be invalid with ``key`` set to ``value``, or None."""
    data = scenario.model_dump()
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = _typed(current_value(scenario, key), value)
    try:
        broken = check_references(Scenario.model_validate(data))
    except ValidationError as exc:
        _, reason = describe_validation_error(exc, Scenario)
        return f"the scenario is invalid there: {key}: {reason}"
    if broken is not None:
        return f"the scenario is invalid there: {broken[0]}: {broken[1]}"
    return None


def _typed(old: Any, value: float) -> float | int:
    return int(round(value)) if isinstance(old, int) else float(value)


def _set(node: Any, parts: list[str], value: float) -> Any:
    head = parts[0]
    if isinstance(node, dict):
        child = node[head]
        new = dict(node)
        new[head] = _set(child, parts[1:], value) if len(parts) > 1 else _typed(child, value)
        return new
    child = getattr(node, head)
    return node.model_copy(
        update={head: _set(child, parts[1:], value) if len(parts) > 1 else _typed(child, value)}
    )


def with_values(scenario: Scenario, values: dict[str, float]) -> Scenario:
    """A copy of ``scenario`` with each dotted key set to its value (integers are rounded).

    Parts that no key touches are shared with ``scenario`` (they are immutable), so tables the
    model derives from them are reused.
    """
    out = scenario
    for key, value in values.items():
        out = _set(out, key.split("."), value)
    return out
