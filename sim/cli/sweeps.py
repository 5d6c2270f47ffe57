"""``esim sweep``, ``results``, ``compare`` and ``sensitivity``."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sim.cli.common import (
    _METRIC_NAMES,
    DaskLocalOpt,
    PointOpt,
    PosteriorOpt,
    RepsOpt,
    RepsPerDrawOpt,
    SchedulerOpt,
    SeedOpt,
    SetOpt,
    WorkersOpt,
    _bad_input,
    _fits,
    _folder_ready,
    _LazyProgress,
    _parameters,
    _reps_bounded,
    _writable,
    app,
    err_console,
    out_console,
)
from sim.defaults import DEFAULT_REPS_PER_DRAW, DEFAULT_SEED
from sim.metrics import format_number
from sim.scenario import ScenarioError, load_scenario


def _sweep_backend(workers: int, scheduler: str | None, dask_local: int, tasks: int | None = None):
    """The backend, with local processes capped by this machine's cores and by the tasks there are
    (a capped request is said on stderr)."""
    import os

    from sim.backends import Backend

    cores = os.cpu_count() or 1
    cap = min(cores, tasks) if tasks else cores

    def capped(asked: int, option: str) -> int:
        if asked > cap:
            why = f"{cores} cores" if cap == cores else f"{tasks} tasks"
            err_console.print(
                f"note: {option} {asked}: capped at {cap} ({why})", markup=False, highlight=False
            )
            return cap
        return asked

    return Backend(
        workers=capped(workers, "--workers"),
        scheduler=scheduler,
        dask_local=capped(dask_local, "--dask-local") if dask_local else 0,
    )


@app.command()
def sweep(
    file: Annotated[str, typer.Argument(help="sweep file (TOML)", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="result folder")],
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = 0,
    resume: Annotated[bool, typer.Option("--resume", help="run only the batches not yet in OUT")] = False,
    events: Annotated[
        bool, typer.Option("--events", help="also keep every replication's event log (OUT/events/)")
    ] = False,
    posterior: PosteriorOpt = None,
    point: PointOpt = False,
    reps_per_draw: RepsPerDrawOpt = DEFAULT_REPS_PER_DRAW,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run a sweep: every design point under every policy, batch by batch into OUT (the fitted
    point unless --posterior is given)."""
    from sim.store import SweepStoreError
    from sim.sweep import load_sweep, run_sweep

    with _bad_input():
        sw = load_sweep(file)
        base = str(next(iter(sw.files.values()), file))
        sw.use_parameters(_parameters(posterior, point, base, "point", reps_per_draw))
        if scheduler is not None:
            from sim.backends import scheduler_problem

            problem = scheduler_problem(scheduler)
            if problem:
                raise ScenarioError("--scheduler", "", problem)
        _writable(out)
    backend = _sweep_backend(workers, scheduler, dask_local, len(sw.tasks()))
    if not quiet:
        out_console.print(
            f"sweep '{sw.spec.name}': {sw.points} point{'s' if sw.points > 1 else ''} x "
            f"{len(sw.policy_names)} polic{'ies' if len(sw.policy_names) > 1 else 'y'} x "
            f"{sw.spec.reps} replications = {sw.replications:,}, {len(sw.tasks())} batches; "
            f"{backend.label}; {sw.parameters.label()}",
            highlight=False,
            soft_wrap=True,
        )
    progress = _LazyProgress(quiet, sw.spec.name)
    with _bad_input():
        try:
            result = run_sweep(
                sw, out, backend, resume=resume, progress=progress, argv=sys.argv[1:], events=events
            )
        except SweepStoreError as exc:
            raise ScenarioError(out, "--out", str(exc).removeprefix(f"{out} ")) from None
        except ConnectionError as exc:
            raise ScenarioError(file, "--scheduler", str(exc)) from None
        finally:
            progress.close()
    rate = result.replications / result.seconds if result.seconds else math.inf
    out_console.print(
        f"{result.replications:,} replications in {result.seconds:.1f} s "
        f"({rate:,.0f}/s); {result.skipped} batches already done; "
        f"{result.failed} failed replications; {sw.parameters.label()}; results in {out}/ "
        f"(esim results {out})",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def results(
    folder: Annotated[Path, typer.Argument(help="a sweep's result folder", show_default=False)],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="metrics to show (repeatable) [default: headline metrics]"),
    ] = None,
    paired_: Annotated[
        bool,
        typer.Option(
            "--paired",
            help="paired differences of each policy from the first, per design point (common random numbers)",
        ),
    ] = False,
) -> None:
    """Mean and 95% confidence interval of each metric per design point and policy."""
    from sim.compare import aggregate
    from sim.metrics import HEADLINE
    from sim.store import SWEEP_MANIFEST, SweepStore

    store = SweepStore(folder)
    with _bad_input():
        if not folder.is_dir():
            raise ScenarioError(folder, "", "no such folder" if not folder.exists() else "not a folder")
        if not (folder / SWEEP_MANIFEST).is_file():
            raise ScenarioError(folder, "", f"no {SWEEP_MANIFEST}: not a sweep's result folder")
        info = store.manifest()
        summary = store.summary()
        if summary.empty:
            out_console.print(f"{folder}: no finished batches yet", highlight=False)
            return
        design = store.design()
    metrics = tuple(metric) if metric else HEADLINE
    with _bad_input():
        unknown = [m for m in metrics if m not in summary.columns and not m.startswith("outcome=")]
        if unknown:
            raise ScenarioError(folder, "--metric", f"unknown metric '{unknown[0]}'")
    if paired_:
        _print_paired_by_point(summary, design, metrics, info)
        return
    table_data = aggregate(summary, design, metrics)
    expected = info["points"] * len(info["policies"]) * info["reps"]
    table = Table(
        title=f"{info['sweep']}: {len(summary):,} of {expected:,} replications; mean and "
        f"95% confidence interval; {_parameters_words(info)}",
        title_justify="left",
    )
    factors = list(design.columns)
    for col in ("point", *factors, "policy", *metrics):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for (point, policy), group in table_data.groupby(["point", "policy"], sort=True):
        by_metric = group.set_index("metric")
        cells = [
            f"{by_metric.at[m, 'mean']:.3g} [{by_metric.at[m, 'ci_low']:.3g}, "
            f"{by_metric.at[m, 'ci_high']:.3g}]"
            for m in metrics
        ]
        values = [f"{design.at[point, f]:.4g}" for f in factors]
        table.add_row(str(point), *values, str(policy), *cells)
    out_console.print(table)
    failed = int((summary["error"] != "").sum())
    if failed:
        first = summary.loc[summary["error"] != "", "error"].iloc[0]
        out_console.print(
            f"{failed} failed replications (left out); the first: {first}", highlight=False, soft_wrap=True
        )


