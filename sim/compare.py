"""Confidence intervals and common-random-number comparisons of per-replication metrics.

* :func:`aggregate`: mean and 95% confidence interval of each metric per design point and policy
  (Student t on the replications; failed replications left out and counted).
* :func:`paired`: each variant against the first on the same replication seeds. The paired
  difference d_r = x_r(variant) - x_r(first) has the confidence interval mean(d) +- t * sd(d) / sqrt(n);
  the variance reduction of the paired design is (var(x) + var(y)) / var(d): how many times more
  replications two independent runs would need for an interval as narrow. A variant compared with
  itself has d_r = 0 for every r, so its interval is exactly [0, 0].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.metrics import HEADLINE as HEADLINE  # importable from here, as before
from sim.metrics import NUMERIC_METRICS


def _outcome_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Add one 0/1 column per outcome class (``outcome=halted`` ...), so shares get intervals."""
    out = frame.copy()
    for name in ("halted", "contained", "spiral"):
        out[f"outcome={name}"] = np.where(
            out["outcome"] == "", np.nan, (out["outcome"] == name).astype(float)
        )
    return out


def mean_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of its Student-t confidence interval (NaN values left out)."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if n == 1:
        return m, math.nan, math.nan
    from scipy.special import stdtrit  # the Student t quantile, without scipy.stats's import time

    half = float(stdtrit(n - 1, 0.5 + level / 2) * x.std(ddof=1) / math.sqrt(n))
    return m, m - half, m + half


