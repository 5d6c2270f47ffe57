"""``esim lab``: the escalation lab in the browser."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from sim.cli.common import (
    PointOpt,
    PosteriorOpt,
    RepsPerDrawOpt,
    _bad_input,
    _parameters,
    app,
    err_console,
    out_console,
)
from sim.defaults import DEFAULT_REPS_PER_DRAW
from sim.scenario import ScenarioError


@app.command()
def lab(
    scenario: Annotated[
        Path, typer.Option("--scenario", help="scenario file the lab opens", metavar="FILE")
    ] = Path("scenarios/baseline.toml"),
    host: Annotated[
        str, typer.Option("--host", help="address to listen on (127.0.0.1: this machine only)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="port to listen on")] = 8765,
    workers: Annotated[
        int, typer.Option("-w", "--workers", min=1, max=16, help="processes for the runs")
    ] = 2,
    policies: Annotated[
        Path, typer.Option("--policies", help="folder of policy presets", metavar="DIR")
    ] = Path("scenarios/policies"),
    max_seconds: Annotated[
        float, typer.Option("--max-seconds", min=1.0, max=3600.0, help="time limit of one run (seconds)")
    ] = 30.0,
    posterior: PosteriorOpt = None,
    point: PointOpt = False,
    reps_per_draw: RepsPerDrawOpt = DEFAULT_REPS_PER_DRAW,
) -> None:
    """Open the escalation lab: the story, a sandbox of two policies on the same dice, predictions.

    Its comparisons run over the posterior beside the scenario's fitted.toml, as esim compare's do
    (--point: the fitted point); its stories tell the fitted point."""
    from sim.lab.app import serve
    from sim.lab.engine import Lab

    with _bad_input():
        params = _parameters(posterior, point, str(scenario), "default-posterior", reps_per_draw)
        the_lab = Lab(scenario, policies, workers=workers, max_seconds=max_seconds, parameters=params)
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            try:
                probe.bind((host, port))
            except OSError as exc:
                reason = f"cannot listen on {host}:{port} ({exc.strerror})"
                raise ScenarioError("--port", "", reason) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"warning: listening on {host}: anyone who can reach this machine on port {port} can run the lab",
            markup=False,
            highlight=False,
        )

    def ready() -> None:  # printed once the lab answers, not before
        out_console.print(
            f"escalation lab on http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/ "
            f"(scenario {scenario}, {workers} worker{'s' if workers > 1 else ''}; {params.label()}); "
            "Ctrl-C ends it",
            markup=False,
            highlight=False,
        )

    serve(the_lab, host, port, on_ready=ready)
