"""``esim run`` and ``esim validate``."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from sim.cli.common import (
    PointOpt,
    PosteriorOpt,
    RepsOpt,
    RepsPerDrawOpt,
    ScenarioArg,
    SeedOpt,
    SetOpt,
    _bad_input,
    _disk_bounded,
    _folder_ready,
    _LazyProgress,
    _parameters,
    _reps_bounded,
    _summary_table,
    app,
    err_console,
    out_console,
)
from sim.defaults import DEFAULT_REPS, DEFAULT_REPS_PER_DRAW, DEFAULT_SEED
from sim.scenario import ScenarioError, load_scenario, scenario_hash


@app.command()
def run(
    scenario: ScenarioArg,
    reps: RepsOpt = DEFAULT_REPS,
    seed: SeedOpt = DEFAULT_SEED,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="result folder [default: "
            "results/<file name>, and with --set "
            "results/<file name>+<key>=<value>...; over a posterior, results/<file name>+posterior...]",
        ),
    ] = None,
    set_: SetOpt = None,
    posterior: PosteriorOpt = None,
    point: PointOpt = False,
    reps_per_draw: RepsPerDrawOpt = DEFAULT_REPS_PER_DRAW,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Run replications of a scenario; write summary, events, resolved scenario and manifest.

    Runs the fitted point unless --posterior is given: then replications run a posterior's draws,
    R replications a draw."""
    from sim.posterior import batch_draws, keys_to_draw

    with _bad_input():
        sc = load_scenario(scenario, set_ or [])
        params = _parameters(posterior, point, scenario, "point", reps_per_draw)
        keys = keys_to_draw(params, sc, scenario, set_ or [])
        _reps_bounded(reps, events=False)  # the events go to disk a chunk at a time
        # pandas and the store once the input is known good: a bad input is told at once
        from sim import runner
        from sim.store import default_run_folder, manifest, run_label, write_run

        out_dir = out if out is not None else default_run_folder(scenario, set_ or [], not params.is_point)
        _folder_ready(out_dir)
        _disk_bounded(out_dir, reps)
    from sim.scenario.sources import scenario_sources

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
    progress = _LazyProgress(quiet, f"{sc.meta.name}")
    started = time.perf_counter()

    def timed(chunks):
        yield from chunks
        info["wall_seconds"] = round(time.perf_counter() - started, 3)

    with _bad_input():
        try:
            summary = write_run(
                out_dir,
                timed(
                    runner.run_chunks(
                        sc, reps, seed, progress, draws=lambda a, b: batch_draws(params, keys, seed, a, b)
                    )
                ),
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
