"""Run the bad-input, absurd-input and fault cases of docs/reliability.md and print its table.

    python scripts/reliability_cases.py            # prints a Markdown table

Each case runs in a scratch folder under a memory limit (4 GB of address space) and a time limit
(120 s), and is judged handled when it ends with the expected exit code, at most one line on stderr
and no traceback, within its time, and leaves the folder it must not touch unchanged. The fault
cases (kill -9 at each step of a write, truncated batches, a lost Dask cluster) run in the test
suite (tests/test_folders.py, tests/test_sweep.py); this script repeats the kill cases through
ESIM_FAULT_POINT.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"

#: (what, command run in the scratch folder, expected exit code). {B} is the baseline scenario.
CASES = [
    ("missing scenario file", "esim run nowhere.toml", 2),
    ("malformed TOML", "printf 'x = [' > bad.toml; esim run bad.toml", 2),
    ("unknown key", "esim run {B} --set militia.branching_ration=0.3", 2),
    ("probability of 1.3", "esim run {B} --set b1b.mission_capable_rate=1.3", 2),
    ("infinite rate", "esim run {B} --set militia.background_rate_per_day=inf", 2),
    ("NaN rate", "esim run {B} --set militia.background_rate_per_day=nan", 2),
    ("rate multiplier 1e308", "esim run {B} --set drivers.gaza_truce.rate_multiplier=1e308", 2),
    ("background rate 1e308", "esim run {B} --set militia.background_rate_per_day=1e308", 2),
    ("infinite excitation decay", "esim run {B} --set militia.excitation_decay_days=inf", 2),
    ("weather recheck every 1e-9 h", "esim run {B} --set command.weather.recheck_hours=1e-9", 2),
    ("a scenario of 76 years", "esim run {B} --set meta.end_date=2099-12-31", 2),
    (
        "rates past the event budget",
        "esim run {B} -n 2 --set militia.background_rate_per_day=100 "
        "--set militia.branching_ratio=0.99 --set patron.enabled=false --set command.policy=never",
        2,
    ),
    ("10^9 replications", "esim run {B} --reps 1000000000", 2),
    ("seed 2^64", "esim run {B} --seed 18446744073709551616", 2),
    ("negative seed", "esim run {B} --seed -1", 2),
    ("--out is a file", "touch f; esim run {B} -n 2 --out f", 2),
    (
        "--out is a folder of other files",
        "mkdir -p keep && echo x > keep/notes.txt; esim run {B} -n 2 --out keep",
        2,
    ),
    ("--out .", "esim run {B} -n 2 --out .", 2),
    ("1000 workers", "esim compare {B} {P}/never.toml -n 4 -q -w 1000 -m attacks", 0),
    ("compare a single file", "esim compare {B}", 2),
    ("unknown metric", "esim compare {B} {P}/never.toml -n 2 -m nonsense", 2),
    (
        "sweep factor 1e9",
        'printf \'name = "x"\\nbase = "{B}"\\nreps = 2\\n[factors.r]\\n'
        'key = "militia.background_rate_per_day"\\nvalues = [1.0, 1e9]\\n\' > s.toml; esim validate s.toml',
        2,
    ),
    (
        "sweep range to inf",
        'printf \'name = "x"\\nbase = "{B}"\\nreps = 2\\n[design]\\nkind = "lhs"\\n'
        'points = 4\\n[factors.r]\\nkey = "militia.background_rate_per_day"\\nlow = 1.0\\nhigh = inf\\n\''
        " > s.toml; esim validate s.toml",
        2,
    ),
    (
        "factorial of 160,000 points",
        'python -c "print(\'name = \\"x\\"\\nbase = \\"{B}\\"\\nreps = 2\');'
        "[print(f'[factors.f{{i}}]\\nkey = \\\"militia.excitation_decay_days\\\"\\nvalues = ' + "
        'str([1.0 + j for j in range(400)])) for i in range(2)]" > s.toml; esim validate s.toml',
        2,
    ),
    (
        "negative design seed",
        'printf \'name = "x"\\nbase = "{B}"\\nreps = 2\\n[design]\\nkind = "lhs"\\n'
        'points = 4\\nseed = -1\\n[factors.r]\\nkey = "militia.background_rate_per_day"\\nlow = 1.0\\n'
        "high = 2.0\\n' > s.toml; esim validate s.toml",
        2,
    ),
    ("scheduler 'not a url'", "esim sweep {S}/bomber_lag.toml --out sw --scheduler 'not a url'", 2),
    ("scheduler nobody answers", "esim sweep {S}/bomber_lag.toml --out sw --scheduler tcp://127.0.0.1:1", 2),
    (
        "--html names a folder",
        "esim run {B} -n 2 -q --out r && mkdir -p page && esim report r --html page",
        2,
    ),
    ("report of a folder that is not a result", "mkdir -p empty; esim report empty --html x.html", 2),
    (
        "plot of a folder changed after its write",
        "esim run {B} -n 2 -q --out r && esim run {B} -n 3 -q "
        "--out r2 && cp r2/summary.parquet r/ && esim plot r",
        2,
    ),
    (
        "plot of a folder whose event log is missing",
        "esim run {B} -n 2 -q --out r && rm r/events.parquet && esim plot r",
        2,
    ),
    (
        "results of an emptied batch",
        "esim sweep {S}/bomber_lag.toml --out sw -q && "
        ": > $(ls sw/batches/*.parquet | head -1) && esim results sw",
        2,
    ),
    (
        "resume redoes an emptied batch",
        "esim sweep {S}/bomber_lag.toml --out sw -q && "
        ": > $(ls sw/batches/*.parquet | head -1) && esim sweep {S}/bomber_lag.toml --out sw --resume -q "
        "&& esim results sw -m attacks",
        0,
    ),
    (
        "corrupt sweep.json",
        "esim sweep {S}/bomber_lag.toml --out sw -q && echo '{{' > sw/sweep.json && esim results sw",
        2,
    ),
    ("export format xls", "esim run {B} -n 2 -q --out r && esim export r --format xls", 2),
    (
        "run killed after its files, before its manifest",
        "esim run {B} -n 5 -q --out r && "
        "ESIM_FAULT_POINT=written esim run {B} -n 3 --seed 2 -q --out r; esim plot r",
        0,
    ),
    (
        "run killed after its manifest, before the swap",
        "esim run {B} -n 5 -q --out r && "
        "ESIM_FAULT_POINT=manifest esim run {B} -n 3 --seed 2 -q --out r; esim plot r",
        0,
    ),
    (
        "run killed after the swap",
        "esim run {B} -n 5 -q --out r && "
        "ESIM_FAULT_POINT=swapped esim run {B} -n 3 --seed 2 -q --out r; esim plot r",
        0,
    ),
    (
        "run of 100,000 killed after 3 s, mid-stream",
        "esim run {B} -n 5 -q --out r && timeout -s KILL 3 esim run {B} -n 100000 -q --out r; esim plot r",
        0,
    ),
    (
        "calibration population too small",
        "esim calibrate --method abc-smc --population 10 --transition local --workers 1 --out cal",
        2,
    ),
    ("calibration resumed with nothing to resume", "esim calibrate --out cal --resume", 2),
    ("calibration option of the other method", "esim calibrate --population 100 --out cal", 2),
    (
        "posterior file missing",
        "esim compare {B} {P}/never.toml -n 2 --posterior nowhere.parquet --out c",
        2,
    ),
    (
        "posterior file truncated",
        "cp -r {C} cal && head -c 5000 {C}/posterior.parquet > cal/posterior.parquet && "
        "esim check {B} -n 2 --posterior cal/posterior.parquet",
        2,
    ),
    (
        "posterior with a key the schema does not know",
        "cp -r {C} cal && python {SPOIL} key cal/posterior.parquet && "
        "esim run {B} -n 2 --posterior cal/posterior.parquet --out r",
        2,
    ),
    (
        "posterior with a negative weight",
        "cp -r {C} cal && python {SPOIL} negative cal/posterior.parquet && "
        "esim compare {B} {P}/never.toml -n 2 --posterior cal/posterior.parquet",
        2,
    ),
    (
        "posterior with a NaN weight",
        "cp -r {C} cal && python {SPOIL} nan cal/posterior.parquet && "
        "esim check {B} -n 2 --posterior cal/posterior.parquet",
        2,
    ),
    (
        "posterior fitted to other targets",
        "cp -r {C} cal && echo '# changed' >> cal/targets.toml && "
        "esim compare {B} {P}/never.toml -n 2 --posterior cal/posterior.parquet --out c",
        2,
    ),
]


def spoil(mode: str, path: str) -> None:
    """Spoil a copy of a posterior file, keeping its manifest: a misspelt key, a negative or a NaN
    weight."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = table.schema.metadata
    if mode == "key":
        table = table.rename_columns(
            [c.replace("branching_ratio", "branching_ration") for c in table.column_names]
        )
    else:
        w = table.column("weight").to_numpy().copy()
        w[0] = -1.0 if mode == "negative" else np.nan
        table = table.set_column(table.column_names.index("weight"), "weight", pa.array(w))
    pq.write_table(table.replace_schema_metadata(meta), path)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and ".hypothesis" not in p.parts:
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def run_case(command: str, expected: int, scratch: Path) -> tuple[bool, int, float, str]:
    cmd = command.replace("esim calibrate", f"esim calibrate --priors {ROOT / 'calibration/priors.toml'}")
    cmd = cmd.format(
        B=ROOT / "scenarios/baseline.toml",
        P=ROOT / "scenarios/policies",
        S=ROOT / "scenarios/sweeps",
        C=ROOT / "calibration",
        SPOIL=f"{Path(__file__).resolve()} --spoil",
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "120"}
    before = _digest(ROOT / "scenarios")
    started = time.perf_counter()
    p = subprocess.run(
        ["bash", "-c", f"ulimit -v 4000000; timeout 120 bash -c {shlex.quote(cmd)}"],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    err = [line for line in p.stderr.splitlines() if line.strip()]
    # click's own usage errors print a usage line, a hint and the error: three lines, no traceback
    usage = len(err) == 3 and err[0].startswith("Usage:") and err[2].startswith("Error:")
    ok = (
        p.returncode == expected
        and "Traceback" not in p.stderr
        and (len(err) <= 1 or usage or expected == 0)
        and p.returncode != 124
        and _digest(ROOT / "scenarios") == before
    )
    first = err[-1] if usage else (err[0] if err else "")
    return ok, p.returncode, seconds, first


def main() -> int:
    print("| # | case | command | exit | seconds | handled | what it said |")
    print("|---|---|---|---|---|---|---|")
    bad = 0
    for n, (what, command, expected) in enumerate(CASES, start=1):
        scratch = Path(tempfile.mkdtemp(prefix="esim-case-"))
        try:
            ok, code, seconds, said = run_case(command, expected, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        bad += not ok
        shown = (
            command.replace("{B}", "scenarios/baseline.toml")
            .replace("{P}", "scenarios/policies")
            .replace("{S}", "scenarios/sweeps")
            .replace("{C}", "calibration")
            .replace("{SPOIL}", "scripts/reliability_cases.py --spoil")
            .replace("{{", "{")
        )
        said = said.replace(f"{ROOT}/", "").replace("|", "\\|")[:160]
        print(
            f"| {n} | {what} | `{shown.replace('|', chr(92) + '|')}` | {code} | {seconds:.1f} | "
            f"{'yes' if ok else '**no**'} | {said} |",
            flush=True,
        )
    print(f"\n{len(CASES) - bad} of {len(CASES)} handled cleanly.")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--spoil"]:
        spoil(sys.argv[2], sys.argv[3])
        sys.exit(0)
    sys.exit(main())