def _paired_cell(r) -> str:
    from sim.compare import format_difference

    d, ci, vr = format_difference(r)
    return f"{d} {ci} {vr}"


def _parameters_words(info: dict) -> str:
    """Where a sweep folder's parameters came from, from its sweep.json."""
    p = info.get("parameters") or {"mode": "point"}
    if p.get("mode") != "posterior":
        return "the fitted point"
    sha = str(p.get("sha256"))[:12]
    return f"posterior {p.get('file')} (sha256 {sha}; {p.get('reps_per_draw')} replications a draw)"


def _print_paired_by_point(summary, design, metrics, info) -> None:
    from sim.compare import paired

    policies = list(dict.fromkeys(summary["policy"]))
    table = Table(
        title=f"{info['sweep']}: paired difference from '{policies[0]}' per design point, "
        f"95% confidence interval, variance reduction (common random numbers); {_parameters_words(info)}",
        title_justify="left",
    )
    factors = list(design.columns)
    for col in ("point", *factors, "policy", *metrics):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for point, group in summary.groupby("point", sort=True):
        rows = paired(group, metrics)
        for policy in policies[1:]:
            by_metric = rows[rows["policy"] == policy].set_index("metric")
            table.add_row(
                str(point),
                *[f"{design.at[point, f]:.4g}" for f in factors],
                policy,
                *[_paired_cell(by_metric.loc[m]) for m in metrics],
            )
    out_console.print(table)


