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
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.scenario.loader import ScenarioError, load_model
from sim.scenario.schema import Scenario
from sim.scenario.values import current_value, key_problem, value_problem, with_values


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
    priors = load_model(path, PriorsFile)
    if scenario is not None:
        for name, prior in priors.parameters.items():
            problem = key_problem(scenario, prior.key)
            if problem:
                raise ScenarioError(path, f"parameters.{name}.key", problem)
            for bound in ("low", "high"):
                problem = value_problem(scenario, prior.key, getattr(prior, bound))
                if problem:
                    raise ScenarioError(path, f"parameters.{name}.{bound}", problem)
    return priors


def targets_path(path: str | Path, priors: PriorsFile) -> Path:
    return (Path(path).parent / priors.targets).resolve()


__all__ = ["PriorsFile", "Prior", "current_value", "load_priors", "targets_path", "with_values"]
