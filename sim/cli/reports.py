"""``esim narrate``, ``plot``, ``report`` and ``export``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sim.cli.common import (
    ScenarioArg,
    SeedOpt,
    SetOpt,
    _bad_input,
    _folder_ready,
    _writable,
    app,
    out_console,
)
from sim.defaults import DEFAULT_SEED
from sim.scenario import ScenarioError, load_scenario


@app.command()
def narrate(
    scenario: ScenarioArg,
    seed: SeedOpt = DEFAULT_SEED,
    rep: Annotated[int, typer.Option("--rep", min=0, help="replication")] = 0,
    set_: SetOpt = None,
) -> None:
    """Tell one replication as a dated story: attacks, decisions, B-1B missions, strikes, the ladder."""
    from sim.report.narrate import as_text
    from sim.report.narrate import narrate as tell
    from sim.scenario.sources import uses_fitted

    with _bad_input():
        sc = load_scenario(scenario, set_ or [])
        fitted = uses_fitted(scenario)
    where = f"fitted point: {fitted}" if fitted else "the scenario's own values"
    sys.stdout.write(as_text(tell(sc, seed, rep, parameters=where)))


def _result_folder(folder: Path) -> str:
    """'run' (esim run, compare --out) or 'sweep' (esim sweep, sensitivity); else bad input."""
    from sim.store import SWEEP_MANIFEST

    if not folder.exists():
        raise ScenarioError(folder, "", "no such folder")
    if not folder.is_dir():
        raise ScenarioError(folder, "", "not a folder")
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


ResultFolderArg = Annotated[
    Path,
    typer.Argument(
        help="result folder of esim run, compare --out, sweep or sensitivity",
        show_default=False,
        metavar="DIR",
    ),
]


@app.command()
def plot(
    folder: ResultFolderArg,
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
    folder: ResultFolderArg,
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
