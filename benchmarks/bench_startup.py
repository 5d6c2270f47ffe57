"""What a user waits for before any replication runs: the ``esim`` command's start, and a pool of
worker processes' start, measured in this session as the user meets them (new processes).

    python benchmarks/bench_startup.py [--repeat 3] [--tree DIR]

``--tree DIR`` measures another source tree of the project (for example ``git archive REV`` unpacked
into DIR) with this environment's packages: every command then runs from a script shaped like the
``esim`` console script that imports ``sim`` from DIR.

* ``esim --help`` and a bad input (a missing scenario file: one line, exit 2): the command line's
  own start;
* workers: a process shaped like the ``esim`` script (it imports ``sim.cli`` first, as the script
  does) starts a pool of 2 spawned processes and times until both have imported what a batch needs
  (:mod:`sim.batch`), which is what a comparison, a sweep or the lab waits for before its first
  batch; the modules each worker holds then are printed (no pandas, pyarrow or command line);
* a comparison of two scenarios x 20 replications on 2 workers, where start-up is most of the time.

Each figure is the median of ``--repeat`` runs. With ``--compare-reps N`` it also runs ``esim
compare`` of the baseline and three policies x N replications on 2 workers once and prints its wall
time and the CPU time of the comparison's own process against its workers' (``getrusage``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the ``esim`` console script, with ``sim`` imported from one tree (an editable install's finder
#: would otherwise take it from this checkout)
_HEAD = """
import sys, time
sys.meta_path = [f for f in sys.meta_path if "editable" not in getattr(type(f), "__module__", "")]
sys.path.insert(0, {root!r})
from sim.cli import main  # what the esim script imports (its children import it again)
"""
_ESIM = (
    _HEAD
    + """
if __name__ == "__main__":
    sys.exit(main())
"""
)
#: the same, reporting at exit the CPU time of this process and of its (ended) workers
_ESIM_TIMED = (
    _HEAD
    + """
if __name__ == "__main__":
    import atexit, resource

    started = time.perf_counter()

    def said():
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = (time.perf_counter() - started, own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime)
        print("CPU", *seconds, file=sys.stderr)

    atexit.register(said)
    sys.exit(main())
"""
)
POLICIES = ("never", "strike_at_once", "deaths_only")
#: a parent shaped like the ``esim`` console script: spawned children re-import it as their main
_PARENT = (
    _HEAD
    + """


def _ready():
    try:
        import sim.batch  # noqa: F401  (what a batch of replications needs)
    except ImportError:  # a tree before sim.batch: its workers ran sim.runner.run_batch
        import sim.runner  # noqa: F401

    heavy = ("pandas", "pyarrow", "typer", "rich", "sim.runner", "sim.cli.common")
    return sorted(m for m in heavy if m in sys.modules)


if __name__ == "__main__":
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    started = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        held = [f.result() for f in [pool.submit(_ready) for _ in range(2)]]
        print(time.perf_counter() - started, held[0])
"""
)


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=False)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tree", type=Path, default=ROOT, help="source tree to measure (default: this one)")
    ap.add_argument("--compare-reps", type=int, default=0, help="also time a 4-policy comparison")
    args = ap.parse_args()
    tree = args.tree.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    (tmp / "esim").write_text(_ESIM.format(root=str(tree)))
    (tmp / "esim_like.py").write_text(_PARENT.format(root=str(tree)))
    (tmp / "esim_timed").write_text(_ESIM_TIMED.format(root=str(tree)))
    esim = [sys.executable, str(tmp / "esim")]
    cases = {
        "esim --help": [*esim, "--help"],
        "esim run missing.toml (one line, exit 2)": [*esim, "run", "missing.toml"],
        "esim compare 2 scenarios x 20, -w 2": [
            *esim,
            "compare",
            "scenarios/baseline.toml",
            "scenarios/policies/never.toml",
            "-n",
            "20",
            "-w",
            "2",
            "-q",
            "-m",
            "attacks",
        ],
    }
    print(f"tree {tree}; python {sys.version.split()[0]}; median of {args.repeat} runs, each a new process")
    for name, argv in cases.items():
        times = [wall(argv) for _ in range(args.repeat)]
        print(f"{name:<45} {statistics.median(times):6.2f} s   ({', '.join(f'{t:.2f}' for t in times)})")
    times, held = [], ""
    for _ in range(args.repeat):
        out = subprocess.run(
            [sys.executable, str(tmp / "esim_like.py")], capture_output=True, text=True, check=True
        )
        seconds, _, held = out.stdout.strip().partition(" ")
        times.append(float(seconds))
    if args.compare_reps:
        files = ["scenarios/baseline.toml", *(f"scenarios/policies/{p}.toml" for p in POLICIES)]
        argv = [sys.executable, str(tmp / "esim_timed"), "compare", *files, "-n", str(args.compare_reps)]
        out = subprocess.run(
            [*argv, "-w", "2", "-q", "-m", "attacks"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        line = next(x for x in out.stderr.splitlines() if x.startswith("CPU "))
        wall_s, own_s, workers_s = (float(x) for x in line.split()[1:])
        print(
            f"esim compare baseline + {', '.join(POLICIES)} x {args.compare_reps:,}, -w 2: {wall_s:.2f} s "
            f"wall; CPU of the comparison's process {own_s:.2f} s, of its workers {workers_s:.2f} s"
        )
    shutil.rmtree(tmp)
    print(
        f"{'2 spawned workers ready for a batch':<45} {statistics.median(times):6.2f} s   "
        f"({', '.join(f'{t:.2f}' for t in times)}); heavy modules a worker holds: {held}"
    )


if __name__ == "__main__":
    main()
