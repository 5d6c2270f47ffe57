"""The ``esim`` command line: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import contextlib
import math
import sys
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

from sim import runner
from sim.metrics import describe
from sim.scenario import ScenarioError, load_scenario, scenario_hash
from sim.store import check_writable, manifest, write_run

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="escalation-sim: militia attacks on US forces and the US retaliation they provoke.",
)
out_console = Console()
err_console = Console(stderr=True)

ScenarioArg = Annotated[str, typer.Argument(help="scenario file (TOML)", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a key: --set militia.branching_ratio=0.3 (repeatable)"),
]


@contextlib.contextmanager
def _bad_input():
    """Bad input ends the command with one line on stderr and exit code 2, no traceback."""
    try:
        yield
    except ScenarioError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


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
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>7,.0f} reps/s"), TimeRemainingColumn(),
                console=err_console, transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total, rate=0.0)
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        if self.task is not None:
            self.bar.update(self.task, completed=done, rate=rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _fmt(x: float) -> str:
    if x != x:  # NaN
        return "-"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.2f}"


def _summary_table(summary, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("5%", justify="right")
    table.add_column("95%", justify="right")
    table.add_column("n", justify="right")
    for name, row in describe(summary).iterrows():
        table.add_row(name, _fmt(row["mean"]), _fmt(row["p5"]), _fmt(row["p95"]), str(int(row["n"])))
    return table


@app.command()
def run(
    scenario: ScenarioArg,
    reps: Annotated[int, typer.Option("--reps", "-n", min=1, help="replications")] = 200,
    seed: Annotated[int, typer.Option("--seed", min=0, help="root seed")] = 20231017,
    out: Annotated[Path | None, typer.Option("--out", help="result folder "
                                             "[default: results/<scenario name>]")] = None,
    set_: SetOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run replications of a scenario; write summary, events, resolved scenario and manifest."""
    with _bad_input():
        sc = load_scenario(scenario, set_ or [])
        out_dir = out if out is not None else Path("results") / Path(scenario).stem
        if out_dir.exists() and not out_dir.is_dir():
            raise ScenarioError(out_dir, "--out", "exists and is not a folder")
        try:
            check_writable(out_dir)
        except OSError as exc:
            raise ScenarioError(out_dir, "--out", f"cannot write here ({exc.strerror})") from None
    progress = _LazyProgress(quiet, f"{sc.meta.name}")
    started = time.perf_counter()
    try:
        result = runner.run(sc, reps=reps, seed=seed, progress=progress)
    finally:
        progress.close()
    wall = time.perf_counter() - started
    info = manifest(sc, scenario, seed, reps, wall, argv=sys.argv[1:])
    try:
        write_run(out_dir, result, sc, info)
    except OSError as exc:
        err_console.print(f"error: {out_dir}: cannot write results ({exc.strerror})",
                          markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    out_console.print(
        f"[bold]{sc.meta.name}[/bold]: {sc.meta.start_date.isoformat()} to "
        f"{sc.meta.end_date.isoformat()}, {reps} replications, seed {seed}, {wall:.1f} s "
        f"({reps / wall if wall else math.inf:,.0f} reps/s)", highlight=False)
    out_console.print(_summary_table(result.summary, "mean and 5-95% interval over replications"))
    out_console.print(f"results in {out_dir}/ (summary.parquet, events.parquet, "
                      f"scenario.resolved.toml, manifest.json)", highlight=False)


@app.command()
def validate(scenario: ScenarioArg, set_: SetOpt = None) -> None:
    """Check a scenario file (extends chain and overrides included) without running it."""
    with _bad_input():
        sc = load_scenario(scenario, set_ or [])
    out_console.print(
        f"ok: {scenario}: scenario '{sc.meta.name}', {sc.meta.start_date.isoformat()} to "
        f"{sc.meta.end_date.isoformat()}, policy {sc.command.policy}, "
        f"sha256 {scenario_hash(sc)[:12]}", highlight=False, soft_wrap=True,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
