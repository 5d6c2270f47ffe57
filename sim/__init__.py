"""escalation-sim: militia attacks on US forces and the US retaliation cycles they provoke.

Python API::

    import sim
    scenario = sim.load_scenario("scenarios/baseline.toml", overrides=["command.policy=never"])
    summary, events = sim.run(scenario, reps=200, seed=1)

    sweep = sim.load_sweep("scenarios/sweeps/bomber_lag.toml")
    sim.run_sweep(sweep, "results/bomber_lag", sim.Backend(workers=2))   # under __main__ guard

The names are imported on first use (PEP 562): a worker process that runs replications imports the
model and numpy, not pandas, pyarrow or the command line (``import sim`` alone costs nothing).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from sim.version import __version__

if TYPE_CHECKING:
    from sim.backends import Backend
    from sim.replication import Replication, run_replication
    from sim.runner import RunResult, run
    from sim.scenario import Scenario, ScenarioError, load_scenario
    from sim.sweep import load_sweep, run_sweep

#: where each public name lives
_HOMES = {
    "Backend": "sim.backends",
    "Replication": "sim.replication",
    "RunResult": "sim.runner",
    "Scenario": "sim.scenario",
    "ScenarioError": "sim.scenario",
    "load_scenario": "sim.scenario",
    "load_sweep": "sim.sweep",
    "run": "sim.runner",
    "run_replication": "sim.replication",
    "run_sweep": "sim.sweep",
}

__all__ = [
    "Backend",
    "Replication",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "__version__",
    "load_scenario",
    "load_sweep",
    "run",
    "run_replication",
    "run_sweep",
]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
