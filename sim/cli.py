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
RepsOpt = Annotated[int, typer.Option("--reps", "-n", min=1, help="replications")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="root seed")]
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


def _shown(path: Path) -> Path:
    """A path relative to the working folder where it lies under it."""
    cwd = Path.cwd()
    return path.relative_to(cwd) if path.is_relative_to(cwd) else path


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
    reps: RepsOpt = 200,
    seed: SeedOpt = 20231017,
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


@app.command()
def calibrate(
    priors: Annotated[Path, typer.Option("--priors", help="priors file; it names the targets, "
                                         "which name the scenario")] = Path("calibration/priors.toml"),
    out: Annotated[Path, typer.Option("--out", help="folder for posterior.parquet, fitted.toml, "
                                      "generations.csv and the pyabc history abc.db")] = Path("calibration"),
    budget: Annotated[int, typer.Option("--budget", min=1, help="simulations in all")] = 150_000,
    max_minutes: Annotated[float, typer.Option("--max-minutes", min=0.05, help="wall time")] = 9.0,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="processes")] = 2,
    population: Annotated[int, typer.Option("--population", min=10, help="particles")] = 500,
    min_epsilon: Annotated[float, typer.Option("--min-epsilon", min=0.0, help="stop at this "
                                               "distance threshold")] = 0.0,
    min_acceptance: Annotated[float, typer.Option("--min-acceptance", min=0.0, max=1.0,
                                                  help="stop below this acceptance rate")] = 0.01,
    seed: SeedOpt = 20240202,
    resume: Annotated[bool, typer.Option("--resume", help="continue the last run in OUT/abc.db")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no per-generation log")] = False,
) -> None:
    """Fit the free parameters to the documented record with ABC-SMC (pyabc)."""
    from sim.calibrate import Settings, run_calibration, setup

    with _bad_input():
        s = setup(priors)
        try:
            check_writable(out)
        except OSError as exc:
            raise ScenarioError(out, "--out", f"cannot write here ({exc.strerror})") from None
    settings = Settings(population=population, budget=budget, max_minutes=max_minutes,
                        min_epsilon=min_epsilon, min_acceptance=min_acceptance, workers=workers,
                        seed=seed)
    if not quiet:
        out_console.print(
            f"calibrating {len(s.priors.parameters)} parameter{'s' if len(s.priors.parameters) > 1 else ''}"
            f" of '{s.scenario.meta.name}' to "
            f"{sum(t.calibrate and t.kind != 'input' for t in s.targets.targets.values())} targets "
            f"({s.targets_file.name}); {workers} worker{'s' if workers > 1 else ''}, budget "
            f"{budget:,} simulations, {max_minutes:g} min", highlight=False)
        out_console.print(f"{'gen':>3} {'epsilon':>9} {'accepted':>9} {'sims':>8} {'accept':>7} "
                          f"{'ESS':>6} {'seconds':>8} {'total sims':>11}", highlight=False)

    def log(g) -> None:
        if not quiet:
            out_console.print(f"{g.t:>3} {g.epsilon:>9.3f} {g.accepted:>9} {g.simulations:>8} "
                              f"{g.acceptance_rate:>7.3f} {g.ess:>6.0f} {g.seconds:>8.1f} "
                              f"{g.total_simulations:>11,}", highlight=False)

    with _bad_input():
        try:
            result = run_calibration(s, settings, out, resume=resume, on_generation=log)
        except (FileNotFoundError, ValueError) as exc:
            raise ScenarioError(out / "abc.db", "--resume", str(exc).split(": ", 1)[-1]) from None
    abandoned = (f", and {result.abandoned_simulations:,} in an abandoned generation"
                 if result.abandoned_simulations else "")
    out_console.print(f"stopped: {result.stopped}; {result.simulations:,} simulations{abandoned}; "
                      f"{result.seconds:.0f} s", highlight=False, soft_wrap=True)
    table = Table(title="posterior: the fitted point, the weighted median and 90% interval",
                  title_justify="left")
    table.add_column("parameter", no_wrap=True)
    for col in ("fitted", "median", "5%", "95%"):
        table.add_column(col, justify="right")
    table.add_column("prior")
    for name, row in result.summary.iterrows():
        table.add_row(str(name), f"{row['fitted']:.4g}", f"{row['median']:.4g}", f"{row['p5']:.4g}",
                      f"{row['p95']:.4g}", f"{row['prior']}({row['prior_low']:g}, {row['prior_high']:g})")
    out_console.print(table)
    out_console.print(f"wrote {out}/posterior.parquet, {out}/fitted.toml, {out}/generations.csv; "
                      f"next: esim check {_shown(s.scenario_file)}", highlight=False, soft_wrap=True)
    for key in result.overridden:
        err_console.print(f"warning: {s.scenario_file} sets {key} itself, so the fitted value is "
                          "not used", markup=False, highlight=False, soft_wrap=True)


@app.command()
def check(
    scenario: ScenarioArg,
    reps: RepsOpt = 300,
    seed: SeedOpt = 20231017,
    targets: Annotated[Path | None, typer.Option("--targets", help="targets file [default: the "
                                                 "one in calibration/ that names SCENARIO]")] = None,
    set_: SetOpt = None,
) -> None:
    """Predictive check: each documented count against the simulated median and 90% interval.

    Exit code 0 when every target passes, 1 when one fails, 2 on bad input.
    """
    from sim.calibrate import find_targets_file, load_targets, predictive_check

    with _bad_input():
        sc = load_scenario(scenario, set_ or [])
        tfile = targets if targets is not None else find_targets_file(scenario)
        if tfile is None:
            raise ScenarioError(scenario, "--targets", "no targets file in calibration/ names this "
                                "scenario; pass --targets FILE")
        tf = load_targets(tfile)
    result = predictive_check(sc, tf, reps=reps, seed=seed)
    table = Table(title=f"{sc.meta.name}: the documented record against {reps} replications "
                        f"(seed {seed}; {_shown(Path(tfile).resolve())})", title_justify="left")
    table.add_column("target", no_wrap=True)
    table.add_column("documented")
    for col in ("median", "5%", "95%", "inside", "missing"):
        table.add_column(col, justify="right")
    table.add_column("result", no_wrap=True)
    for r in result.rows:
        inside = "-" if r.share_inside != r.share_inside else f"{r.share_inside:.0%}"
        status = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
        if r.statistic.startswith("input"):
            status += " input"
        table.add_row(r.name, r.documented, _fmt(r.median), _fmt(r.p5), _fmt(r.p95), inside,
                      str(r.missing) if r.missing else "", status)
    out_console.print(table)
    out_console.print("PASS: the documented set meets the simulated 5-95% interval of the "
                      "replications that have the statistic, and at most half lack it ('missing': "
                      "no strike after the trigger, no package); 'inside': share of replications "
                      "inside the documented set.", highlight=False, soft_wrap=True)
    for note in result.notes:
        out_console.print(f"note: {note}", highlight=False, soft_wrap=True)
    failed = [r.name for r in result.rows if not r.passed]
    if failed:
        out_console.print(f"[red]{len(failed)} of {len(result.rows)} targets fail[/red]: "
                          f"{', '.join(failed)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out_console.print(f"[green]all {len(result.rows)} targets pass[/green]", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
