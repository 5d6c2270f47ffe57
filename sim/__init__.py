"""escalation-sim: militia attacks on US forces and the US retaliation cycles they provoke.

Python API::

    import sim
    scenario = sim.load_scenario("scenarios/baseline.toml", overrides=["command.policy=never"])
    summary, events = sim.run(scenario, reps=200, seed=1)

    sweep = sim.load_sweep("scenarios/sweeps/bomber_lag.toml")
    sim.run_sweep(sweep, "results/bomber_lag", sim.Backend(workers=2))   # under __main__ guard
"""

from sim.replication import Replication, run_replication  # noqa: E402
from sim.runner import (  # noqa: E402
    Backend,  # noqa: E402
    RunResult,
    run,
)
from sim.scenario import Scenario, ScenarioError, load_scenario  # noqa: E402
from sim.sweep import load_sweep, run_sweep  # noqa: E402
from sim.version import __version__  # noqa: E402

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
