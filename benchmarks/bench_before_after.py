"""The model before and after a change, measured in one process: replications per second, model
events per second as a ratio of raw SimPy timeouts per second, and a check that both trees give
the same event rows.

    python benchmarks/bench_before_after.py [--before REV] [--reps 300] [--rounds 5]
        [--scenario scenarios/baseline.toml ...]

``--before`` is a git revision (default ``05588e5``, the tree before issue 13's speed work). Its
``sim/`` is taken with ``git archive`` into a temporary folder and imported as the package
``sim_before`` (its imports rewritten), so both models run in this process, in turn: round by round,
before then after, the same replications of the same seed. This machine's speed drifts by tens of
per cent within minutes, so only the pairs are compared: each round gives one ratio
after / before, and the median of the rounds is printed with their range.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import simpy  # noqa: E402

import sim  # noqa: E402
from sim.replication import run_replication  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_run import raw_simpy_timeouts_per_second  # noqa: E402  (one definition of the reference)

#: the tree before issue 13's speed work (its golden digests were taken on it)
DEFAULT_BEFORE = "05588e5"


def import_before(rev: str, folder: Path):
    """Import ``sim/`` at git revision ``rev`` as the package ``sim_before``."""
    data = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "sim"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    package = folder / "sim_before"
    (folder / "sim").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\b(from|import) sim(\.| )", r"\1 sim_before\2", text)
        text = text.replace('f"sim.cli.', 'f"sim_before.cli.')
        path.write_text(text)
    sys.path.insert(0, str(folder))
    return (
        importlib.import_module("sim_before.replication").run_replication,
        importlib.import_module("sim_before.model.world").World,
    )


def replications_per_second(run, scenario, reps: int, seed: int) -> float:
    started = time.perf_counter()
    for rep in range(reps):
        run(scenario, seed, rep)
    return reps / (time.perf_counter() - started)


def digest(run, scenario, reps: int, seed: int) -> str:
    h = hashlib.sha256()
    for rep in range(reps):
        result = run(scenario, seed, rep)
        for row in result.events:
            h.update(repr(tuple(row)[:23]).encode())  # the fields both trees have
        h.update(repr(sorted(result.metrics.items())).encode())
    return h.hexdigest()


def model_events(world_class, scenario, reps: int, seed: int) -> float:
    """Model events per replication as the tree before counts them (SimPy events plus the
    candidates the militia evaluated without a timeout): the work, whatever the implementation."""
    events = 0
    for rep in range(reps):
        world = world_class(scenario, seed, rep)
        world.run()
        events += world.model_events
    return events / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=DEFAULT_BEFORE)
    ap.add_argument(
        "--scenario", nargs="+", default=["scenarios/baseline.toml", "scenarios/policies/never.toml"]
    )
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20231017)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_before, world_before = import_before(args.before, Path(tmp))
        sim_before = importlib.import_module("sim_before")
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "sim"]).returncode
        print(f"before: {args.before}; after: {head}{' with uncommitted changes' if dirty else ''}")
        print(f"python {sys.version.split()[0]}, simpy {simpy.__version__}, {args.reps} replications a round")
        for path in args.scenario:
            s_after = sim.load_scenario(ROOT / path)
            s_before = sim_before.load_scenario(ROOT / path)
            same = digest(run_before, s_before, 30, args.seed) == digest(
                run_replication, s_after, 30, args.seed
            )
            events = model_events(world_before, s_before, 50, args.seed)
            run_before(s_before, args.seed, 0), run_replication(s_after, args.seed, 0)  # warm
            before, after, raw = [], [], []
            for _ in range(args.rounds):
                raw.append(raw_simpy_timeouts_per_second())
                before.append(replications_per_second(run_before, s_before, args.reps, args.seed))
                after.append(replications_per_second(run_replication, s_after, args.reps, args.seed))
            pairs = [a / b for a, b in zip(after, before, strict=True)]
            raw_rate = statistics.median(raw)
            print(f"\n{path}: rows of 30 replications identical: {'yes' if same else 'NO'}")
            print(f"  model events a replication (as counted before): {events:,.1f}")
            print(f"  raw SimPy timeouts/s (median of rounds): {raw_rate:,.0f}")
            for name, rates in (("before", before), ("after", after)):
                rate = statistics.median(rates)
                print(
                    f"  {name:6s} replications/s {rate:7,.0f} (rounds {min(rates):,.0f}-{max(rates):,.0f}); "
                    f"ratio model events/s : raw timeouts/s {rate * events / raw_rate:.3f}"
                )
            print(
                f"  after / before, round by round: {', '.join(f'{p:.2f}' for p in pairs)}; "
                f"median {statistics.median(pairs):.2f}"
            )


if __name__ == "__main__":
    main()
