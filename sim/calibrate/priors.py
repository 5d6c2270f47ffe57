"""Free parameters of a calibration, their priors, and how a value is put into a scenario.

A priors file (TOML) names the targets file and one ``[parameters.<name>]`` table per free
parameter::

    targets = "targets.toml"

    [parameters.background_rate]
    key = "militia.background_rate_per_day"
    distribution = "uniform"          # or "loguniform"
    low = 0.3
    high = 2.5
    reason = "about 1.6 attacks a day over the campaign with a branching ratio near 0.4"

Every key must name a number in the scenario, and the scenario must validate at both bounds, so a
prior can never feed the model a probability of 1.3. Values are set without re-validating the
scenario (pydantic ``model_copy``): the bounds were checked once, at load time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sim.scenario.loader import ScenarioError, describe_validation_error, read_toml
from sim.scenario.schema import Scenario, check_references


class Prior(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="dotted key path of a number in the scenario")
    distribution: Literal["uniform", "loguniform"]
    low: float
    high: float
    reason: str = Field(min_length=1, description="why this prior, in one line")

    @model_validator(mode="after")
    def _bounds(self) -> Prior:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        if self.distribution == "loguniform" and self.low <= 0.0:
            raise ValueError("a loguniform prior needs low > 0")
        return self


class PriorsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: str = Field(description="the targets file, relative to this file")
    parameters: Annotated[dict[str, Prior], Field(min_length=1)]


def load_priors(path: str | Path, scenario: Scenario | None = None) -> PriorsFile:
    """Read and validate a priors file; with ``scenario``, also check every key and both bounds."""
    path = Path(path)
    data = read_toml(path)
    try:
        priors = PriorsFile.model_validate(data)
    except ValidationError as exc:
        key, reason = describe_validation_error(exc, PriorsFile)
        raise ScenarioError(path, key, reason) from None
    if scenario is not None:
        for name, prior in priors.parameters.items():
            problem = _check_key(scenario, prior.key)
            if problem:
                raise ScenarioError(path, f"parameters.{name}.key", problem)
            for bound in ("low", "high"):
                problem = _check_value(scenario, prior.key, getattr(prior, bound))
                if problem:
                    raise ScenarioError(path, f"parameters.{name}.{bound}", problem)
    return priors


def targets_path(path: str | Path, priors: PriorsFile) -> Path:
    return (Path(path).parent / priors.targets).resolve()


def current_value(scenario: Scenario, key: str) -> Any:
    node: Any = scenario
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def _check_key(scenario: Scenario, key: str) -> str | None:
    try:
        value = current_value(scenario, key)
    except (KeyError, AttributeError):
        return f"'{key}' is not a key of the scenario"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"'{key}' is not a number in the scenario"
    return None


def _check_value(scenario: Scenario, key: str, value: float) -> str | None:
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
    return node.model_copy(update={head: _set(child, parts[1:], value) if len(parts) > 1
                                   else _typed(child, value)})


def with_values(scenario: Scenario, values: dict[str, float]) -> Scenario:
    """A copy of ``scenario`` with each dotted key set to its value (integers are rounded).

    Parts that no key touches are shared with ``scenario`` (they are immutable), so tables the
    model derives from them are reused.
    """
    out = scenario
    for key, value in values.items():
        out = _set(out, key.split("."), value)
    return out
