"""The ``esim`` command line: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sim import runner
from sim.metrics import describe, format_number
from sim.scenario import ScenarioError, load_scenario, scenario_hash
from sim.store import check_writable, default_run_folder, manifest, run_label, write_run

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="escalation-sim: militia attacks on US forces and the US retaliation they provoke.",
)
out_console = Console()
err_console = Console(stderr=True)

ScenarioArg = Annotated[
    str, typer.Argument(help="scenario file (TOML)", show_default=False, metavar="SCENARIO")
]
#: The most replications whose events ``esim compare --out`` holds in memory, and the most
#: replications ``esim run`` (which writes events to disk a chunk at a time) and a comparison hold
#: at all; ``esim sweep`` keeps one summary row per replication and has no such limit.
MAX_EVENT_REPS = 20_000
MAX_SUMMARY_REPS = 1_000_000
#: Peak memory of a baseline run per replication with its events, and per summary row (tracemalloc
#: over 300 replications, 2026-11-29: 261 kB and 265 bytes; BENCHMARKS.md).
BYTES_PER_REP = 261_000
BYTES_PER_ROW = 300
#: events.parquet of the baseline per replication (1,200 replications: 7.5 MB, 2026-11-29), with room.
DISK_BYTES_PER_REP = 8_000
RepsOpt = Annotated[int, typer.Option("--reps", "-n", min=1, metavar="N", help="replications")]
SeedOpt = Annotated[
    int, typer.Option("--seed", min=0, max=2**63 - 1, metavar="SEED", help="root seed of the random numbers")
]


def _reps_bounded(reps: int, scenarios: int = 1, events: bool = True) -> None:
    """Refuse up front a run that would hold more in memory than a laptop has (about 5 GB)."""
    total = reps * scenarios
    limit, per = (MAX_EVENT_REPS, BYTES_PER_REP) if events else (MAX_SUMMARY_REPS, BYTES_PER_ROW)
    if total > limit:
        what = "with their events " if events else ""
        raise ScenarioError(
            "--reps",
            "",
            f"{total:,} replications {what}would need about "
            f"{total * per / 1e9:,.1f} GB of memory; at most {limit:,} here: for "
            "more, run a sweep (esim sweep keeps one summary row per replication "
            "and writes each batch as it finishes)",
        )


def _disk_bounded(out: Path, reps: int) -> None:
    """Refuse up front a run whose events would not fit on the disk of ``out``."""
    import shutil

    parent = next(p for p in [out.absolute(), *out.absolute().parents] if p.exists())
    need, free = reps * DISK_BYTES_PER_REP, shutil.disk_usage(parent).free
    if need > free:
        raise ScenarioError(
            "--reps",
            "",
            f"{reps:,} replications would write about "
            f"{need / 1e9:,.1f} GB of events; {parent} has {free / 1e9:,.1f} GB free",
        )


SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", metavar="KEY=VALUE", help="override a key: --set militia.branching_ratio=0.3 (repeatable)"
    ),
]


@contextlib.contextmanager
def _bad_input():
    """Bad input ends the command with one line on stderr and exit code 2, no traceback."""
    from sim.folders import FolderError
    from sim.model.events import EventBudgetExceeded
    from sim.store import SweepStoreError

    try:
        yield
    except (ScenarioError, FolderError, SweepStoreError, EventBudgetExceeded) as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _folder_ready(out: Path, owned: tuple[str, ...] = ("manifest.json",)) -> None:
    """Fail now, as bad input, if a whole result folder cannot be written as ``out``: it is a
    file, a folder of other files, or its parent is not writable."""
    from sim.folders import FolderError, FolderWriter

    try:
        FolderWriter(out, owned=owned).check()
    except FolderError as exc:
        raise ScenarioError("--out", "", str(exc)) from None
    except OSError as exc:
        raise ScenarioError(out, "--out", f"cannot write here ({exc.strerror})") from None


def _writable(out: Path) -> None:
    """Fail now, as bad input, if results cannot be written into ``out``."""
    try:
        check_writable(out)
    except OSError as exc:
        raise ScenarioError(out, "--out", f"cannot write here ({exc.strerror})") from None


def _metric_names() -> tuple[str, ...]:
    from sim.compare import NUMERIC_METRICS

    return (*NUMERIC_METRICS, "outcome=halted", "outcome=contained", "outcome=spiral")


_METRIC_NAMES = _metric_names()


class _LazyProgress:
    """A rich progress bar that appears only once a run has taken longer than a second."""

    def __init__(self, quiet: bool, label: str):
        self.quiet = quiet
        self.label = label
        self.started = time.perf_counter()
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            if time.perf_counter() - self.started < 1.0:
                return
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>7,.0f} reps/s"),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total, rate=0.0)
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        if self.task is not None:
            self.bar.update(self.task, completed=done, rate=rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _to_parquet(frame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def _shown(path: Path) -> Path:
    """A path relative to the working folder where it lies under it."""
    cwd = Path.cwd()
    return path.relative_to(cwd) if path.is_relative_to(cwd) else path


def _summary_table(summary, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("5%", justify="right")
    table.add_column("95%", justify="right")
    table.add_column("n", justify="right")
    for name, row in describe(summary).iterrows():
        table.add_row(name, *(format_number(row[k]) for k in ("mean", "p5", "p95")), str(int(row["n"])))
    return table


@app.command()
def run(
    scenario: ScenarioArg,
    reps: RepsOpt = runner.DEFAULT_REPS,
    seed: SeedOpt = runner.DEFAULT_SEED,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="result folder [default: "
            "results/<file name>, and with --set "
            "results/<file name>+<key>=<value>...]",
        ),
    ] = None,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run replications of a scenario; write summary, events, resolved scenario and manifest."""
    with _bad_input():
        sc = load_scenario(scenario, set_ or [])
        _reps_bounded(reps, events=False)  # the events go to disk a chunk at a time
        out_dir = out if out is not None else default_run_folder(scenario, set_ or [])
        _folder_ready(out_dir)
        _disk_bounded(out_dir, reps)
    from sim.scenario.sources import scenario_sources

    info = manifest(sc, scenario, seed, reps, 0.0, argv=sys.argv[1:], overrides=set_ or [])
    progress = _LazyProgress(quiet, f"{sc.meta.name}")
    started = time.perf_counter()

    def timed(chunks):
        yield from chunks
        info["wall_seconds"] = round(time.perf_counter() - started, 3)

    with _bad_input():
        try:
            summary = write_run(
                out_dir,
                timed(runner.run_chunks(sc, reps, seed, progress)),
                sc,
                info,
                scenario_sources(scenario, set_ or [], sc),
            )
        except OSError as exc:
            err_console.print(
                f"error: {out_dir}: cannot write results ({exc.strerror})",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        finally:
            progress.close()
    wall = info["wall_seconds"]
    out_console.print(
        f"[bold]{run_label(info)}[/bold]: {sc.meta.start_date.isoformat()} to "
        f"{sc.meta.end_date.isoformat()}, {wall:.1f} s "
        f"({reps / wall if wall else math.inf:,.0f} reps/s)",
        highlight=False,
        soft_wrap=True,
    )
    out_console.print(_summary_table(summary, "mean and 5-95% interval over replications"))
    out_console.print(
        f"results in {out_dir}/ (summary.parquet, events.parquet, "
        f"scenario.resolved.toml, scenario.sources.json, manifest.json)",
        highlight=False,
        soft_wrap=True,
    )


def _file_kind(path: str) -> str:
    """What an input file is, from its top-level keys: scenario, sweep, targets or priors."""
    from sim.scenario.loader import read_toml

    data = read_toml(Path(path))
    if "meta" in data or "extends" in data:
        return "scenario"
    if "base" in data and ("reps" in data or "factors" in data or "policies" in data):
        return "sweep"
    if "targets" in data and isinstance(data["targets"], dict):
        return "targets"
    if "parameters" in data:
        return "priors"
    return "scenario"


@app.command()
def validate(
    scenario: Annotated[
        str,
        typer.Argument(
            help="a scenario, sweep, targets or priors file (TOML)", show_default=False, metavar="FILE"
        ),
    ],
    set_: SetOpt = None,
) -> None:
    """Check an input file without running it: a scenario (extends chain and overrides included),
    a sweep file (its scenarios and factors), a targets or a priors file."""
    with _bad_input():
        kind = _file_kind(scenario)
        if kind != "scenario" and set_:
            raise ScenarioError("--set", "", f"{scenario} is a {kind} file: --set applies to scenario files")
        if kind == "sweep":
            from sim.sweep import load_sweep

            sw = load_sweep(scenario)
            out_console.print(
                f"ok: {scenario}: sweep '{sw.spec.name}', {sw.points} point"
                f"{'s' if sw.points > 1 else ''} x {len(sw.policy_names)} polic"
                f"{'ies' if len(sw.policy_names) > 1 else 'y'} x {sw.spec.reps} replications = "
                f"{sw.replications:,}, seed {sw.spec.seed}",
                highlight=False,
                soft_wrap=True,
            )
            return
        if kind in ("targets", "priors"):
            from sim.calibrate import setup
            from sim.calibrate.targets import load_targets

            if kind == "targets":
                tf = load_targets(scenario)
                what = f"{len(tf.targets)} targets and {len(tf.series)} dated series"
            else:
                s = setup(scenario)
                what = (
                    f"{len(s.priors.parameters)} parameters of '{s.scenario.meta.name}', "
                    f"targets {s.targets_file.name}"
                )
            out_console.print(f"ok: {scenario}: {kind} file, {what}", highlight=False, soft_wrap=True)
            return
        sc = load_scenario(scenario, set_ or [])
    out_console.print(
        f"ok: {scenario}: scenario '{sc.meta.name}', {sc.meta.start_date.isoformat()} to "
        f"{sc.meta.end_date.isoformat()}, policy {sc.command.policy}, "
        f"sha256 {scenario_hash(sc)[:12]}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def calibrate(
    priors: Annotated[
        Path, typer.Option("--priors", help="priors file; it names the targets, which name the scenario")
    ] = Path("calibration/priors.toml"),
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="folder for posterior.parquet, fitted.toml, generations.csv and the pyabc history abc.db",
        ),
    ] = Path("calibration"),
    budget: Annotated[int, typer.Option("--budget", min=1, help="simulations in all")] = 150_000,
    max_minutes: Annotated[float, typer.Option("--max-minutes", min=0.05, help="wall time")] = 9.0,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="processes")] = 2,
    population: Annotated[int, typer.Option("--population", min=10, help="particles")] = 500,
    min_epsilon: Annotated[
        float, typer.Option("--min-epsilon", min=0.0, help="stop at this distance threshold")
    ] = 0.0,
    min_acceptance: Annotated[
        float, typer.Option("--min-acceptance", min=0.0, max=1.0, help="stop below this acceptance rate")
    ] = 0.01,
    seed: SeedOpt = 20240202,
    transition: Annotated[
        str,
        typer.Option(
            "--transition",
            help="proposal kernel: 'normal' (one "
            "covariance) or 'local' (per particle, from its "
            "nearest neighbours)",
        ),
    ] = "normal",
    resume: Annotated[bool, typer.Option("--resume", help="continue the last run in OUT/abc.db")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no per-generation log")] = False,
) -> None:
    """Fit the free parameters to the documented record with ABC-SMC (pyabc)."""
    from sim.calibrate import Settings, run_calibration, setup
    from sim.calibrate.smc import CalibrationError, ResumeError

    with _bad_input():
        s = setup(priors)
        _writable(out)
    if transition not in ("normal", "local"):
        with _bad_input():
            raise ScenarioError("--transition", "", f"'{transition}' is not 'normal' or 'local'")
    settings = Settings(
        population=population,
        budget=budget,
        max_minutes=max_minutes,
        min_epsilon=min_epsilon,
        min_acceptance=min_acceptance,
        workers=workers,
        seed=seed,
        transition=transition,
    )
    if not quiet:
        out_console.print(
            f"calibrating {len(s.priors.parameters)} parameter{'s' if len(s.priors.parameters) > 1 else ''}"
            f" of '{s.scenario.meta.name}' to "
            f"{sum(t.calibrate and t.kind != 'input' for t in s.targets.targets.values())} targets "
            f"and {len(s.targets.series)} dated series ({s.targets_file.name}); "
            f"{workers} worker{'s' if workers > 1 else ''}, budget "
            f"{budget:,} simulations, {max_minutes:g} min",
            highlight=False,
        )
        out_console.print(
            f"{'gen':>3} {'epsilon':>9} {'accepted':>9} {'sims':>8} {'accept':>7} "
            f"{'ESS':>6} {'seconds':>8} {'total sims':>11}",
            highlight=False,
        )

    def log(g) -> None:
        if not quiet:
            out_console.print(
                f"{g.t:>3} {g.epsilon:>9.3f} {g.accepted:>9} {g.simulations:>8} "
                f"{g.acceptance_rate:>7.3f} {g.ess:>6.0f} {g.seconds:>8.1f} "
                f"{g.total_simulations:>11,}",
                highlight=False,
            )

    with _bad_input():
        try:
            result = run_calibration(s, settings, out, resume=resume, on_generation=log)
        except ResumeError as exc:
            raise ScenarioError(out / "abc.db", "--resume", str(exc).split(": ", 1)[-1]) from None
        except CalibrationError as exc:
            raise ScenarioError(priors, "--population", str(exc)) from None
    abandoned = (
        f", and {result.abandoned_simulations:,} in an abandoned generation"
        if result.abandoned_simulations
        else ""
    )
    out_console.print(
        f"stopped: {result.stopped}; {result.simulations:,} simulations{abandoned}; {result.seconds:.0f} s",
        highlight=False,
        soft_wrap=True,
    )
    table = Table(
        title="posterior: the fitted point, the weighted median and 90% interval", title_justify="left"
    )
    table.add_column("parameter", no_wrap=True)
    for col in ("fitted", "median", "5%", "95%"):
        table.add_column(col, justify="right")
    table.add_column("prior")
    for name, row in result.summary.iterrows():
        table.add_row(
            str(name),
            f"{row['fitted']:.4g}",
            f"{row['median']:.4g}",
            f"{row['p5']:.4g}",
            f"{row['p95']:.4g}",
            f"{row['prior']}({row['prior_low']:g}, {row['prior_high']:g})",
        )
    out_console.print(table)
    out_console.print(
        f"wrote {out}/posterior.parquet, {out}/fitted.toml, {out}/generations.csv; "
        f"next: esim check {_shown(s.scenario_file)}",
        highlight=False,
        soft_wrap=True,
    )
    for key in result.overridden:
        err_console.print(
            f"warning: {s.scenario_file} sets {key} itself, so the fitted value is not used",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def check(
    scenario: ScenarioArg,
    reps: RepsOpt = 300,
    seed: SeedOpt = runner.DEFAULT_SEED,
    targets: Annotated[
        Path | None,
        typer.Option("--targets", help="targets file [default: the one in calibration/ that names SCENARIO]"),
    ] = None,
    set_: SetOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="also keep the check's tables here (Parquet; esim export turns them into CSV or JSON)",
        ),
    ] = None,
) -> None:
    """Predictive check: each documented count against the simulated median and 90% interval.

    Exit code 0 when every target passes, 1 when one fails, 2 on bad input.
    """
    from sim.calibrate import find_targets_file, load_targets, predictive_check, verify_outputs
    from sim.scenario.sources import uses_fitted

    with _bad_input():
        sc = load_scenario(scenario, set_ or [])
        fitted = uses_fitted(scenario)
        for problem in verify_outputs(fitted) if fitted else []:
            raise ScenarioError(scenario, "extends", problem)
        tfile = targets if targets is not None else find_targets_file(scenario)
        if tfile is None:
            raise ScenarioError(
                scenario,
                "--targets",
                "no targets file in calibration/ names this scenario; pass --targets FILE",
            )
        tf = load_targets(tfile)
        if out is not None:
            _writable(out)
    result = predictive_check(sc, tf, reps=reps, seed=seed, folder=Path(tfile).parent)
    _print_check(result, sc, reps, seed, Path(tfile))
    if out is not None:
        from sim.export import check_tables
        from sim.store import atomic_write

        for name, frame in check_tables(result).items():
            atomic_write(out / f"{name}.parquet", partial(_to_parquet, frame))
        info = manifest(sc, scenario, seed, reps, 0.0, argv=sys.argv[1:], overrides=set_ or [])
        info["targets_file"] = str(tfile)
        atomic_write(
            out / "manifest.json", lambda p: p.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        )
        out_console.print(
            f"check tables in {out}/ (check_targets, check_series, check_story)", highlight=False
        )
    failed = result.failed
    story = result.story is not None
    if failed:
        total = len(result.rows) + len(result.series) + story
        out_console.print(
            f"[red]FAIL: {len(failed)} of {total} checks[/red]: {', '.join(failed)}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    out_console.print(
        f"[green]PASS: all {len(result.rows)} targets, {len(result.series)} series"
        f"{' and the story' if story else ''}[/green]",
        highlight=False,
    )


