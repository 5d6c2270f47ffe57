"""Sweep files and their designs: which scenarios a sweep runs, and with which replications.

A sweep file (TOML) names a base scenario, the policy variants to run at every design point, the
factors that vary and how (a full factorial of explicit values, or a Latin hypercube or Sobol design
over ranges), the replications per point and policy, and the root seed::

    name = "lags"
    base = "../baseline.toml"
    reps = 200
    seed = 20231017

    [policies]                       # optional: name -> scenario file; default: the base alone
    baseline = "../baseline.toml"
    never = "../policies/never.toml"

    [design]
    kind = "lhs"                     # "factorial" (default), "lhs" or "sobol"
    points = 32

    [factors.bomber_lag]
    key = "command.decision_lag.bomber.median_hours"
    low = 24.0
    high = 200.0

Every replication of every point and policy uses the same replication seeds (root seed, replication
index): policies and design points are compared under common random numbers.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.scenario.loader import ScenarioError, load_model, load_scenario
from sim.scenario.schema import Scenario
from sim.scenario.values import key_problem, value_problem, with_values

if TYPE_CHECKING:
    from sim.posterior import BatchDraws, Parameters
    from sim.store import MemoryStore


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Factor(_Strict):
    """A scenario number that the sweep varies: explicit ``values``, or a ``low``-``high`` range."""

    key: str = Field(description="dotted key path of a number in the scenario")
    values: list[float] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = Field(False, description="spread a range's points on a log scale")

    @model_validator(mode="after")
    def _one_form(self) -> Factor:
        if (self.values is None) == (self.low is None or self.high is None):
            raise ValueError("give either 'values' or both 'low' and 'high'")
        if self.values is not None and not self.values:
            raise ValueError("'values' is empty")
        if self.low is not None and self.high is not None:
            if not self.low < self.high:
                raise ValueError("low must be below high")
            if self.log and self.low <= 0:
                raise ValueError("a log range needs low > 0")
        return self


class Design(_Strict):
    kind: Literal["factorial", "lhs", "sobol"] = "factorial"
    points: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="points of an lhs or sobol design (sobol: a power of 2)"
    )
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = Field(
        0, description="seed of the design's own randomness (lhs, scrambled sobol)"
    )


class SweepFile(_Strict):
    name: str
    description: str = ""
    base: str = Field(description="base scenario file, relative to the sweep file")
    policies: dict[str, str] = Field({}, description="name -> scenario file; default: the base")
    reps: Annotated[int, Field(ge=1, le=10_000_000)] = Field(
        description="replications per design point and policy"
    )
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    batch_reps: Annotated[int, Field(ge=1, le=100_000)] = Field(100, description="replications per task")
    design: Design = Design()
    factors: dict[str, Factor] = {}

    @model_validator(mode="after")
    def _design_fits_factors(self) -> SweepFile:
        kind = self.design.kind
        for name, f in self.factors.items():
            if kind == "factorial" and f.values is None:
                raise ValueError(f"factors.{name}: a factorial design needs 'values'")
            if kind != "factorial" and f.values is not None:
                raise ValueError(f"factors.{name}: an {kind} design needs 'low' and 'high'")
        if kind == "factorial":
            size = math.prod(len(f.values or []) for f in self.factors.values())
            if size > 100_000:
                raise ValueError(f"factors: a factorial of {size:,} points; at most 100,000")
        if kind != "factorial":
            if self.design.points is None:
                raise ValueError(f"design.points: an {kind} design needs a number of points")
            if not self.factors:
                raise ValueError(f"factors: an {kind} design needs at least one factor")
            if kind == "sobol" and self.design.points & (self.design.points - 1):
                raise ValueError("design.points: a sobol design needs a power of 2")
        return self


class Task(NamedTuple):
    """One unit of work: replications ``first``..``last - 1`` of one point and policy."""

    point: int
    policy: int
    first: int
    last: int

    @property
    def name(self) -> str:
        return f"p{self.point:05d}-q{self.policy:02d}-r{self.first:07d}"


class Sweep:
    """A loaded sweep: its file, design points, policy scenarios and tasks."""

    def __init__(
        self,
        path: str | Path,
        spec: SweepFile,
        design: pd.DataFrame,
        policies: dict[str, Scenario],
        files: dict[str, Path] | None = None,
    ):
        from sim.posterior import Parameters

        self.path = Path(path)
        self.spec = spec
        self.design = design  # one row per point: factor values
        self.policy_names = list(policies)
        self._policies = policies
        self._cache: dict[tuple[int, int], Scenario] = {}
        #: each policy's scenario file (where its keys come from: which ones a posterior draws)
        self.files = files or {}
        self.parameters: Parameters = Parameters()
        self.draw_keys: dict[str, list[str]] = {name: [] for name in self.policy_names}

    def use_parameters(self, parameters: Parameters, overrides: dict[str, list[str]] | None = None) -> None:
        """Run over ``parameters`` (the point, or a posterior's draws): each policy draws the keys
        its scenario file takes from its fitted file, less the sweep's factors and the
        ``overrides`` (per policy) it was loaded with."""
        from sim.posterior import keys_to_draw

        self.parameters = parameters
        fixed = tuple(f.key for f in self.spec.factors.values())
        self.draw_keys = {
            name: keys_to_draw(
                parameters,
                self._policies[name],
                self.files.get(name, self.path),
                (overrides or {}).get(name, []),
                fixed,
            )
            if parameters.posterior is not None
            else []
            for name in self.policy_names
        }

    def draws(self, policy: int, first: int, last: int) -> BatchDraws | None:
        """The posterior draws of replications ``first``..``last - 1`` under one policy."""
        from sim.posterior import batch_draws

        name = self.policy_names[policy]
        return batch_draws(self.parameters, self.draw_keys[name], self.spec.seed, first, last)

    def scenario(self, point: int, policy: int) -> Scenario:
        """The scenario of one design point under one policy (factor values set)."""
        key = (point, policy)
        if key not in self._cache:
            base = self._policies[self.policy_names[policy]]
            values = {self.spec.factors[f].key: float(self.design.at[point, f]) for f in self.spec.factors}
            self._cache[key] = with_values(base, values)
        return self._cache[key]

    @property
    def points(self) -> int:
        return len(self.design)

    def tasks(self) -> list[Task]:
        step = self.spec.batch_reps
        return [
            Task(p, q, r, min(r + step, self.spec.reps))
            for p in range(self.points)
            for q in range(len(self.policy_names))
            for r in range(0, self.spec.reps, step)
        ]

    @property
    def replications(self) -> int:
        return self.points * len(self.policy_names) * self.spec.reps

    def fingerprint(self) -> str:
        """SHA-256 of what the rows depend on: the sweep file's content, its design points and each
        policy's resolved scenario (so an edited parent scenario is noticed on --resume)."""
        from sim.scenario.loader import scenario_hash

        h = hashlib.sha256(self.spec.model_dump_json().encode())
        h.update(pd.util.hash_pandas_object(self.design, index=True).to_numpy().tobytes())
        for name in self.policy_names:
            h.update(name.encode())
            h.update(scenario_hash(self._policies[name]).encode())
        p = self.parameters
        if p.posterior is not None:  # the draws a replication runs
            h.update(f"posterior {p.posterior.sha256} {p.reps_per_draw} {self.draw_keys}".encode())
        return h.hexdigest()


def design_points(spec: SweepFile) -> pd.DataFrame:
    """The design's points as a frame (one column per factor; one empty row without factors)."""
    names = list(spec.factors)
    if not names:
        return pd.DataFrame(index=pd.RangeIndex(1, name="point"))
    if spec.design.kind == "factorial":
        rows = list(itertools.product(*(spec.factors[n].values or [] for n in names)))
        frame = pd.DataFrame(rows, columns=names)
    else:
        from scipy.stats import qmc  # imported here: it costs tens of MB in every process

        d = len(names)
        if spec.design.kind == "lhs":
            unit = qmc.LatinHypercube(d=d, seed=spec.design.seed).random(spec.design.points)
        else:
            unit = qmc.Sobol(d=d, scramble=True, seed=spec.design.seed).random(spec.design.points)
        frame = scale_to_ranges(spec, unit)
    frame.index.name = "point"
    return frame


def scale_to_ranges(spec: SweepFile, unit: np.ndarray) -> pd.DataFrame:
    """Points of the unit cube (one column per factor, in the file's order) as factor values: each
    factor's ``[low, high]`` range, evenly on a log scale where the factor says ``log = true``.
    Every design over ranges (Latin hypercube, Sobol, Saltelli) goes through here."""
    cols = {}
    for j, n in enumerate(spec.factors):
        f = spec.factors[n]
        assert f.low is not None and f.high is not None
        lo, hi = (math.log(f.low), math.log(f.high)) if f.log else (f.low, f.high)
        x = lo + unit[:, j] * (hi - lo)
        cols[n] = np.exp(x) if f.log else x
    frame = pd.DataFrame(cols)
    frame.index.name = "point"
    return frame


def _whole_counts(design: pd.DataFrame, spec: SweepFile, scenario: Scenario) -> pd.DataFrame:
    """The design with each factor of a count (an integer key) rounded: the value that runs."""
    from sim.scenario.values import current_value

    for name, f in spec.factors.items():
        value = current_value(scenario, f.key)
        if isinstance(value, int) and not isinstance(value, bool):
            design[name] = design[name].round()
    return design


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file and its scenarios; errors name file, key path and reason."""
    path = Path(path)
    spec = load_model(path, SweepFile)
    files = spec.policies or {"base": spec.base}
    policies = {}
    paths = {}
    for name, rel in files.items():
        where = path.parent / rel
        if not where.is_file():
            key = f"policies.{name}" if spec.policies else "base"
            raise ScenarioError(path, key, f"'{rel}' points to no file ({where})")
        policies[name] = load_scenario(where)
        paths[name] = where
    for name, f in spec.factors.items():
        for pname, scenario in policies.items():
            problem = key_problem(scenario, f.key)
            if problem:
                raise ScenarioError(path, f"factors.{name}.key", problem)
            bounds = f.values if f.values is not None else [f.low, f.high]
            for v in (b for b in bounds if b is not None):
                problem = value_problem(scenario, f.key, float(v))
                if problem:
                    raise ScenarioError(path, f"factors.{name}", f"{v:g} under policy '{pname}': {problem}")
    design = _whole_counts(design_points(spec), spec, next(iter(policies.values())))
    total = len(design) * len(policies) * spec.reps
    if total > 1_000_000_000:
        raise ScenarioError(
            path,
            "reps",
            f"{total:,} replications in all ({len(design):,} points x "
            f"{len(policies)} policies x {spec.reps:,}); at most "
            "1,000,000,000",
        )
    return Sweep(path, spec, design, policies, paths)


class SweepRun(NamedTuple):
    out: Path
    tasks: int
    skipped: int  # batches already finished (resume)
    replications: int  # run now
    failed: int  # replications that raised, now
    seconds: float


def run_sweep(
    sweep: Sweep,
    out: str | Path | MemoryStore,
    backend=None,
    resume: bool = False,
    progress=None,
    argv: list[str] | None = None,
    events: bool = False,
) -> SweepRun:
    """Run the sweep's unfinished batches on ``backend``, writing each batch as it finishes
    (with ``events``, also each batch's event log, under ``events/``) to the folder ``out``, or
    keeping them in ``out`` when it is a :class:`sim.store.MemoryStore` (nothing to resume).

    ``progress(done, total)`` counts replications. Raises :class:`sim.store.SweepStoreError` when
    ``out`` holds another sweep, or this one without ``resume``.
    """
    import datetime as dt
    import time

    from sim.backends import Backend
    from sim.batch import batch_rows
    from sim.runner import run_batch_with_events, summary_frame
    from sim.store import MemoryStore, SweepStore
    from sim.version import __version__

    backend = backend or Backend()
    store = out if isinstance(out, MemoryStore) else SweepStore(out)
    info = {
        "escalation_sim_version": __version__,
        "sweep": sweep.spec.name,
        "sweep_file": str(sweep.path),
        "points": sweep.points,
        "policies": sweep.policy_names,
        "reps": sweep.spec.reps,
        "seed": sweep.spec.seed,
        "batch_reps": sweep.spec.batch_reps,
        "events": events,
        "design": sweep.spec.design.kind,
        "factors": {n: f.key for n, f in sweep.spec.factors.items()},
        "parameters": {
            **sweep.parameters.manifest(),
            **({"keys_drawn": sweep.draw_keys} if sweep.parameters.posterior is not None else {}),
        },
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": argv or [],
    }
    expected = {t.name: (t.point, sweep.policy_names[t.policy], t.first, t.last) for t in sweep.tasks()}
    finished = store.open(sweep.fingerprint(), info, sweep.design, resume, expected)
    tasks = [t for t in sweep.tasks() if t.name not in finished]
    total = sum(t.last - t.first for t in tasks)
    calls = [
        (
            sweep.scenario(t.point, t.policy),
            sweep.spec.seed,
            t.point,
            sweep.policy_names[t.policy],
            t.first,
            t.last,
            sweep.draws(t.policy, t.first, t.last),
        )
        for t in tasks
    ]
    started = time.perf_counter()
    done = failed = 0
    # without events a worker returns plain rows (it never imports pandas) and the frame is typed here
    fn = run_batch_with_events if events else batch_rows
    for i, result in backend.map(fn, calls):
        frame, log = result if events else (summary_frame(result), None)
        store.write_batch(tasks[i].name, frame, log)
        done += len(frame)
        failed += int((frame["error"] != "").sum())
        if progress is not None:
            progress(done, total)
    return SweepRun(
        store.out if isinstance(store, SweepStore) else Path(),
        len(sweep.tasks()),
        len(finished),
        done,
        failed,
        time.perf_counter() - started,
    )


def sensitivity_sweep(sweep: Sweep, base_samples: int | None = None) -> tuple[Sweep, dict]:
    """The sweep with a Saltelli design (SALib) over its factor ranges in place of its own design,
    and the SALib problem: ``base_samples`` x (factors + 2) points (default: design.points)."""
    from SALib.sample import sobol as sobol_sample

    names = list(sweep.spec.factors)
    if not names or any(sweep.spec.factors[n].low is None for n in names):
        raise ScenarioError(
            sweep.path, "factors", "a sensitivity analysis needs factors with 'low' and 'high'"
        )
    n = base_samples or sweep.spec.design.points or 64
    if n & (n - 1):
        raise ScenarioError(sweep.path, "design.points", "Saltelli sampling needs a power of 2")
    # Saltelli's points in the unit cube, scaled like every other design (log where asked)
    unit = sobol_sample.sample(
        {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)},
        n,
        calc_second_order=False,
        seed=sweep.spec.design.seed,
    )
    design = _whole_counts(
        scale_to_ranges(sweep.spec, unit), sweep.spec, next(iter(sweep._policies.values()))
    )
    problem = {
        "num_vars": len(names),
        "names": names,
        "bounds": [[sweep.spec.factors[f].low, sweep.spec.factors[f].high] for f in names],
    }
    out = Sweep(sweep.path, sweep.spec, design, sweep._policies, sweep.files)
    out.parameters, out.draw_keys = sweep.parameters, sweep.draw_keys
    return out, problem
