"""What a worker process and the command line import before any replication runs.

A spawned worker imports the parent's main module again (the ``esim`` script, so ``sim.cli``) and
then what its batch needs (:mod:`sim.batch`); neither may pull in pandas, pyarrow or the command
line's own libraries, which doubled a pool's start-up (benchmarks/bench_startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from sim.batch import SWEEP_COLUMNS, batch_rows
from sim.runner import summary_frame

HEAVY = ("pandas", "pyarrow", "typer", "rich", "scipy.stats", "matplotlib", "sim.runner", "sim.cli.common")


def heavy_modules_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_worker_and_the_esim_script_import_no_pandas_pyarrow_or_cli():
    assert heavy_modules_after("import sim") == []
    assert heavy_modules_after("from sim.cli import main") == []  # what the esim script runs first
    assert heavy_modules_after("import sim.batch") == []


def test_the_command_line_tells_bad_input_without_loading_pandas_or_the_model():
    """``esim --help`` and a bad input's one line need the app and the scenario schema only."""
    app = heavy_modules_after("from sim.cli import app")
    assert not {"pandas", "pyarrow", "sim.runner"} & set(app)
    for argv in (["run", "missing.toml"], ["compare", "missing.toml", "scenarios/baseline.toml"]):
        code = "\n".join(
            [
                f"import sys; sys.argv = ['esim', *{argv!r}]",
                "from sim.cli import main",
                "try:",
                "    main()",
                "except SystemExit as e:",
                "    assert e.code == 2, e.code",
            ]
        )
        assert not {"pandas", "pyarrow", "sim.runner"} & set(heavy_modules_after(code)), argv


def test_the_import_check_sees_a_heavy_module():
    """The check fails where it must: the runner (frames) and the app (the command line) are heavy."""
    assert "pandas" in heavy_modules_after("import sim.runner")
    assert {"typer", "sim.cli.common"} <= set(heavy_modules_after("from sim.cli import app"))


def test_a_batch_with_a_failed_replication_has_the_schema_of_one_without(baseline):
    rows = batch_rows(baseline, 1, 2, "p", 0, 3)
    failed = {"point": 2, "policy": "p", "rep": 3, "seed": 1, "error": "ValueError: no"}
    mixed, clean = summary_frame([*rows, failed]), summary_frame(rows)
    assert list(mixed.columns) == list(SWEEP_COLUMNS)
    assert list(mixed.dtypes) == list(clean.dtypes)
    assert mixed["error"].tolist() == ["", "", "", "ValueError: no"]
    assert mixed["attacks"].isna().tolist() == [False, False, False, True]
    assert mixed["outcome"].iloc[3] == "" and mixed["rep"].tolist() == [0, 1, 2, 3]
    # the typed frame holds what the rows say
    want = pd.DataFrame(rows)
    assert mixed["attacks"].iloc[:3].tolist() == want["attacks"].astype(float).tolist()
    assert mixed["halted"].iloc[:3].tolist() == want["halted"].astype(float).tolist()


def test_names_that_moved_are_still_importable_from_their_old_modules():
    import sim.backends
    import sim.compare
    import sim.defaults
    import sim.folders
    import sim.metrics
    import sim.runner
    import sim.store

    for name in ("Backend", "windowed", "InlineExecutor", "scheduler_problem"):
        assert getattr(sim.runner, name) is getattr(sim.backends, name)
    for name in ("DEFAULT_SEED", "DEFAULT_REPS"):
        assert getattr(sim.runner, name) == getattr(sim.defaults, name)
    assert sim.compare.HEADLINE is sim.metrics.HEADLINE
    assert sim.compare.NUMERIC_METRICS is sim.metrics.NUMERIC_METRICS
    assert sim.store.SweepStoreError is sim.folders.SweepStoreError
    assert sim.Backend is sim.backends.Backend and sim.run is sim.runner.run
