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
    PointOpt,
    PosteriorOpt,
    RepsOpt,
    RepsPerDrawOpt,
    ScenarioArg,
    SeedOpt,
    SetOpt,
    _bad_input,
    _fits,
    _parameters,
    _shown,
    _writable,
    app,
    err_console,
    out_console,
)
from sim.defaults import DEFAULT_REPS_PER_DRAW, DEFAULT_SEED
from sim.metrics import format_number
from sim.scenario import ScenarioError, load_scenario


def _to_parquet(frame, path: Path) -> None:
    frame.to_parquet(path, index=False)


@app.command()
def calibrate(
    ctx: typer.Context,
    priors: Annotated[
        Path, typer.Option("--priors", help="priors file; it names the targets, which name the scenario")
    ] = Path("calibration/priors.toml"),
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="folder for posterior.parquet, fitted.toml, iterations.csv (generations.csv and "
            "abc.db with --method abc-smc) and the work folder .pmc/",
        ),
    ] = Path("calibration"),
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="'pmc': population Monte Carlo with a replicated ABC kernel (the default); "
            "'abc-smc': pyabc's ABC-SMC with one replication a particle and a resample-move",
        ),
    ] = "pmc",
    budget: Annotated[
        int | None,
        typer.Option("--budget", min=1, help="simulations in all [default: 240,000; abc-smc 150,000]"),
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", min=0.05, help="wall time [default: 14; abc-smc 9]")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="processes")] = 2,
    seed: SeedOpt = 20240202,
    draws: Annotated[
        int, typer.Option("--draws", min=50, help="pmc: parameter vectors an adaptive iteration")
    ] = 2000,
    final_reps: Annotated[
        int,
        typer.Option("--final-reps", min=1, max=1000, help="pmc: replications a draw in the last iteration"),
    ] = 8,
    ess: Annotated[
        int,
        typer.Option(
            "--ess", min=10, help="pmc: the last epsilon is the smallest whose Kish ESS reaches this"
        ),
    ] = 400,
    epsilon: Annotated[
        float | None,
        typer.Option("--epsilon", min=1e-6, help="pmc: a fixed last epsilon instead (tolerances)"),
    ] = None,
    population: Annotated[int, typer.Option("--population", min=10, help="abc-smc: particles")] = 500,
    min_epsilon: Annotated[
        float, typer.Option("--min-epsilon", min=0.0, help="abc-smc: stop at this distance threshold")
    ] = 0.0,
    min_acceptance: Annotated[
        float,
        typer.Option("--min-acceptance", min=0.0, max=1.0, help="abc-smc: stop below this acceptance rate"),
    ] = 0.01,
    transition: Annotated[
        str,
        typer.Option(
            "--transition",
            help="abc-smc: proposal kernel 'normal' (one covariance) or 'local' (per particle, from its "
            "nearest neighbours)",
        ),
    ] = "normal",
    move_steps: Annotated[
        int,
        typer.Option(
            "--move-steps",
            min=0,
            max=1000,
            help="abc-smc: ABC-MCMC steps that rejuvenate the last population (resample-move; 0: none)",
        ),
    ] = 20,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the calibration in OUT (its work folder or abc.db)")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no per-iteration log")] = False,
) -> None:
    """Fit the free parameters to the documented record; write the posterior and its story point."""
    from sim.calibrate import setup

    with _bad_input():
        s = setup(priors)
        if method not in ("pmc", "abc-smc"):
            raise ScenarioError("--method", "", f"'{method}' is not 'pmc' or 'abc-smc'")
        if transition not in ("normal", "local"):
            raise ScenarioError("--transition", "", f"'{transition}' is not 'normal' or 'local'")
        _only_for_method(ctx, method)
        if method == "pmc" and resume and not (Path(out) / ".pmc" / "inputs.json").is_file():
            raise ScenarioError(Path(out) / ".pmc", "--resume", "no calibration to resume")
        _writable(out)
    if method == "abc-smc":
        _calibrate_smc(
            s,
            out,
            budget or 150_000,
            max_minutes or 9.0,
            workers,
            population,
            min_epsilon,
            min_acceptance,
            seed,
            transition,
            move_steps,
            resume,
            quiet,
        )
        return
    from sim.calibrate.fit import run_fit
    from sim.calibrate.pmc import PMCSettings
    from sim.calibrate.pmc import ResumeError as PMCResumeError

    settings = PMCSettings(
        budget=budget or 240_000,
        max_minutes=max_minutes or 14.0,
        workers=workers,
        seed=seed,
        draws=draws,
        final_reps=final_reps,
        ess=ess,
        epsilon=epsilon,
    )
    with _bad_input():
        problem = settings.check()
        if problem:
            raise ScenarioError("--budget", "", problem)
    if not quiet:
        _print_calibrating(s, "population Monte Carlo", workers, settings.budget, settings.max_minutes, seed)
        out_console.print(
            f"{'iter':>4} {'draws':>7} {'reps':>5} {'epsilon':>8} {'ESS':>7} {'seconds':>8} "
            f"{'total sims':>11}",
            highlight=False,
        )

    def log(it) -> None:
        if not quiet:
            out_console.print(
                f"{it.t:>4} {it.draws:>7,} {it.reps:>5} {it.epsilon:>8.3f} {it.ess:>7.0f} "
                f"{it.seconds:>8.1f} {it.total_simulations:>11,}" + ("  (last)" if it.final else ""),
                highlight=False,
            )

    with _bad_input():
        try:
            fit = run_fit(s, settings, out, resume=resume, on_iteration=log)
        except PMCResumeError as exc:
            raise ScenarioError(out / ".pmc", "--resume", str(exc).split(": ", 1)[-1]) from None
    run = fit.run
    out_console.print(
        f"stopped: {run.stopped}; {run.simulations:,} simulations, {fit.seconds:.0f} s; the posterior: "
        f"{len(fit.weights):,} weighted draws at epsilon {run.epsilon:.3f}, Kish ESS "
        f"{1.0 / float((fit.weights**2).sum()):,.0f}",
        highlight=False,
        soft_wrap=True,
    )
    _print_informed(fit.table, fit.values[fit.story], fit.pairs)
    out_console.print(
        f"story point (fitted.toml): {fit.story_how}", highlight=False, soft_wrap=True, markup=False
    )
    _wrote(out, s, fit.overridden, "iterations.csv")


