"""A prototype, not part of the package: the `never` policy's replication compiled with Cython and
run without SimPy (``never_kernel.pyx``), against the SimPy model, in one process.

    pip install -e '.[prototypes]'      # Cython: not needed by the project itself
    python benchmarks/prototypes/bench_never_kernel.py [--reps 300] [--rounds 3]
        [--scenario scenarios/policies/never.toml] [--set key.path=value ...]

It answers two questions for the decision that issue 13 leaves to the maintainers (BENCHMARKS.md,
"Issue 13, third session"): can a second, compiled implementation reproduce the SimPy model's event
rows bit for bit (it has to mirror SimPy's queue: time, priority, order of creation, and the entries
that only ``env.peek()`` sees), and how much faster is it? It covers the `never` policy only (the
militia's attacks, their outcomes, later injury reports and the documented attacks); any other
scenario is refused. It mirrors the model of the commit that added it and is not maintained: after
a change to the model it reports the replications that no longer match.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_run import raw_simpy_timeouts_per_second  # noqa: E402

import sim  # noqa: E402
from sim.metrics import replication_metrics  # noqa: E402
from sim.model.world import World  # noqa: E402


def _same(a: list, b: list) -> bool:
    """Row lists equal field for field (NaN equal to NaN)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if u != v and not (isinstance(u, float) and math.isnan(u) and math.isnan(v)):
                return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(ROOT / "scenarios/policies/never.toml"))
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20231017)
    args = ap.parse_args()
    try:
        import pyximport
    except ImportError:
        print("error: this prototype needs Cython: pip install -e '.[prototypes]'", file=sys.stderr)
        sys.exit(2)
    pyximport.install(language_level=3, build_dir=str(HERE / ".build"))
    sys.path.insert(0, str(HERE))
    from never_kernel import Kernel

    s = sim.load_scenario(args.scenario, args.overrides)
    seed, reps = args.seed, args.reps
    try:
        Kernel(s, seed, 0)
    except NotImplementedError as exc:
        print(f"error: {args.scenario}: {exc}", file=sys.stderr)
        sys.exit(2)
    matched = sum(_same(World(s, seed, rep).run().rows, Kernel(s, seed, rep).run()) for rep in range(reps))
    events = 0
    for rep in range(reps):
        w = World(s, seed, rep)
        w.run()
        events += w.model_events
    print(
        f"scenario {s.meta.name}, seed {seed}, replications 0..{reps - 1}: {matched} of {reps} "
        f"give the same event rows; {events / reps:.1f} model events a replication"
    )
    print(
        "round  raw SimPy/s  SimPy model ms  kernel ms  x   | with metrics: SimPy ms  kernel ms  x  "
        " ratio SimPy  ratio kernel"
    )
    for r in range(args.rounds):
        raw = raw_simpy_timeouts_per_second()
        t0 = time.perf_counter()
        for rep in range(reps):
            World(s, seed, rep).run()
        t1 = time.perf_counter()
        for rep in range(reps):
            Kernel(s, seed, rep).run()
        t2 = time.perf_counter()
        for rep in range(reps):
            replication_metrics(World(s, seed, rep).run().rows, s)
        t3 = time.perf_counter()
        for rep in range(reps):
            replication_metrics(Kernel(s, seed, rep).run(), s)
        t4 = time.perf_counter()
        a, b, c, d = ((t1 - t0) / reps, (t2 - t1) / reps, (t3 - t2) / reps, (t4 - t3) / reps)
        per_rep = events / reps
        print(
            f"{r + 1:5d}  {raw:11,.0f}  {1e3 * a:14.3f}  {1e3 * b:9.3f}  {a / b:3.1f} | "
            f"{1e3 * c:21.3f}  {1e3 * d:9.3f}  {c / d:3.1f}  {per_rep / c / raw:11.3f}  "
            f"{per_rep / d / raw:12.3f}"
        )


if __name__ == "__main__":
    main()