@app.command()
def compare(
    scenarios: Annotated[
        list[str],
        typer.Argument(
            help="scenario files; the first is the reference", show_default=False, metavar="SCENARIO..."
        ),
    ],
    reps: RepsOpt = 500,
    seed: SeedOpt = DEFAULT_SEED,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="DIR", help="also write the replications, their events and the comparison here"
        ),
    ] = None,
    workers: WorkersOpt = 1,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", metavar="NAME", help="metrics to show (repeatable)")
    ] = None,
    set_: SetOpt = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="finish a comparison to --out that was stopped: run only its unfinished batches"
        ),
    ] = False,
    posterior: PosteriorOpt = None,
    point: PointOpt = False,
    reps_per_draw: RepsPerDrawOpt = DEFAULT_REPS_PER_DRAW,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Compare scenarios on the same replication seeds: paired differences from the first, with
    95% confidence intervals and the variance reduction of the paired design.

    Runs over the posterior beside the first scenario's fitted.toml by default (the same draw in
    the same replication under every scenario); --point runs the fitted point."""
    import shutil

    from sim.folders import SweepStoreError
    from sim.metrics import HEADLINE

    metrics = tuple(metric) if metric else (*HEADLINE, "outcome=halted")
    with _bad_input():
        if len(scenarios) < 2:
            raise ScenarioError(
                scenarios[0] if scenarios else "-", "", "compare needs two or more scenario files"
            )
        for p in scenarios:
            load_scenario(p, set_ or [])  # every file's problem before any work
        params = _parameters(posterior, point, scenarios[0], "default-posterior", reps_per_draw)
        _reps_bounded(reps, len(scenarios), events=out is not None)
        unknown = [m for m in metrics if m not in _METRIC_NAMES]
        if unknown:
            raise ScenarioError("--metric", unknown[0], f"unknown metric (known: {', '.join(_METRIC_NAMES)})")
        if out is not None:
            _folder_ready(out)
        elif resume:
            raise ScenarioError("--resume", "", "a comparison resumes into its --out folder: name it")
    # the workers start now and import the model while this process loads pandas and the rest
    backend = _sweep_backend(workers, None, 0, len(scenarios) * -(-reps // 100)).start()
    with backend:
        from sim.compare import format_difference, run_comparison  # pandas: after the input is checked
        from sim.store import comparison_manifest, run_label

        # with --out, finished batches wait in a hidden sibling until the comparison is written
        store = None if out is None else out.parent / f".{out.name}.batches"
        if store is not None and not resume:
            shutil.rmtree(store, ignore_errors=True)  # left by a comparison that was stopped
        progress = _LazyProgress(quiet, "compare")
        with _bad_input():
            try:
                comp = run_comparison(
                    scenarios,
                    reps=reps,
                    seed=seed,
                    backend=backend,
                    progress=progress,
                    overrides=set_ or [],
                    events=out is not None,
                    store=store,
                    resume=resume,
                    parameters=params,
                )
            except SweepStoreError as exc:
                raise ScenarioError("--resume", "", f"{exc}; run without --resume to start again") from None
            finally:
                progress.close()
    names = comp.names
    info = comparison_manifest(comp, sys.argv[1:])
    table = Table(
        title=f"{run_label(info)}; {comp.seconds:.1f} s: mean, and paired difference "
        f"from '{names[0]}' with its 95% confidence interval",
        title_justify="left",
    )
    for col in ("metric", "scenario", "mean", "diff.", "95% CI", "var. red."):
        table.add_column(
            col, justify="left" if col in ("metric", "scenario") else "right", no_wrap=col != "metric"
        )
    for m in metrics:
        rows = comp.table[comp.table["metric"] == m].set_index("policy")
        for i, name in enumerate(names):
            if name not in rows.index:  # every replication of it failed (below)
                table.add_row(m if i == 0 else "", name, "-", "-", "-", "-", end_section=i == len(names) - 1)
                continue
            r = rows.loc[name]
            cells = ("", "", "") if i == 0 else format_difference(r)
            table.add_row(
                m if i == 0 else "", name, format_number(r["mean"]), *cells, end_section=i == len(names) - 1
            )
    if _fits(table):
        out_console.print(table)
    else:  # narrower than the table (80 columns, piped): a block a metric, names whole
        out_console.print(table.title, highlight=False)
        width = max(len(n) for n in names)
        for m in metrics:
            rows = comp.table[comp.table["metric"] == m].set_index("policy")
            out_console.print(m, highlight=False, markup=False)
            for i, name in enumerate(names):
                line = "-"
                if name in rows.index:
                    r = rows.loc[name]
                    line = format_number(r["mean"]) + ("  " + " ".join(format_difference(r)) if i else "")
                out_console.print(f"  {name:<{width}}  {line}", highlight=False, markup=False, soft_wrap=True)
    failed = comp.summary[comp.summary["error"] != ""]
    for name, group in failed.groupby("policy", sort=False):
        err_console.print(
            f"warning: {name}: {len(group)} of {comp.reps} replications failed and are "
            f"left out; the first: {group['error'].iloc[0]}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    out_console.print(
        "diff.: paired difference from the first scenario; var. red. xN: independent "
        "seeds would need N times the replications "
        "for an interval as narrow; 'constant': the difference is the same on every "
        "replication; '-': not defined (no replication has the metric, or neither "
        "scenario varies).",
        highlight=False,
        soft_wrap=True,
    )
    if out is not None:
        from sim.store import write_comparison

        write_comparison(out, comp, info)
        if store is not None:
            shutil.rmtree(store, ignore_errors=True)
        out_console.print(
            f"results in {out}/ (summary.parquet, comparison.parquet, events.parquet, "
            "scenarios/, manifest.json)",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def sensitivity(
    file: Annotated[str, typer.Argument(help="sweep file with factor ranges (TOML)", show_default=False)],
    out: Annotated[
        Path | None, typer.Option("--out", help="result folder [default: results/<sweep name>-sensitivity]")
    ] = None,
    workers: WorkersOpt = 1,
    base_samples: Annotated[
        int | None,
        typer.Option(
            "--base-samples", min=2, help="Saltelli base samples N (a power of 2) [default: design.points]"
        ),
    ] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="metrics (repeatable)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="finish an interrupted analysis")] = False,
    posterior: PosteriorOpt = None,
    point: PointOpt = False,
    reps_per_draw: RepsPerDrawOpt = DEFAULT_REPS_PER_DRAW,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Sobol sensitivity indices (SALib) of the sweep's factors, under common random numbers, with
    the share of variance that is simulation noise."""
    from sim.compare import sobol_indices
    from sim.metrics import HEADLINE
    from sim.store import SweepStore, SweepStoreError
    from sim.sweep import load_sweep, run_sweep, sensitivity_sweep

    with _bad_input():
        loaded = load_sweep(file)
        base = str(next(iter(loaded.files.values()), file))
        loaded.use_parameters(_parameters(posterior, point, base, "point", reps_per_draw))
        sw, problem = sensitivity_sweep(loaded, base_samples)
        out = out or Path("results") / f"{sw.spec.name}-sensitivity"
        _writable(out)
    if not quiet:
        out_console.print(
            f"sensitivity of '{sw.spec.name}': {len(problem['names'])} factors, "
            f"{sw.points} Saltelli points x {len(sw.policy_names)} polic"
            f"{'ies' if len(sw.policy_names) > 1 else 'y'} x {sw.spec.reps} replications "
            f"= {sw.replications:,}; {sw.parameters.label()}",
            highlight=False,
            soft_wrap=True,
        )
    progress = _LazyProgress(quiet, sw.spec.name)
    with _bad_input():
        try:
            run_sweep(
                sw,
                out,
                _sweep_backend(workers, None, 0, len(sw.tasks())),
                resume=resume,
                progress=progress,
                argv=sys.argv[1:],
            )
        except SweepStoreError as exc:
            raise ScenarioError(out, "--out", str(exc).removeprefix(f"{out} ")) from None
        finally:
            progress.close()
    metrics = tuple(metric) if metric else HEADLINE[:5]
    table_data = sobol_indices(sw.design, SweepStore(out).summary(), problem, metrics)
    from sim.store import atomic_write

    atomic_write(out / "sobol.parquet", lambda p: table_data.to_parquet(p, index=False))
    table = Table(
        title="Sobol indices (first order S1, total ST, 95% conf.) and the share of the "
        "variance of point means that is simulation noise",
        title_justify="left",
    )
    for col in ("policy", "metric", "factor", "S1", "ST", "noise"):
        table.add_column(col, justify="right" if col in ("S1", "ST", "noise") else "left")
    for _, r in table_data.iterrows():
        table.add_row(
            r["policy"],
            r["metric"],
            r["factor"],
            f"{r['S1']:.2f} ±{r['S1_conf']:.2f}",
            f"{r['ST']:.2f} ±{r['ST_conf']:.2f}",
            f"{r['noise_share']:.1%}",
        )
    out_console.print(table)
    from sim.compare import sobol_warnings

    for line in sobol_warnings(table_data, len(sw.design) // (len(problem["names"]) + 2)):
        err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
    out_console.print(f"results in {out}/ (batches, design.parquet, sobol.parquet)", highlight=False)
