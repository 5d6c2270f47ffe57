"""The SimPy model. No file I/O, no CLI and no parallelism in here."""

from sim.model.events import COLUMNS, Rung
from sim.model.world import World

__all__ = ["COLUMNS", "Rung", "World"]
