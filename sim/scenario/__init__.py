"""Scenario files: the schema and the loader."""

from sim.scenario.loader import (
    ScenarioError,
    load_scenario,
    parse_override,
    resolved_toml,
    scenario_hash,
)
from sim.scenario.schema import SEVERITY_LEVELS, Scenario

__all__ = [
    "SEVERITY_LEVELS",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "parse_override",
    "resolved_toml",
    "scenario_hash",
]
