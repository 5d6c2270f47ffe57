"""What running over the posterior costs: ``esim compare`` of two scenarios over the posterior
against the same comparison at the fitted point, measured in turn in one session.

    python benchmarks/bench_posterior.py [--reps 1000] [--repeat 3] [--workers 1]

Each round runs ``esim compare scenarios/baseline.toml scenarios/policies/never.toml --reps N``
once with ``--point`` and once over the shipped posterior (the default), alternating which goes
first, and prints both wall times and their ratio; the last line is the median ratio over the
rounds. The posterior's draws change what the replications do (another attack rate, another
halt), so the ratio measures the draws' bookkeeping and the cost of the replications they ask for.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sim.cli", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    a = parser.parse_args(argv)
    base = [
        "compare",
        "scenarios/baseline.toml",
        "scenarios/policies/never.toml",
        "--reps",
        str(a.reps),
        "-w",
        str(a.workers),
        "-q",
    ]
    ratios = []
    for i in range(a.repeat):
        order = [("point", [*base, "--point"]), ("posterior", base)]
        if i % 2:
            order.reverse()
        got = {name: timed(args) for name, args in order}
        ratios.append(got["posterior"] / got["point"])
        print(
            f"round {i + 1}: point {got['point']:.2f} s, posterior {got['posterior']:.2f} s, "
            f"ratio {ratios[-1]:.3f}",
            flush=True,
        )
    print(f"median ratio posterior / point over {a.repeat} rounds: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
