"""The lab's web server: one page and a few JSON and download routes over :class:`sim.lab.engine.Lab`
(Starlette, served by uvicorn).

Routes (every one reads the lab's state from the query string, :class:`sim.lab.state.LabState`):

* ``/``: the page; ``/api/controls``: the controls, presets and documented record;
* ``/api/story``: replication 0 of policy A, narrated, with its timeline;
* ``/api/run``: both policies on the same seeds (400 with ``{"error": line}`` for a bad value, 429
  while another run is going, 503 for a run past the time limit);
* ``/api/scenario?side=a|b``: that side as a scenario file; ``/api/report``: the HTML report.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sim.lab.engine import Lab, LabBusy, LabTooSlow, story
from sim.lab.state import LabError, LabState

PAGE = Path(__file__).with_name("page.html")


def create_app(lab: Lab) -> Starlette:
    """The Starlette application serving ``lab``."""

    def state_of(request: Request) -> LabState:
        query = {k: v for k, v in request.query_params.items() if k != "side"}
        return LabState.from_query(query, lab.presets)

    def error(exc: Exception) -> JSONResponse:
        status = 429 if isinstance(exc, LabBusy) else 503 if isinstance(exc, LabTooSlow) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def controls(request: Request) -> Response:
        return JSONResponse(lab.controls())

    async def story_route(request: Request) -> Response:
        try:
            state = state_of(request)
            scenario = lab.scenarios(state)[0]
        except LabError as exc:
            return error(exc)
        return JSONResponse(await run_in_threadpool(story, scenario, state.seed))

    async def run(request: Request) -> Response:
        try:
            state = state_of(request)
            return JSONResponse(await run_in_threadpool(lab.run, state))
        except (LabError, LabBusy) as exc:
            return error(exc)

    async def scenario(request: Request) -> Response:
        side = request.query_params.get("side", "a")
        if side not in ("a", "b"):
            return error(LabError(f"url: side: '{side}' is not a or b"))
        try:
            text = lab.export_scenario(state_of(request), side)
        except LabError as exc:
            return error(exc)
        name = f"lab_{side}.toml"
        return Response(
            text,
            media_type="application/toml",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def report(request: Request) -> Response:
        try:
            state = state_of(request)
            with tempfile.TemporaryDirectory(prefix="esim-lab-") as tmp:
                path = await run_in_threadpool(lab.export_report, state, Path(tmp))
                html = path.read_text(encoding="utf-8")
        except (LabError, LabBusy) as exc:
            return error(exc)
        return HTMLResponse(html, headers={"Content-Disposition": 'attachment; filename="lab_report.html"'})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the worker processes live as long as the server: started before the first request,
        # shut down when the server stops (uvicorn ends the process by re-raising Ctrl-C or
        # SIGTERM after this, so a ``finally`` around uvicorn.run would not run)
        await run_in_threadpool(lab.start)
        try:
            yield
        finally:
            lab.close()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/", page),
            Route("/api/controls", controls),
            Route("/api/story", story_route),
            Route("/api/run", run),
            Route("/api/scenario", scenario),
            Route("/api/report", report),
        ],
    )


def serve(lab: Lab, host: str = "127.0.0.1", port: int = 8765, on_ready=None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM); the lab's workers start and stop with it.
    ``on_ready()`` is called once the workers run and the socket listens (to print the address)."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)  # the lifespan (workers) first, then the socket
            if self.started and on_ready is not None:
                on_ready()

    config = uvicorn.Config(create_app(lab), host=host, port=port, log_level="warning")
    Server(config).run()
