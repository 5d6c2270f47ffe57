"""What every ``esim`` command shares: the app, the consoles, option types, bad-input handling,
bounds on requests and the progress bar."""

from __future__ import annotations

import contextlib
import time
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

from sim.metrics import describe, format_number
from sim.scenario import ScenarioError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="escalation-sim: militia attacks on US forces and the US retaliation they provoke.",
)


def _version(value: bool) -> None:
    if value:
        from sim.version import __version__

        typer.echo(f"escalation-sim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """escalation-sim: militia attacks on US forces and the US retaliation they provoke."""


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
    from sim.folders import FolderError, SweepStoreError
    from sim.model.events import EventBudgetExceeded

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


def _fits(table: Table) -> bool:
    """Whether ``table`` fits the console's width without cutting a cell (else print it as blocks)."""
    from rich.measure import Measurement

    wide = out_console.options.update(max_width=100_000)  # measure unclamped: the width it wants
    return Measurement.get(out_console, wide, table).maximum <= out_console.width


def _writable(out: Path) -> None:
    """Fail now, as bad input, if results cannot be written into ``out``."""
    from sim.store import check_writable

    try:
        check_writable(out)
    except OSError as exc:
        raise ScenarioError(out, "--out", f"cannot write here ({exc.strerror})") from None


def _metric_names() -> tuple[str, ...]:
    from sim.metrics import NUMERIC_METRICS

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


WorkersOpt = Annotated[int, typer.Option("--workers", "-w", min=1, help="local processes")]


SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786"),
]


DaskLocalOpt = Annotated[
    int, typer.Option("--dask-local", min=0, help="start a local Dask cluster of N workers")
]


PosteriorOpt = Annotated[
    str | None,
    typer.Option(
        "--posterior",
        metavar="[FILE]",
        help="run over the draws of a posterior file; without FILE, the posterior.parquet beside "
        "the scenario's fitted.toml (calibration/posterior.parquet). A posterior is refused unless "
        "the targets, priors and record files it was fitted to are where esim calibrate found them "
        "(relative to the file) and unchanged",
        show_default=False,
    ),
]


PointOpt = Annotated[
    bool, typer.Option("--point", help="run the fitted point (calibration/fitted.toml), not the posterior")
]


RepsPerDrawOpt = Annotated[
    int,
    typer.Option(
        "--reps-per-draw",
        min=1,
        metavar="R",
        help="over a posterior: replications a parameter draw (D draws x R replications)",
    ),
]


def _parameters(posterior: str | None, point: bool, scenario_file: str, default: str, reps_per_draw: int):
    """Where a command's parameters come from (:func:`sim.posterior.resolve`): ``--point``,
    ``--posterior [FILE]``, else the command's ``default`` ("point" or "default-posterior")."""
    from sim.defaults import DEFAULT_REPS_PER_DRAW
    from sim.posterior import resolve

    if point and posterior is not None:
        raise ScenarioError("--point", "", "give --point or --posterior, not both")
    if point:
        params = resolve("point", None, scenario_file, reps_per_draw)
    elif posterior is not None:
        params = resolve("posterior", posterior or None, scenario_file, reps_per_draw)
    else:
        params = resolve(default, None, scenario_file, reps_per_draw)
    if params.is_point and reps_per_draw != DEFAULT_REPS_PER_DRAW:
        raise ScenarioError(
            "--reps-per-draw", "", "applies over a posterior only (this command runs the fitted point)"
        )
    return params


def optional_posterior_value(argv: list[str]) -> list[str]:
    """``--posterior`` takes an optional FILE: written without one (last, or before another
    option or a TOML file), it is read as ``--posterior=`` (the default posterior file)."""
    out = list(argv)
    for i, token in enumerate(out):
        if token == "--posterior":
            nxt = out[i + 1] if i + 1 < len(out) else None
            if nxt is None or nxt.startswith("-") or nxt.endswith(".toml"):
                out[i] = "--posterior="
    return out
