"""Sweep scaling: parallel efficiency of local processes, and peak memory of a long sweep.

    python benchmarks/bench_sweep.py [--reps 20000] [--workers 2] [--memory-reps 0]

Runs one sweep of the baseline (one point, ``--reps`` replications in batches of ``--batch``) in
process, then on ``--workers`` spawned processes, and prints the parallel efficiency
T(1) / (N x T(N)). With ``--memory-reps R`` it also runs an R-replication sweep on the same
workers and prints the peak resident memory of the parent and of the largest worker (from
``getrusage``). Results of the two runs are compared row for row.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.backends import Backend  # noqa: E402
from sim.store import SweepStore  # noqa: E402
from sim.sweep import load_sweep, run_sweep  # noqa: E402


def _sweep_file(folder: Path, reps: int, batch: int) -> Path:
    path = folder / "bench.toml"
    path.write_text(
        f'name = "bench"\nbase = "{ROOT / "scenarios/baseline.toml"}"\nreps = {reps}\n'
        f"seed = 1\nbatch_reps = {batch}\n"
    )
    return path


def _timed(path: Path, out: Path, backend: Backend) -> float:
    started = time.perf_counter()
    run_sweep(load_sweep(path), out, backend)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-reps", type=int, default=0)
    ap.add_argument("--skip-serial", action="store_true", help="only the parallel run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = _sweep_file(tmp, args.reps, args.batch)
        print(
            f"baseline sweep, {args.reps:,} replications in batches of {args.batch}, "
            f"python {sys.version.split()[0]}"
        )
        t_n = _timed(path, tmp / "parallel", Backend(workers=args.workers))
        print(f"{args.workers} processes:        {t_n:8.1f} s  {args.reps / t_n:8,.0f} reps/s")
        if not args.skip_serial:
            t_1 = _timed(path, tmp / "serial", Backend())
            print(f"in-process (1 core): {t_1:8.1f} s  {args.reps / t_1:8,.0f} reps/s")
            eff = t_1 / (args.workers * t_n)
            print(f"parallel efficiency on {args.workers}: {eff:6.1%}   (target >= 90% on 2, >= 85% on 16)")
            same = SweepStore(tmp / "serial").summary().equals(SweepStore(tmp / "parallel").summary())
            print(f"rows equal in-process and on {args.workers} processes: {same}")
        shutil.rmtree(tmp / "parallel", ignore_errors=True)
        if args.memory_reps:
            path = _sweep_file(tmp, args.memory_reps, args.batch)
            t_m = _timed(path, tmp / "memory", Backend(workers=args.workers))
            parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(
                f"{args.memory_reps:,}-replication sweep on {args.workers} processes: {t_m:.1f} s; "
                f"peak RSS parent {parent:.0f} MB, largest worker {child:.0f} MB (target < 500 MB)"
            )


if __name__ == "__main__":
    main()
