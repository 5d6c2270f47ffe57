"""Result folders are written whole or not at all, and refused when their files are not those their
manifest lists: fault injection at each step of a write, tampering, and folders that are not ours."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from sim.folders import FAULT_POINT, FolderError, FolderWriter, verify_folder
from tests.conftest import BASELINE
from tests.test_cli import esim


def _run(out, reps: int, seed: int, **env):
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import ROOT

    exe = Path(sys.executable).parent / "esim"
    return subprocess.run(
        [str(exe), "run", str(BASELINE), "-n", str(reps), "--seed", str(seed), "--out", str(out), "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def _held(out) -> tuple[int, int]:
    """(replications, seed) of the run a folder holds, after checking it against its manifest."""
    assert verify_folder(out) == []
    info = json.loads((out / "manifest.json").read_text())
    rows = len(pd.read_parquet(out / "summary.parquet"))
    assert rows == info["reps"]
    return rows, info["seed"]


@pytest.mark.slow
@pytest.mark.parametrize("point, holds", [("written", (5, 1)), ("manifest", (5, 1)), ("swapped", (3, 2))])
def test_a_run_killed_at_any_step_of_its_write_leaves_the_old_result_or_the_new(tmp_path, point, holds):
    out = tmp_path / "R"
    assert _run(out, 5, 1).returncode == 0
    killed = _run(out, 3, 2, **{FAULT_POINT: point})
    assert killed.returncode == -9  # SIGKILL
    assert _held(out) == holds  # never a mix of the two runs
    assert list(tmp_path.glob(".R.*")), "the killed write left its hidden folder beside"
    assert _run(out, 4, 3).returncode == 0  # the next write cleans up after it
    assert _held(out) == (4, 3) and not list(tmp_path.glob(".R.*"))


@pytest.mark.slow
def test_a_run_killed_while_it_streams_its_events_leaves_the_old_result(tmp_path):
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.conftest import ROOT

    out = tmp_path / "R"
    assert _run(out, 5, 1).returncode == 0
    exe = Path(sys.executable).parent / "esim"
    proc = subprocess.Popen(
        [str(exe), "run", str(BASELINE), "-n", "100000", "--seed", "2", "--out", str(out), "-q"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        # the first chunk of 500 replications is in the hidden folder's events file: kill now
        while not any(p.stat().st_size > 0 for p in tmp_path.glob(".R.partial-*/events.parquet")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.kill()
    finally:
        proc.wait(timeout=30)
    assert _held(out) == (5, 1)
    assert _run(out, 4, 3).returncode == 0 and _held(out) == (4, 3)
    assert not list(tmp_path.glob(".R.*"))


@pytest.mark.slow
def test_a_folder_changed_after_it_was_written_is_refused_by_its_readers(tmp_path):
    out = tmp_path / "R"
    assert _run(out, 3, 1).returncode == 0
    other = tmp_path / "S"
    assert _run(other, 4, 2).returncode == 0
    (out / "summary.parquet").write_bytes((other / "summary.parquet").read_bytes())  # a mix
    for args in (
        ("plot", str(out)),
        ("report", str(out), "--html", str(tmp_path / "r.html")),
        ("export", str(out)),
    ):
        p = esim(*args)
        assert p.returncode == 2 and p.stderr.count("\n") == 1, (args, p.stderr)
        assert "summary.parquet is not the file its manifest lists" in p.stderr
    assert not (tmp_path / "r.html").exists() and not (out / "plots").exists()
    (out / "events.parquet").unlink()
    assert "events.parquet is missing" in " ".join(verify_folder(out))


@pytest.mark.slow
def test_a_result_never_replaces_a_folder_that_is_not_ours(tmp_path):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.txt").write_text("two years of work")
    p = esim("run", str(BASELINE), "-n", "2", "-q", "--out", str(mine))
    assert p.returncode == 2 and "holds other files" in p.stderr and p.stderr.count("\n") == 1
    assert (mine / "thesis.txt").read_text() == "two years of work"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["notes"]  # nothing else written
    p = esim("report", str(tmp_path), "--html", str(tmp_path))
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    p = esim("run", str(BASELINE), "-n", "2", "-q", "--out", ".", cwd=mine)  # the working folder
    assert p.returncode == 2 and "is the working folder" in p.stderr
    assert sorted(x.name for x in mine.iterdir()) == ["thesis.txt"]


def test_an_error_while_writing_leaves_the_old_folder_and_no_temporary_one(tmp_path):
    out = tmp_path / "R"
    with FolderWriter(out, manifest={"run": 1}) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), FolderWriter(out, manifest={"run": 2}) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("disk full")
    assert (out / "a.txt").read_text() == "old" and json.loads((out / "manifest.json").read_text())[
        "run"
    ] == 1
    assert sorted(x.name for x in tmp_path.iterdir()) == ["R"]
    with pytest.raises(FolderError):
        FolderWriter(tmp_path / "R" / "a.txt").check()  # a file is not a folder


def test_a_run_written_in_chunks_holds_the_rows_of_one_run_in_memory_with_less_memory(tmp_path, baseline):
    import tracemalloc

    from sim import runner
    from sim.store import write_run

    whole = runner.run(baseline, reps=60, seed=4)
    peaks = {}
    for chunk in (10, 60):
        tracemalloc.start()
        summary = write_run(
            tmp_path / f"c{chunk}", runner.run_chunks(baseline, 60, 4, chunk=chunk), baseline, {"reps": 60}
        )
        peaks[chunk] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert verify_folder(tmp_path / f"c{chunk}") == []
        pd.testing.assert_frame_equal(summary, whole.summary)
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / f"c{chunk}" / "events.parquet"), whole.events
        )
    # six chunks of 10 hold about a sixth of the events at a time
    assert peaks[10] < 0.5 * peaks[60], peaks


def test_a_run_whose_events_would_not_fit_on_the_disk_is_refused_before_it_starts(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from sim.cli import common as cli
    from sim.scenario.loader import ScenarioError

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 0, 10**9))
    cli._disk_bounded(tmp_path / "out", 100_000)  # 0.8 GB: fits
    with pytest.raises(
        ScenarioError,
        match=r"200,000 replications would write about 1\.6 GB of "
        r"events; .* has 1\.0 GB free",
    ):
        cli._disk_bounded(tmp_path / "out", 200_000)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_comparison_killed_before_its_folder_is_written_resumes_from_its_batches(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import ROOT

    exe = Path(sys.executable).parent / "esim"
    args = [
        str(exe),
        "compare",
        str(BASELINE),
        str(ROOT / "scenarios/policies/never.toml"),
        "-n",
        "8",
        "-q",
        "-m",
        "attacks",
        "--out",
        str(tmp_path / "C"),
    ]
    run = dict(cwd=ROOT, capture_output=True, text=True, timeout=300)
    killed = subprocess.run(args, env={**os.environ, FAULT_POINT: "written"}, **run)
    assert killed.returncode == -9 and not (tmp_path / "C").exists()
    batches = tmp_path / ".C.batches" / "batches"
    assert len(list(batches.glob("*.parquet"))) == 2  # every batch finished before the kill
    # mark the kept batch of 'never': a resumed comparison reads it rather than running it again
    kept = next(p for p in batches.glob("*.parquet") if "-q01-" in p.name)
    frame = pd.read_parquet(kept)
    frame["attacks"] += 10_000
    frame.to_parquet(kept, index=False)
    # a comparison resumes into its --out folder: without one, --resume is bad input
    nowhere = subprocess.run([*args[: args.index("--out")], "--resume"], **run)
    assert nowhere.returncode == 2 and nowhere.stderr.count("\n") == 1, nowhere.stderr
    assert "--resume: a comparison resumes into its --out folder" in nowhere.stderr
    resumed = subprocess.run([*args, "--resume"], **run)
    assert resumed.returncode == 0, resumed.stderr
    assert verify_folder(tmp_path / "C") == [] and not (tmp_path / ".C.batches").exists()
    summary = pd.read_parquet(tmp_path / "C" / "summary.parquet")
    assert len(summary) == 16 and (summary.loc[summary["policy"] == "never", "attacks"] >= 10_000).all()
