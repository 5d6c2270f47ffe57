"""The ``esim`` command line: parse, call the library, print. Nothing else lives here.

One module per group of commands (:mod:`sim.cli.runs`, :mod:`sim.cli.calibration`,
:mod:`sim.cli.sweeps`, :mod:`sim.cli.reports`, :mod:`sim.cli.lab`), each registering its commands
on the one app of :mod:`sim.cli.common`.

The groups are imported when the app is first needed, not when this package is: a worker process
that a command spawns imports the ``esim`` script again (multiprocessing's "spawn" runs the parent's
main module), and that import must not pull in the command line, pandas and the reports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

__all__ = ["app", "main"]

#: the command groups, in the order of ``esim --help``
GROUPS = ("runs", "calibration", "sweeps", "reports", "lab")


def _app() -> typer.Typer:
    for group in GROUPS:
        importlib.import_module(f"sim.cli.{group}")
    from sim.cli.common import app

    return app


def __getattr__(name: str):
    if name == "app":
        return _app()
    raise AttributeError(f"module 'sim.cli' has no attribute {name!r}")


def main() -> None:
    import sys

    from sim.cli.common import optional_posterior_value

    _app()(args=optional_posterior_value(sys.argv[1:]))
