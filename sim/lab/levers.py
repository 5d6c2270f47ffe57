"""The lab's controls: which scenario keys a student may move, with their units, bounds and sources,
and the policy presets (the files of ``scenarios/policies/``) as sets of overrides.

Every value still goes through the scenario schema (:func:`sim.scenario.load_scenario`): the bounds
here are the range of a control, the schema's are the law.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from sim.scenario.loader import read_toml
from sim.scenario.schema import SEVERITY_LEVELS

POLICIES = ("severity_triggered", "proportional", "deaths_only", "never")


@dataclass(frozen=True)
class Lever:
    """One control: a scenario key, what it means, its unit, its range and where its value comes
    from. ``side``: set for each of the two policies (a policy lever) or once for both (the world)."""

    key: str
    label: str
    unit: str
    kind: str  # "number", "integer", "choice" or "bool"
    side: bool
    source: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The control's name in the page and the URL."""
        return self.key.replace(".", "_")

    def literal(self, text: str) -> str:
        """The value as a TOML literal for an override, or ValueError with the reason."""
        text = text.strip()
        if self.kind == "bool":
            if text not in ("true", "false"):
                raise ValueError(f"'{text}' is not true or false")
            return text
        if self.kind == "choice":
            if text not in self.choices:
                raise ValueError(f"'{text}' is not one of {', '.join(self.choices)}")
            return toml_literal(text)
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
        if not (self.low is not None and self.high is not None and self.low <= value <= self.high):
            raise ValueError(f"{text} is outside the control's range {self.low:g}-{self.high:g} {self.unit}")
        if self.kind == "integer":
            if not value.is_integer():
                raise ValueError(f"{text} is not a whole number")
            return str(int(value))
        return repr(value)


LEVERS: tuple[Lever, ...] = (
    # the policy: one set for each side
    Lever(
        "command.policy",
        "policy",
        "",
        "choice",
        True,
        "facts §3: responses driven by severity, not by the count of attacks",
        choices=POLICIES,
    ),
    Lever(
        "command.min_severity",
        "lowest severity answered (severity_triggered)",
        "",
        "choice",
        True,
        "record: the three attacks of Oct-Dec 2023 that drew a response injured US personnel",
        choices=SEVERITY_LEVELS,
    ),
    Lever(
        "command.decision_lag.fighter.median_hours",
        "decision lag, in-theatre aircraft (median)",
        "hours",
        "number",
        True,
        "assumption (facts §3: lags from the same day in theatre)",
        1.0,
        480.0,
        1.0,
    ),
    Lever(
        "command.decision_lag.bomber.median_hours",
        "decision lag, B-1B package (median)",
        "hours",
        "number",
        True,
        "article and facts §1: Tower 22 at dawn on 28 Jan, B-1Bs launched on 1 Feb",
        1.0,
        480.0,
        1.0,
    ),
    Lever(
        "command.packages.deaths.targets",
        "targets struck after a lethal attack",
        "targets",
        "integer",
        True,
        "article: 85 targets at 7 facilities on 2 Feb 2024",
        1,
        200,
        1,
    ),
    Lever(
        "command.warning.enabled",
        "public warning before a strike",
        "",
        "bool",
        True,
        "assumption of the scenario file: the response to Tower 22 was announced days before 2 Feb",
    ),
    Lever(
        "b1b.enabled",
        "B-1B bombers available",
        "",
        "bool",
        True,
        "article: two B-1Bs from Dyess AFB, a 44-hour, 15,000-mile round trip",
    ),
    Lever(
        "b1b.tanker_pool",
        "tankers for the B-1B legs",
        "tankers",
        "integer",
        True,
        "assumption of the scenario file (facts §1: the round trip needs tankers)",
        1,
        20,
        1,
    ),
    # the world: one value for both sides, so that the two policies meet the same militia
    Lever(
        "militia.background_rate_per_day",
        "militia attack rate before excitation",
        "attacks per day",
        "number",
        False,
        "fitted: calibration/fitted.toml (article: more than 170 attacks, 17 Oct 2023 - 2 Feb 2024)",
        0.0,
        10.0,
        0.05,
    ),
    Lever(
        "militia.branching_ratio",
        "branching ratio (attacks set off by each attack)",
        "attacks per attack",
        "number",
        False,
        "fitted: calibration/fitted.toml (facts §3: 0.37-0.5 in Iraq 2003-07)",
        0.0,
        0.95,
        0.01,
    ),
    Lever(
        "patron.us_killed_threshold",
        "US killed before the patron weighs a halt",
        "US killed",
        "integer",
        False,
        "facts §3: the pressure to halt came after US deaths",
        1,
        50,
        1,
    ),
)
BY_NAME = {lever.name: lever for lever in LEVERS}


def toml_literal(value: Any) -> str:
    """``value`` written as a TOML value (the right-hand side of an override)."""
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def current_value(scenario, key: str) -> Any:
    """The value of ``key`` (a dotted path) in a validated scenario."""
    node: Any = scenario
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def _flatten(table: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in table.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten(v, path + "."))
        else:
            out.append(f"{path}={toml_literal(v)}")
    return out


def preset_overrides(path: Path) -> list[str]:
    """A policy file of ``scenarios/policies/`` as the overrides it makes to the file it extends
    (its ``extends`` and ``meta`` left out), so that a preset applies to whatever scenario the lab
    opened."""
    data = read_toml(path)
    data.pop("extends", None)
    data.pop("meta", None)
    return _flatten(data)


def presets(policies_folder: Path) -> dict[str, list[str]]:
    """Preset name -> overrides: ``scenario`` (the opened scenario as it is), then every policy file."""
    out: dict[str, list[str]] = {"scenario": []}
    for path in sorted(policies_folder.glob("*.toml")):
        out[path.stem] = preset_overrides(path)
    return out