def _share(x: float) -> str:
    return "-" if x != x else f"{x:.0%}" if x >= 0.01 or x == 0 else f"{x:.1%}"


def _print_check(result, sc, reps: int, seed: int, tfile: Path) -> None:
    rules = result.rules
    table = Table(
        title=f"{sc.meta.name}: the documented record against {reps} replications "
        f"(seed {seed}; {_shown(tfile.resolve())})",
        title_justify="left",
    )
    table.add_column("target", no_wrap=True)
    table.add_column("documented")
    for col in ("median", "5%", "95%", "inside", "P(>=low)", "P(<=high)", "CRPS"):
        table.add_column(col, justify="right")
    table.add_column("result")
    for r in result.rows:
        status = "[green]PASS[/green]" if r.passed else f"[red]FAIL[/red] {r.why}"
        if r.statistic.startswith("input"):
            status += " (input)"
        table.add_row(
            r.name,
            r.documented,
            *(format_number(v) for v in (r.median, r.p5, r.p95)),
            _share(r.share_inside),
            _share(r.tail_low),
            _share(r.tail_high),
            format_number(r.crps),
            status,
        )
    out_console.print(table)
    out_console.print(
        f"A target FAILS when P(X >= low) or P(X <= high) is below "
        f"{rules.tail_probability:g} (the record lies where the model almost never "
        f"goes), when fewer replications than its minimum land inside the documented "
        f"set, or when more than {rules.max_missing_share:.0%} lack its statistic. "
        f"CRPS: at the documented value, smaller is better. Thresholds: [check] and "
        f"min_share_inside in the targets file.",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    if result.series:
        st = Table(
            title="the dated path: model against two naive references (mean CRPS over the "
            "points; smaller is better)",
            title_justify="left",
        )
        st.add_column("series", no_wrap=True)
        for col in (
            "points in 5-95%",
            "band width / value",
            "CRPS model",
            "constant rate",
            "persistence",
            "increments: model",
            "constant",
            "persistence",
            "energy: model",
            "constant",
            "whole path in tolerance",
        ):
            st.add_column(col, justify="right")
        st.add_column("result")
        for c in result.series:
            need = []
            if c.rules.min_points_covered:
                need.append(f">= {c.rules.min_points_covered}")
            status = "[green]PASS[/green]" if c.passed else f"[red]FAIL[/red] {c.why}"
            st.add_row(
                c.name,
                f"{c.covered} of {c.points}",
                f"{c.relative_width:.2f}",
                f"{c.model.cumulative:.2f}",
                f"{c.constant.cumulative:.2f}",
                f"{c.persistence.cumulative:.2f}",
                f"{c.model.increments:.2f}",
                f"{c.constant.increments:.2f}",
                f"{c.persistence.increments:.2f}",
                f"{c.energy_model:.1f}",
                f"{c.energy_constant:.1f}",
                _share(c.path_share),
                status,
            )
        out_console.print(st)
        out_console.print(
            "Constant rate: a Poisson process at the series' reference rate from the "
            "start. Persistence: each interval forecast at the rate of the interval "
            "before, from the last observed count (it sees the record; the model runs "
            "from the start). A series FAILS when its band covers too few points, is "
            "too wide, or its CRPS is above the allowed share of the constant-rate "
            "reference's (limits in its [series.*] table).",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    if result.story is not None:
        story = result.story
        status = "[green]PASS[/green]" if story.passed else "[red]FAIL[/red]"
        out_console.print(
            f"the story at once ({', '.join(story.targets)}): {_share(story.share)} of "
            f"replications (at least {story.min_share:.0%} needed) {status}",
            highlight=False,
            soft_wrap=True,
        )
    for note in result.notes:
        out_console.print(f"note: {note}", highlight=False, soft_wrap=True)


def _sweep_backend(workers: int, scheduler: str | None, dask_local: int, tasks: int | None = None):
    """The backend, with local processes capped by this machine's cores and by the tasks there are
    (a capped request is said on stderr)."""
    import os

    from sim.runner import Backend

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


WorkersOpt = Annotated[int, typer.Option("--workers", "-w", min=1, help="local processes")]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786"),
]
DaskLocalOpt = Annotated[
    int, typer.Option("--dask-local", min=0, help="start a local Dask cluster of N workers")
]


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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run a sweep: every design point under every policy, batch by batch into OUT."""
    from sim.store import SweepStoreError
    from sim.sweep import load_sweep, run_sweep

    with _bad_input():
        sw = load_sweep(file)
        if scheduler is not None:
            from sim.runner import scheduler_problem

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
            f"{backend.label}",
            highlight=False,
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
        f"{result.failed} failed replications; results in {out}/ "
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
    from sim.compare import HEADLINE, aggregate
    from sim.store import SWEEP_MANIFEST, SweepStore

    store = SweepStore(folder)
    with _bad_input():
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
        f"95% confidence interval",
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


def _print_paired_by_point(summary, design, metrics, info) -> None:
    from sim.compare import paired

    policies = list(dict.fromkeys(summary["policy"]))
    table = Table(
        title=f"{info['sweep']}: paired difference from '{policies[0]}' per design point, "
        "95% confidence interval, variance reduction (common random numbers)",
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
    seed: SeedOpt = runner.DEFAULT_SEED,
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Compare scenarios on the same replication seeds: paired differences from the first, with
    95% confidence intervals and the variance reduction of the paired design."""
    from sim.compare import HEADLINE, format_difference, run_comparison

    metrics = tuple(metric) if metric else (*HEADLINE, "outcome=halted")
    with _bad_input():
        if len(scenarios) < 2:
            raise ScenarioError(
                scenarios[0] if scenarios else "-", "", "compare needs two or more scenario files"
            )
        for p in scenarios:
            load_scenario(p, set_ or [])  # every file's problem before any work
        _reps_bounded(reps, len(scenarios), events=out is not None)
        unknown = [m for m in metrics if m not in _METRIC_NAMES]
        if unknown:
            raise ScenarioError("--metric", unknown[0], f"unknown metric (known: {', '.join(_METRIC_NAMES)})")
        if out is not None:
            _folder_ready(out)
    progress = _LazyProgress(quiet, "compare")
    try:
        comp = run_comparison(
            scenarios,
            reps=reps,
            seed=seed,
            backend=_sweep_backend(workers, None, 0, len(scenarios) * -(-reps // 100)),
            progress=progress,
            overrides=set_ or [],
            events=out is not None,
        )
    finally:
        progress.close()
    names = comp.names
    info = _comparison_manifest(comp)
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
    out_console.print(table)
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
        out_console.print(
            f"results in {out}/ (summary.parquet, comparison.parquet, events.parquet, "
            "scenarios/, manifest.json)",
            highlight=False,
            soft_wrap=True,
        )


def _comparison_manifest(comp) -> dict:
    from sim.scenario.sources import uses_fitted
    from sim.store import manifest

    info = manifest(
        comp.scenarios[0],
        comp.files[0],
        comp.seed,
        comp.reps,
        comp.seconds,
        argv=sys.argv[1:],
        overrides=comp.overrides,
    )
    info["scenario"] = "comparison"
    info["scenarios"] = [
        {
            "name": n,
            "file": f,
            "scenario": sc.meta.name,
            "policy": sc.command.policy,
            "overrides": comp.overrides,
            "calibration": uses_fitted(f),
            "scenario_sha256": scenario_hash(sc),
        }
        for n, f, sc in zip(comp.names, comp.files, comp.scenarios, strict=True)
    ]
    return info


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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Sobol sensitivity indices (SALib) of the sweep's factors, under common random numbers, with
    the share of variance that is simulation noise."""
    from sim.compare import HEADLINE, sobol_indices
    from sim.store import SweepStore, SweepStoreError
    from sim.sweep import load_sweep, run_sweep, sensitivity_sweep

    with _bad_input():
        sw, problem = sensitivity_sweep(load_sweep(file), base_samples)
        out = out or Path("results") / f"{sw.spec.name}-sensitivity"
        _writable(out)
    if not quiet:
        out_console.print(
            f"sensitivity of '{sw.spec.name}': {len(problem['names'])} factors, "
            f"{sw.points} Saltelli points x {len(sw.policy_names)} polic"
            f"{'ies' if len(sw.policy_names) > 1 else 'y'} x {sw.spec.reps} replications "
            f"= {sw.replications:,}",
            highlight=False,
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


@app.command()
def narrate(
    scenario: ScenarioArg,
    seed: SeedOpt = runner.DEFAULT_SEED,
    rep: Annotated[int, typer.Option("--rep", min=0, help="replication")] = 0,
    set_: SetOpt = None,
) -> None:
    """Tell one replication as a dated story: attacks, decisions, B-1B missions, strikes, the ladder."""
    from sim.report.narrate import as_text
    from sim.report.narrate import narrate as tell

    with _bad_input():
        sc = load_scenario(scenario, set_ or [])
    sys.stdout.write(as_text(tell(sc, seed, rep)))


def _result_folder(folder: Path) -> str:
    """'run' (esim run, compare --out) or 'sweep' (esim sweep, sensitivity); else bad input."""
    from sim.store import SWEEP_MANIFEST

    if (folder / SWEEP_MANIFEST).is_file():
        return "sweep"
    if not (folder / "summary.parquet").is_file() or not (folder / "scenario.resolved.toml").is_file():
        raise ScenarioError(
            folder,
            "",
            "not a result folder of esim run, compare --out, sweep or "
            "sensitivity (summary.parquet and scenario.resolved.toml, or "
            "sweep.json)",
        )
    return "run"


@app.command()
def plot(
    folder: Annotated[
        Path,
        typer.Argument(
            help="result folder of esim run, compare --out, sweep or sensitivity",
            show_default=False,
            metavar="DIR",
        ),
    ],
) -> None:
    """Draw the figures of a result folder as PNG and SVG into DIR/plots."""
    from sim.report.plots import plot_folder
    from sim.report.sweep_figures import plot_sweep_folder

    with _bad_input():
        kind = _result_folder(folder)
        _folder_ready(folder / "plots", owned=("*.png", "*.svg"))
        written = plot_sweep_folder(folder) if kind == "sweep" else plot_folder(folder)
    out_console.print(
        f"{len(written)} files in {folder}/plots/: {', '.join(sorted({p.stem for p in written}))}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def report(
    folder: Annotated[
        Path,
        typer.Argument(
            help="result folder of esim run, compare --out, sweep or sensitivity",
            show_default=False,
            metavar="DIR",
        ),
    ],
    html: Annotated[Path, typer.Option("--html", metavar="FILE", help="the page to write")],
    check_reps: Annotated[
        int,
        typer.Option(
            "--check-reps", min=1, help="replications of the predictive check (where a calibration exists)"
        ),
    ] = 200,
) -> None:
    """Write one self-contained HTML page: figures, summary, predictive check, assumptions."""
    from sim.report.html import write_report

    with _bad_input():
        _result_folder(folder)
        if html.is_dir():
            raise ScenarioError(html, "--html", "is a folder: name the page to write (a .html file)")
        _writable(html.parent if str(html.parent) else Path("."))
        path = write_report(folder, html, check_reps)
    out_console.print(f"wrote {path} ({path.stat().st_size / 1024:,.0f} kB)", highlight=False)


@app.command()
def export(
    folder: Annotated[
        Path,
        typer.Argument(
            help="result folder of esim run, compare --out, sweep, sensitivity or check --out",
            show_default=False,
            metavar="DIR",
        ),
    ],
    format_: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help="csv, json or parquet")
    ] = "csv",
    out: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="where to write [default: DIR/export-FORMAT]")
    ] = None,
) -> None:
    """Write every table of a result folder as CSV, JSON or Parquet files (for a spreadsheet)."""
    from sim.export import FORMATS, export_folder, folder_tables

    with _bad_input():
        if format_ not in FORMATS:
            raise ScenarioError("--format", "", f"'{format_}' is not one of {', '.join(FORMATS)}")
        if not folder.is_dir():
            raise ScenarioError(folder, "", "no such folder")
        if not folder_tables(folder):
            raise ScenarioError(
                folder,
                "",
                "no tables here: not a result folder of esim run, "
                "compare --out, sweep, sensitivity or check --out",
            )
        dest = out if out is not None else folder / f"export-{format_}"
        _folder_ready(dest, owned=("manifest.json", "sweep.json", f"*.{format_}"))
        written = export_folder(folder, dest, format_)
    out_console.print(
        f"{len(written)} files in {dest}/: {', '.join(p.name for p in written)}",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
