"""``esim calibrate`` and ``esim check``: the calibration and the predictive check."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sim.cli.common import (
    RepsOpt,
    ScenarioArg,
    SeedOpt,
    SetOpt,
    _bad_input,
    _shown,
    _writable,
    app,
    err_console,
    out_console,
)
from sim.defaults import DEFAULT_SEED
from sim.metrics import format_number
from sim.scenario import ScenarioError, load_scenario


def _to_parquet(frame, path: Path) -> None:
    frame.to_parquet(path, index=False)


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
    move_steps: Annotated[
        int,
        typer.Option(
            "--move-steps",
            min=0,
            max=1000,
            help="ABC-MCMC steps that rejuvenate the last population (resample-move; 0: none)",
        ),
    ] = 20,
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
        move_steps=move_steps,
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
    if result.moves is not None:
        m = result.moves
        out_console.print(
            f"resample-move at epsilon {m.epsilon:.3f}: {m.steps} steps, share of particles moving "
            f"{', '.join(f'{a:.2f}' for a in m.acceptance)}; {m.distinct} distinct particles of "
            f"{len(result.posterior)} (after resampling {m.distinct_before}), equal weights; "
            f"{m.simulations:,} simulations, {m.seconds:.0f} s",
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
    seed: SeedOpt = DEFAULT_SEED,
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
        from sim.store import atomic_write, manifest

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
