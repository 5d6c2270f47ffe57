"""Baseline replications per second on one core, and the model's SimPy events per second as a ratio
of raw SimPy timeouts per second, both measured in this process.

    python benchmarks/bench_run.py [--reps 1000] [--repeat 3] [--scenario scenarios/baseline.toml]

* raw SimPy: one process yielding ``env.timeout(1.0)`` in a loop: SimPy's own cost per event;
* model: ``run_replication`` (model and metrics, no DataFrames) over replications 0..reps-1;
  model events are the SimPy events those replications schedule plus the attack candidates and
  bound changes the militia evaluates without a SimPy timeout when no other event can come first
  (each was one SimPy timeout before that lookahead; counted in a separate, untimed pass);
* end to end: ``sim.run`` with the event DataFrame, as ``esim run`` does before writing Parquet.

Each figure is the median of ``--repeat`` runs, measured in turn in the same process.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402
from sim.model.world import World  # noqa: E402
from sim.replication import run_replication  # noqa: E402


def raw_simpy_timeouts_per_second(n: int = 300_000) -> float:
    env = simpy.Environment()

    def ticker():
        for _ in range(n):
            yield env.timeout(1.0)

    env.process(ticker())
    started = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - started)


def replications_per_second(scenario, reps: int, seed: int) -> float:
    started = time.perf_counter()
    for rep in range(reps):
        run_replication(scenario, seed, rep)
    return reps / (time.perf_counter() - started)


def end_to_end_per_second(scenario, reps: int, seed: int) -> float:
    started = time.perf_counter()
    sim.run(scenario, reps=reps, seed=seed)
    return reps / (time.perf_counter() - started)


def model_events(scenario, reps: int, seed: int) -> tuple[int, int, int]:
    """Model events, SimPy events and event-log rows of replications 0..reps-1."""
    events = simpy_events = rows = 0
    for rep in range(reps):
        world = World(scenario, seed, rep)
        rows += len(world.run())
        events += world.model_events
        simpy_events += world.simpy_events
    return events, simpy_events, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/baseline.toml")
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20231017)
    args = ap.parse_args()

    scenario = sim.load_scenario(args.scenario)
    run_replication(scenario, args.seed, 0)  # warm the tables and imports
    raw, model, e2e = [], [], []
    for _ in range(args.repeat):
        raw.append(raw_simpy_timeouts_per_second())
        model.append(replications_per_second(scenario, args.reps, args.seed))
        e2e.append(end_to_end_per_second(scenario, min(args.reps, 500), args.seed))
    raw_rate = statistics.median(raw)
    reps_rate = statistics.median(model)
    e2e_rate = statistics.median(e2e)
    events, simpy_events, rows = model_events(scenario, args.reps, args.seed)
    events_rate = events / args.reps * reps_rate
    print(
        f"python {platform.python_version()}, simpy {simpy.__version__}, {platform.machine()}, "
        f"scenario {scenario.meta.name}, {args.reps} replications, median of {args.repeat}"
    )
    print(f"raw SimPy timeouts per second:          {raw_rate:12,.0f}")
    print(f"replications per second (one core):     {reps_rate:12,.0f}   (baseline target >= 500)")
    print(f"  model events per replication:         {events / args.reps:12,.1f}")
    print(f"    of which SimPy events:              {simpy_events / args.reps:12,.1f}")
    print(f"  event-log rows per replication:       {rows / args.reps:12,.1f}")
    print(f"model events per second:                {events_rate:12,.0f}")
    print(f"ratio model events/s : raw timeouts/s:  {events_rate / raw_rate:12.3f}   (target >= 0.5)")
    print(f"end to end with event frame, reps/s:    {e2e_rate:12,.0f}")


if __name__ == "__main__":
    main()
