"""The SimPy model. No file I/O, no CLI and no parallelism in here.

``World`` is imported on first use (PEP 562): reading the event vocabulary
(:mod:`sim.model.events`) does not load SimPy, scipy and the components.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.model.events import COLUMNS, Rung

if TYPE_CHECKING:
    from sim.model.world import World

__all__ = ["COLUMNS", "Rung", "World"]


def __getattr__(name: str):
    if name == "World":
        from sim.model.world import World

        return World
    raise AttributeError(f"module 'sim.model' has no attribute {name!r}")
