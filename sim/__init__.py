"""escalation-sim: militia attacks on US forces and the US retaliation cycles they provoke.

Python API::

    import sim
    scenario = sim.load_scenario("scenarios/baseline.toml", overrides=["command.policy=never"])
    summary, events = sim.run(scenario, reps=200, seed=1)
"""

__version__ = "0.1.0"

from sim.replication import Replication, run_replication  # noqa: E402
from sim.runner import RunResult, run  # noqa: E402
from sim.scenario import Scenario, ScenarioError, load_scenario  # noqa: E402

__all__ = [
    "Replication",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "__version__",
    "load_scenario",
    "run",
    "run_replication",
]