def _wrote(out: Path, s, overridden: list[str], log: str) -> None:
    """What a calibration wrote, what to run next, and the fitted keys the scenario overrides."""
    from sim.scenario.loader import extends_chain

    scenario = _shown(s.scenario_file)
    shipped = any(
        f.resolve() == (Path(out) / "fitted.toml").resolve() for f in extends_chain(s.scenario_file)
    )
    nxt = (
        f"esim check {scenario}"
        if shipped  # the scenario extends the fitted file just written
        else f"esim check {scenario} --posterior {out}/posterior.parquet (the scenario extends another "
        f"fitted file: its story point is not this calibration's)"
    )
    out_console.print(
        f"wrote {out}/posterior.parquet, {out}/fitted.toml, {out}/{log}; next: {nxt}",
        highlight=False,
        soft_wrap=True,
    )
    for key in overridden:
        err_console.print(
            f"warning: {s.scenario_file} sets {key} itself, so the fitted value is not used",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _print_informed(table, story, pairs) -> None:
    """What the record informs: per parameter, the story point, posterior median and 90% interval,
    the interval's share of the prior's width; then the correlated pairs."""
    from sim.calibrate.identification import CORRELATED, NOT_INFORMED

    t = Table(title="posterior: what the record informs", title_justify="left")
    t.add_column("parameter", no_wrap=True)
    for col in ("story", "median", "90% interval", "width"):
        t.add_column(col, justify="right", no_wrap=True)
    for row, value in zip(table, story, strict=True):
        t.add_row(
            row.name,
            f"{value:.3g}",
            f"{row.median:.3g}",
            f"{row.p5:.3g} - {row.p95:.3g}",
            f"{row.width_share:.2f}" + ("" if row.informed else " *"),
        )
    out_console.print(t)
    loose = [r.name for r in table if not r.informed]
    out_console.print(
        f"story: the story point; width: the 90% interval's share of the prior's width "
        f"(priors: calibration/priors.toml); * not informed (at least {NOT_INFORMED:.0%}): "
        f"{', '.join(loose) or 'none'}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    if pairs:
        out_console.print(
            f"correlated (|r| > {CORRELATED:g}, on the priors' scales): "
            + "; ".join(f"{a} and {b} {r:+.2f}" for a, b, r in pairs),
            highlight=False,
            soft_wrap=True,
        )


def _calibrate_smc(
    s,
    out,
    budget,
    max_minutes,
    workers,
    population,
    min_epsilon,
    min_acceptance,
    seed,
    transition,
    move_steps,
    resume,
    quiet,
) -> None:
    """``esim calibrate --method abc-smc``: pyabc's ABC-SMC, kept to measure against."""
    from sim.calibrate import Settings, run_calibration
    from sim.calibrate.smc import CalibrationError, ResumeError

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
        _print_calibrating(s, "ABC-SMC", workers, budget, max_minutes, seed)
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
            raise ScenarioError(s.priors_file, "--population", str(exc)) from None
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
    _wrote(out, s, result.overridden, "generations.csv")


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
    posterior: PosteriorOpt = None,
    point: PointOpt = False,
    reps_per_draw: RepsPerDrawOpt = DEFAULT_REPS_PER_DRAW,
    single_draws: Annotated[
        int,
        typer.Option(
            "--single-draws",
            min=0,
            max=1000,
            metavar="K",
            help="over a posterior: also check K single draws, each on --reps replications of its "
            "own, and print how many pass (a diagnostic)",
        ),
    ] = 0,
) -> None:
    """Predictive check: each documented count against the simulated median and 90% interval.

    Judges the posterior predictive (the draws of the posterior beside the scenario's
    fitted.toml, pooled) by default; --point judges the fitted point alone.

    Exit code 0 when every target passes, 1 when one fails, 2 on bad input.
    """
    from sim.calibrate import find_targets_file, load_targets, predictive_check, verify_outputs
    from sim.posterior import batch_draws, keys_to_draw
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
        params = _parameters(posterior, point, scenario, "default-posterior", reps_per_draw)
        keys = keys_to_draw(params, sc, scenario, set_ or [])
        if single_draws and params.is_point:
            raise ScenarioError(
                "--single-draws", "", "checks draws of a posterior (this check runs the fitted point)"
            )
        if out is not None:
            _writable(out)
    draws = batch_draws(params, keys, seed, 0, reps)
    result = predictive_check(sc, tf, reps=reps, seed=seed, folder=Path(tfile).parent, draws=draws)
    _print_check(result, sc, reps, seed, Path(tfile), params.label(reps))
    singles = None
    if single_draws and draws is not None:
        from sim.calibrate.check import single_draws as check_single_draws

        groups = batch_draws(params, keys, seed, 0, single_draws * params.reps_per_draw)
        assert groups is not None
        singles = check_single_draws(sc, tf, groups, single_draws, reps, seed, Path(tfile).parent)
        _print_single_draws(singles)
    if out is not None:
        from sim.export import check_tables
        from sim.store import atomic_write, manifest

        for name, frame in check_tables(result).items():
            atomic_write(out / f"{name}.parquet", partial(_to_parquet, frame))
        info = manifest(
            sc,
            scenario,
            seed,
            reps,
            0.0,
            argv=sys.argv[1:],
            overrides=set_ or [],
            parameters=params,
            keys_drawn=keys,
        )
        info["targets_file"] = str(tfile)
        if singles is not None:
            info["single_draws"] = {
                "draws": singles.draws,
                "reps_each": singles.reps,
                "passed": singles.passed,
                "failed": singles.failed,
            }
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


def _print_single_draws(singles) -> None:
    """How many single posterior draws pass the check, and what fails most often."""
    from collections import Counter

    counts = Counter(name for failed in singles.failed for name in failed)
    common = ", ".join(f"{name} ({n})" for name, n in counts.most_common(4))
    out_console.print(
        f"single draws: {singles.passed} of {len(singles.draws)} pass on {singles.reps} replications "
        f"each ({_share(singles.share)}; a diagnostic: a draw at the edge of an honest posterior may "
        f"fail{'; below a half says the summaries or the model need work' if singles.share < 0.5 else ''})"
        + (f"; failed most: {common}" if common else ""),
        highlight=False,
        soft_wrap=True,
    )


#: Options that apply to one method only: given with the other, they are refused, not ignored.
METHOD_OPTIONS = {
    "pmc": ("draws", "final_reps", "ess", "epsilon"),
    "abc-smc": ("population", "min_epsilon", "min_acceptance", "transition", "move_steps"),
}


def _only_for_method(ctx: typer.Context, method: str) -> None:
    """Refuse an option of the other method that the command line gave."""
    other = "abc-smc" if method == "pmc" else "pmc"
    for name in METHOD_OPTIONS[other]:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE":  # typer may bring its own click
            raise ScenarioError(
                f"--{name.replace('_', '-')}",
                "",
                f"applies to --method {other} only (this calibration runs --method {method})",
            )


def _print_calibrating(s, method: str, workers: int, budget: int, minutes: float, seed: int) -> None:
    """The calibration's first line: what is fitted to what, by which method, with what."""
    n = len(s.priors.parameters)
    targets = sum(t.calibrate and t.kind != "input" for t in s.targets.targets.values())
    out_console.print(
        f"calibrating {n} parameter{'s' if n > 1 else ''} of '{s.scenario.meta.name}' to {targets} "
        f"targets and {len(s.targets.series)} dated series ({s.targets_file.name}) by {method}; "
        f"{workers} worker{'s' if workers > 1 else ''}, budget {budget:,} simulations, "
        f"{minutes:g} min, seed {seed}",
        highlight=False,
        soft_wrap=True,
    )


def _share(x: float) -> str:
    return "-" if x != x else f"{x:.0%}" if x >= 0.01 or x == 0 else f"{x:.1%}"


def _print_check(result, sc, reps: int, seed: int, tfile: Path, parameters: str = "the fitted point") -> None:
    rules = result.rules
    table = Table(
        title=f"{sc.meta.name}: the documented record against {reps} replications "
        f"(seed {seed}; {_shown(tfile.resolve())}; {parameters})",
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
    if _fits(table):
        out_console.print(table)
    else:  # narrower than the table (80 columns, or piped): a block a target, names and verdicts whole
        out_console.print(table.title, highlight=False)
        for r in result.rows:
            verdict = "PASS" if r.passed else f"FAIL {r.why}"
            out_console.print(
                f"{r.name}\n  {verdict}{' (input)' if r.statistic.startswith('input') else ''}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            out_console.print(
                f"  documented {r.documented}; median {format_number(r.median)}, 5-95% "
                f"{format_number(r.p5)} - {format_number(r.p95)}; inside {_share(r.share_inside)}; "
                f"P(>=low) {_share(r.tail_low)}, P(<=high) {_share(r.tail_high)}; "
                f"CRPS {format_number(r.crps)}",
                highlight=False,
                markup=False,
            )
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
        if _fits(st):
            out_console.print(st)
        else:
            out_console.print(st.title, highlight=False)
            for c in result.series:
                verdict = "PASS" if c.passed else f"FAIL {c.why}"
                out_console.print(
                    f"series {c.name}\n  {verdict}", highlight=False, markup=False, soft_wrap=True
                )
                out_console.print(
                    f"  points in 5-95%: {c.covered} of {c.points}; band width / value "
                    f"{c.relative_width:.2f}; CRPS model {c.model.cumulative:.2f}, constant rate "
                    f"{c.constant.cumulative:.2f}, persistence {c.persistence.cumulative:.2f}; increments: "
                    f"model {c.model.increments:.2f}, constant {c.constant.increments:.2f}, persistence "
                    f"{c.persistence.increments:.2f}; energy: model {c.energy_model:.1f}, constant "
                    f"{c.energy_constant:.1f}; whole path in tolerance {_share(c.path_share)}",
                    highlight=False,
                    markup=False,
                )
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