def aggregate(
    summary: pd.DataFrame, design: pd.DataFrame | None = None, metrics: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """One row per (point, policy, metric): ``mean``, ``ci_low``, ``ci_high``, ``n``, ``failed``,
    and the point's factor values."""
    frame = _outcome_columns(summary)
    metrics = metrics or (*NUMERIC_METRICS, "outcome=halted", "outcome=contained", "outcome=spiral")
    rows = []
    for (point, policy), group in frame.groupby(["point", "policy"], sort=True):
        failed = int((group["error"] != "").sum()) if "error" in group else 0
        ok = group[group["error"] == ""] if "error" in group else group
        for m in metrics:
            mean, lo, hi = mean_ci(ok[m].to_numpy(dtype=float))
            rows.append((point, policy, m, mean, lo, hi, int(ok[m].notna().sum()), failed))
    out = pd.DataFrame(
        rows, columns=["point", "policy", "metric", "mean", "ci_low", "ci_high", "n", "failed"]
    )
    if design is not None and len(design.columns):
        out = out.merge(design.reset_index(), on="point", how="left")
    return out


def paired(summary: pd.DataFrame, metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Each policy against the first one (in order of appearance), replication by replication.

    One row per (policy, metric): the variant's mean, the first's mean, the mean paired difference
    with its 95% interval, and the variance reduction against independent seeds.
    """
    frame = _outcome_columns(summary)
    if "error" in frame:
        frame = frame[frame["error"] == ""]
    metrics = metrics or (*NUMERIC_METRICS, "outcome=halted", "outcome=spiral")
    policies = list(dict.fromkeys(frame["policy"]))
    first = frame[frame["policy"] == policies[0]].set_index("rep")
    rows = []
    for policy in policies:
        other = frame[frame["policy"] == policy].set_index("rep")
        common = first.index.intersection(other.index)
        for m in metrics:
            x = other.loc[common, m].to_numpy(dtype=float)
            y = first.loc[common, m].to_numpy(dtype=float)
            keep = ~(np.isnan(x) | np.isnan(y))
            x, y = x[keep], y[keep]
            d = x - y
            # values that differ only by floating-point rounding (event times to a few ms) are equal
            scale = max(1.0, float(np.abs(y).max())) if y.size else 1.0
            d[np.abs(d) <= 1e-6 * scale] = 0.0
            mean, lo, hi = mean_ci(d)
            if d.size > 1 and np.all(d == d[0]):
                lo = hi = mean  # no spread at all: the interval is the value itself
            var_d = float(d.var(ddof=1)) if d.size > 1 else math.nan
            var_ind = float(x.var(ddof=1) + y.var(ddof=1)) if d.size > 1 else math.nan
            if policy == policies[0]:
                reduction = math.nan  # the reference against itself
            else:
                reduction = var_ind / var_d if var_d > 0 else (math.inf if var_ind > 0 else math.nan)
            rows.append(
                (
                    policy,
                    m,
                    float(x.mean()) if x.size else math.nan,
                    float(y.mean()) if y.size else math.nan,
                    mean,
                    lo,
                    hi,
                    int(d.size),
                    reduction,
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "policy",
            "metric",
            "mean",
            "reference_mean",
            "difference",
            "ci_low",
            "ci_high",
            "n",
            "variance_reduction",
        ],
    )


def sobol_indices(
    design: pd.DataFrame, summary: pd.DataFrame, problem: dict, metrics: tuple[str, ...]
) -> pd.DataFrame:
    """First-order and total Sobol indices (SALib, Saltelli design) of each metric's mean over the
    replications of each point, with the share of the variance of those means that is simulation
    noise: mean over points of var(replications) / reps, over var(point means).

    Every point ran the same replication seeds (common random numbers), so the noise is shared
    between points and moves the indices less than independent seeds would.
    """
    from SALib.analyze import sobol

    rows = []
    frame = _outcome_columns(summary)
    frame = frame[frame["error"] == ""] if "error" in frame else frame
    for policy, group in frame.groupby("policy", sort=False):
        by_point = group.groupby("point")
        for m in metrics:
            means = by_point[m].mean().reindex(design.index).to_numpy(dtype=float)
            within = by_point[m].var(ddof=1).reindex(design.index).to_numpy(dtype=float)
            n = by_point[m].count().reindex(design.index).to_numpy(dtype=float)
            total = float(np.nanvar(means, ddof=1))
            noise = float(np.nanmean(within / n)) / total if total > 0 else math.nan
            if not total > 0:
                for name in problem["names"]:
                    rows.append((policy, m, name, math.nan, math.nan, math.nan, math.nan, noise))
                continue
            si = sobol.analyze(problem, means, calc_second_order=False, print_to_console=False, seed=0)
            for j, name in enumerate(problem["names"]):
                rows.append(
                    (
                        policy,
                        m,
                        name,
                        float(si["S1"][j]),
                        float(si["S1_conf"][j]),
                        float(si["ST"][j]),
                        float(si["ST_conf"][j]),
                        noise,
                    )
                )
    return pd.DataFrame(
        rows, columns=["policy", "metric", "factor", "S1", "S1_conf", "ST", "ST_conf", "noise_share"]
    )


def sobol_warnings(table: pd.DataFrame, base_samples: int) -> list[str]:
    """What an analyst must be told before reading Sobol indices, one line per kind of problem:
    indices whose 95% interval is wider than the index itself (not told apart from zero), and
    first-order indices above the total ones (impossible in theory: sampling noise). Each line names
    the (metric, factor) pairs and the remedy."""
    wide, above = [], []
    for _, r in table.iterrows():
        if r["S1"] != r["S1"]:
            continue
        where = f"{r['metric']}/{r['factor']}" + (
            f" ({r['policy']})" if table["policy"].nunique() > 1 else ""
        )
        if r["S1_conf"] > abs(r["S1"]) or r["ST_conf"] > abs(r["ST"]):
            wide.append(where)
        if r["S1"] > r["ST"]:
            above.append(f"{where} S1 {r['S1']:.2f} > ST {r['ST']:.2f}")
    more = f"rerun with --base-samples {base_samples * 4}"
    out = []
    if wide:
        out.append(
            f"{len(wide)} of {len(table)} factor effects have a 95% interval wider than the "
            f"index, so they are not told apart from zero: {', '.join(wide)}; {more}"
        )
    if above:
        out.append(
            f"{len(above)} first-order indices exceed the total index, which only sampling "
            f"noise can do: {'; '.join(above)}; {more}"
        )
    return out


# --- a comparison of scenarios on the same seeds ---------------------------------------------------


@dataclass
class Comparison:
    """Scenarios run on the same replication seeds: per-replication ``summary`` (a ``policy`` column
    names the scenario), the paired ``table`` from :func:`paired`, and the ``events`` when kept."""

    names: list[str]
    files: list[str]
    scenarios: list
    overrides: list[str]  # applied to every scenario
    summary: pd.DataFrame
    table: pd.DataFrame
    events: pd.DataFrame | None
    reps: int
    seed: int
    seconds: float
    #: each scenario's own overrides, applied after ``overrides`` (empty lists when none)
    scenario_overrides: list[list[str]] | None = None
    #: where the parameters came from (the fitted point, or a posterior's draws), and per scenario
    #: the keys drawn from the posterior
    parameters: Any = None
    draw_keys: dict[str, list[str]] | None = None

    def overrides_of(self, i: int) -> list[str]:
        """Every override scenario ``i`` ran with: the shared ones, then its own."""
        own = self.scenario_overrides[i] if self.scenario_overrides else []
        return [*self.overrides, *own]


def comparison_names(files: list[str]) -> list[str]:
    """Each scenario's name in a comparison: its file name, numbered when two files share one."""
    names = [Path(p).stem for p in files]
    if len(set(names)) < len(names):
        names = [f"{i}:{n}" for i, n in enumerate(names)]
    return names


def run_comparison(
    files: list[str],
    reps: int = 500,
    seed: int | None = None,
    backend=None,
    progress=None,
    overrides: list[str] | tuple[str, ...] = (),
    metrics: tuple[str, ...] | None = None,
    events: bool = False,
    batch_reps: int = 100,
    store: str | Path | None = None,
    resume: bool = False,
    scenario_overrides: list[list[str]] | None = None,
    parameters=None,
) -> Comparison:
    """Run every scenario file on replications 0..reps-1 of root seed ``seed`` (common random
    numbers) and compare each with the first (:func:`paired`). ``overrides`` (``key.path=value``)
    apply to every scenario, then ``scenario_overrides[i]`` to scenario ``i`` alone.
    ``progress(done, total)`` is called as batches finish.

    A comparison is a sweep with no factors and one policy per scenario: its batches go to the sweep
    store ``store`` (in memory when None), so that with ``resume`` a comparison stopped part-way
    runs only the batches it has not finished (:func:`sim.sweep.run_sweep`).

    ``parameters`` (:class:`sim.posterior.Parameters`; default the fitted point) runs every
    scenario over a posterior's draws, the same draw in the same replication under every scenario.
    """
    import time

    from sim.defaults import DEFAULT_SEED
    from sim.scenario import ScenarioError, load_scenario
    from sim.store import EVENT_BATCHES, MemoryStore, SweepStore
    from sim.sweep import Sweep, SweepFile, design_points, run_sweep

    seed = DEFAULT_SEED if seed is None else seed
    if len(files) < 2:
        raise ScenarioError(files[0] if files else "-", "", "a comparison needs two or more scenario files")
    own = scenario_overrides or [[] for _ in files]
    if len(own) != len(files):
        raise ValueError("scenario_overrides needs one list per scenario file")
    scenarios = [load_scenario(p, [*overrides, *extra]) for p, extra in zip(files, own, strict=True)]
    names = comparison_names(files)
    spec = SweepFile(
        name="comparison",
        base=str(files[0]),
        policies=dict(zip(names, map(str, files), strict=True)),
        reps=reps,
        seed=seed,
        batch_reps=batch_reps,
    )
    sweep = Sweep(
        files[0],
        spec,
        design_points(spec),
        dict(zip(names, scenarios, strict=True)),
        dict(zip(names, map(Path, files), strict=True)),
    )
    if parameters is not None:
        sweep.use_parameters(
            parameters, {n: [*overrides, *extra] for n, extra in zip(names, own, strict=True)}
        )
    started = time.perf_counter()
    if store is None:  # nothing to resume: the batches stay in memory
        if resume:
            raise ValueError("a comparison resumes from its store: name one")
        memory = MemoryStore()
        run_sweep(sweep, memory, backend, progress=progress, events=events)
        summary, logs = memory.summary(), memory.event_batches()
    else:
        folder = Path(store)
        run_sweep(sweep, folder, backend, resume=resume, progress=progress, events=events)
        summary = SweepStore(folder).summary()
        logs = [pd.read_parquet(f) for f in sorted((folder / EVENT_BATCHES).glob("*.parquet"))]
    summary["policy"] = pd.Categorical(summary["policy"], categories=names, ordered=True)
    summary = summary.sort_values(["policy", "rep"], kind="stable").reset_index(drop=True)
    summary["policy"] = summary["policy"].astype(str)
    event_frame = None
    if events:
        event_frame = pd.concat(logs, ignore_index=True)
        event_frame["policy"] = pd.Categorical(event_frame["policy"], categories=names)
        event_frame = event_frame.sort_values(["policy", "rep", "t_hours"], kind="stable")
        event_frame = event_frame.reset_index(drop=True).drop(columns="point")
    table = paired(
        summary, metrics or (*NUMERIC_METRICS, "outcome=halted", "outcome=contained", "outcome=spiral")
    )
    return Comparison(
        names,
        list(files),
        scenarios,
        list(overrides),
        summary,
        table,
        event_frame,
        reps,
        seed,
        time.perf_counter() - started,
        [list(extra) for extra in own],
        sweep.parameters,
        sweep.draw_keys,
    )


def format_difference(row) -> tuple[str, str, str]:
    """A paired row as text: the difference, its 95% interval and the variance reduction; '-' where
    a value does not exist (no replication has the metric; no spread at all)."""

    def num(x: float) -> str:
        return "-" if x != x else f"{x:+.3g}"

    d, lo, hi, vr = row["difference"], row["ci_low"], row["ci_high"], row["variance_reduction"]
    interval = "-" if lo != lo or hi != hi else f"[{num(lo)}, {num(hi)}]"
    if vr != vr:
        reduction = "-"
    elif vr == math.inf:
        reduction = "constant"
    else:
        reduction = f"x{vr:,.0f}" if vr >= 1000 else f"x{vr:.3g}"
    return num(d), interval, reduction
