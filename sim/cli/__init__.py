"""The ``esim`` command line: parse, call the library, print. Nothing else lives here.

One module per group of commands (:mod:`sim.cli.runs`, :mod:`sim.cli.calibration`,
:mod:`sim.cli.sweeps`, :mod:`sim.cli.reports`, :mod:`sim.cli.lab`), each registering its commands
on the one app of :mod:`sim.cli.common`.
"""

import importlib

from sim.cli.common import app

__all__ = ["app", "main"]

for _group in ("runs", "calibration", "sweeps", "reports", "lab"):  # the order of ``esim --help``
    importlib.import_module(f"sim.cli.{_group}")


def main() -> None:
    app()
