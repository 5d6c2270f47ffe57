"""The lab's run time: what the page's "Run both policies" costs for a few lab states, with the
lab's 2 warm worker processes, each state three times in this process.

    python benchmarks/bench_lab.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.lab.engine import Lab  # noqa: E402
from sim.lab.state import LabState  # noqa: E402

STATES = [
    {"b": "never", "n": "200", "predict": "attacks"},
    {"b": "strike_at_once", "n": "200", "predict": "us_killed"},
    {"b": "scenario", "n": "200", "b.command_warning_enabled": "false", "predict": "strikes"},
    {"b": "never", "n": "200", "world.militia_branching_ratio": "0.6", "predict": "attacks"},
]


def main() -> None:
    lab = Lab(ROOT / "scenarios" / "baseline.toml", ROOT / "scenarios" / "policies", workers=2)
    started = time.perf_counter()
    lab.start()
    print(f"workers started and warm in {time.perf_counter() - started:.1f} s")
    try:
        for query in STATES:
            state = LabState.from_query(query, lab.presets)
            times = []
            for _ in range(3):
                started = time.perf_counter()
                result = lab.run(state)
                times.append(time.perf_counter() - started)
            print(f"?{state.query()}: {', '.join(f'{t:.2f}' for t in times)} s (target: at most 2 s)")
            for m in result["metrics"]:
                a, b, d = m["a_mean"], m["b_mean"], m["difference"]
                print(f"   {m['metric']:18s} A {a}  B {b}  B - A {d} {m['ci']}")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
