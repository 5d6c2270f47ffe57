"""Where a baseline replication spends its time: shares by function and by module, and the fixed cost
of setting up a replication, all measured in this process.

    python benchmarks/bench_profile.py [--reps 400] [--top 15] [--scenario scenarios/baseline.toml]

* **by function**: cProfile's own time (``tottime``) of each function over ``--reps`` replications of
  ``run_replication``, as a share of the profiled total (cProfile's overhead inflates small
  functions alike, so read shares, not microseconds);
* **by module**: the same own times summed per module (``sim.model.militia``, ``simpy``, ``numpy``...);
* **fixed cost**: without the profiler, the mean time to compute a replication's metrics from its
  event rows, and to build a replication's ``World`` (SimPy
  environment, components, the attack table lookups) and to draw one number from each named stream
  (seeding a stream is paid on first use), against the mean time of a whole replication.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # noqa: E402
from sim.metrics import replication_metrics  # noqa: E402
from sim.model.world import World  # noqa: E402
from sim.replication import run_replication  # noqa: E402
from sim.rng import STREAM_IDS, Streams  # noqa: E402


def _module(filename: str) -> str:
    """A profile entry's module, shortened: ``sim.model.militia``, ``simpy``, ``numpy``, ``builtins``."""
    if filename == "~":
        return "builtins"
    path = Path(filename)
    parts = path.with_suffix("").parts
    for root in ("sim", "simpy", "numpy", "scipy", "pandas"):
        if root in parts:
            i = len(parts) - 1 - parts[::-1].index(root)
            return ".".join(parts[i:]) if root == "sim" else root
    return path.stem


def profile_shares(scenario, reps: int, seed: int) -> tuple[list[tuple[str, float]], dict[str, float]]:
    """(function, share of own time) sorted by share, and module -> share."""
    prof = cProfile.Profile()
    prof.enable()
    for rep in range(reps):
        run_replication(scenario, seed, rep)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    functions = []
    modules: dict[str, float] = defaultdict(float)
    for (filename, line, name), (_, _, tottime, _, _) in stats.items():
        module = _module(filename)
        modules[module] += tottime / total
        functions.append(
            (f"{module}:{name}" + (f" (line {line})" if module.startswith("sim") else ""), tottime / total)
        )
    functions.sort(key=lambda x: -x[1])
    return functions, dict(sorted(modules.items(), key=lambda x: -x[1]))


def fixed_costs(scenario, reps: int, seed: int) -> tuple[float, float, float, float]:
    """Mean seconds per replication: building its World, seeding every named stream, the whole run,
    and its metrics from its event rows (the best of 5 passes over the stored rows)."""
    started = time.perf_counter()
    for rep in range(reps):
        World(scenario, seed, rep)
    build = (time.perf_counter() - started) / reps
    started = time.perf_counter()
    for rep in range(reps):
        streams = Streams(seed, rep)
        for name in STREAM_IDS:
            streams[name].random()
    seeding = (time.perf_counter() - started) / reps / len(STREAM_IDS)
    started = time.perf_counter()
    for rep in range(reps):
        run_replication(scenario, seed, rep)
    whole = (time.perf_counter() - started) / reps
    logs = [World(scenario, seed, rep).run().rows for rep in range(reps)]
    passes = []
    for _ in range(5):
        started = time.perf_counter()
        for rows in logs:
            replication_metrics(rows, scenario)
        passes.append((time.perf_counter() - started) / reps)
    return build, seeding, whole, min(passes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/baseline.toml")
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--seed", type=int, default=20231017)
    args = ap.parse_args()
    scenario = sim.load_scenario(args.scenario)
    run_replication(scenario, args.seed, 0)  # warm the tables and imports
    build, seeding, whole, metrics = fixed_costs(scenario, args.reps, args.seed)
    streams_used = sum(1 for name in STREAM_IDS if name in World(scenario, args.seed, 0).streams._made)
    print(f"scenario {scenario.meta.name}, {args.reps} replications of seed {args.seed}")
    print(f"whole replication (no profiler):       {whole * 1e6:9,.0f} us")
    print(f"  building its World:                  {build * 1e6:9,.0f} us  ({build / whole:.1%})")
    print(
        f"  seeding one named stream:            {seeding * 1e6:9,.1f} us  "
        f"(x {len(STREAM_IDS)} names at most; {streams_used} seeded while building)"
    )
    print(f"  its metrics from its event rows:     {metrics * 1e6:9,.0f} us  ({metrics / whole:.1%})")
    functions, modules = profile_shares(scenario, args.reps, args.seed)
    print(f"\nown time by module (cProfile, {args.reps} replications):")
    for module, share in list(modules.items())[: args.top]:
        print(f"  {share:6.1%}  {module}")
    print("\nown time by function:")
    for name, share in functions[: args.top]:
        print(f"  {share:6.1%}  {name}")


if __name__ == "__main__":
    main()
