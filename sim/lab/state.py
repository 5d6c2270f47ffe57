"""The lab's state: two policies, the world's levers, seed, replications and a prediction, read from
and written to a URL's query string. Nothing in it names a file: a side is a preset's name.

    ?a=scenario&b=never&n=200&seed=20231017&world.militia_branching_ratio=0.4
     &b.command_warning_enabled=false&predict=us_killed&guess=3

Every value is checked here (known name, control's range) and again by the scenario schema when the
scenarios are built; a bad one is a :class:`LabError` whose message is the CLI's one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sim.defaults import DEFAULT_SEED
from sim.lab.levers import BY_NAME

#: Replications a run may ask for (a run of 500 x 2 takes a few seconds on 2 cores).
MAX_REPS = 500
#: What a student can predict before a run: metric -> words for the page.
PREDICTABLE = {
    "us_killed": "US personnel killed",
    "attacks": "attacks in all",
    "strikes": "US strikes",
    "militia_killed": "militia killed",
    "civilians_killed": "civilians killed",
    "halted": "the patron orders a halt (1 yes, 0 no)",
}


class LabError(ValueError):
    """A lab request that cannot run: one line, as the CLI says it (``where: key: reason``)."""


@dataclass
class LabState:
    """What one run of the lab is: everything the URL holds."""

    a: str = "scenario"
    b: str = "never"
    n: int = 200
    seed: int = DEFAULT_SEED
    world: dict[str, str] = field(default_factory=dict)  # lever name -> TOML literal
    side_a: dict[str, str] = field(default_factory=dict)
    side_b: dict[str, str] = field(default_factory=dict)
    predict: str = "us_killed"
    guess: float | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], presets: Mapping[str, list[str]]) -> LabState:
        """Read and check a query string's parameters (unknown ones are refused, not ignored)."""
        state = cls()
        for name, raw in query.items():
            value = str(raw)
            if name in ("a", "b"):
                if value not in presets:
                    raise LabError(f"url: {name}: '{value}' is not a preset ({', '.join(presets)})")
                setattr(state, name, value)
            elif name == "n":
                state.n = _whole(name, value, 1, MAX_REPS)
            elif name == "seed":
                state.seed = _whole(name, value, 0, 2**63 - 1)
            elif name == "predict":
                if value not in PREDICTABLE:
                    raise LabError(f"url: predict: '{value}' is not one of {', '.join(PREDICTABLE)}")
                state.predict = value
            elif name == "guess":
                if value == "":
                    continue
                try:
                    guess = float(value)
                except ValueError:
                    raise LabError(f"url: guess: '{value}' is not a number") from None
                if not math.isfinite(guess) or abs(guess) > 1e6:
                    raise LabError(f"url: guess: {value} is not a finite number below a million")
                state.guess = guess
            else:
                scope, _, lever_name = name.partition(".")
                lever = BY_NAME.get(lever_name)
                if scope not in ("world", "a", "b") or lever is None:
                    raise LabError(f"url: {name}: not a control of the lab")
                if lever.side == (scope == "world"):
                    where = "each policy" if lever.side else "both policies at once (world.)"
                    raise LabError(f"url: {name}: this control is set for {where}")
                try:
                    literal = lever.literal(value)
                except ValueError as exc:
                    raise LabError(f"url: {name}: {exc}") from None
                {"world": state.world, "a": state.side_a, "b": state.side_b}[scope][lever.name] = literal
        return state

    def query(self) -> str:
        """The state as a query string (what :meth:`from_query` reads back)."""
        params = [("a", self.a), ("b", self.b), ("n", str(self.n)), ("seed", str(self.seed))]
        for scope, values in (("world", self.world), ("a", self.side_a), ("b", self.side_b)):
            params.extend((f"{scope}.{k}", _plain(v)) for k, v in sorted(values.items()))
        params.append(("predict", self.predict))
        if self.guess is not None:
            params.append(("guess", repr(self.guess)))
        return urlencode(params)

    def shared_overrides(self) -> list[str]:
        """``key.path=value`` overrides of the world, applied to both policies."""
        return [f"{BY_NAME[k].key}={v}" for k, v in sorted(self.world.items())]

    def side_overrides(self, side: str, presets: Mapping[str, list[str]]) -> list[str]:
        """One side's preset, then its own controls."""
        preset = self.a if side == "a" else self.b
        own = self.side_a if side == "a" else self.side_b
        return [*presets[preset], *(f"{BY_NAME[k].key}={v}" for k, v in sorted(own.items()))]


def _whole(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise LabError(f"url: {name}: '{value}' is not a whole number") from None
    if not low <= number <= high:
        raise LabError(f"url: {name}: {number} is outside {low}-{high:,}")
    return number


def _plain(literal: str) -> str:
    """A TOML literal as a URL shows it: strings without their quotes."""
    return literal[1:-1] if literal.startswith('"') and literal.endswith('"') else literal
