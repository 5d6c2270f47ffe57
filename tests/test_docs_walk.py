"""The docs, walked as a new user would: every command of the README and of docs/teaching.md, in
order, in a fresh copy of the repository (scripts/walk_docs.py), with no traceback, no 'nan', the
expected exit codes and result folders and pages that say exactly what ran."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_every_command_of_the_readme_and_the_lesson_runs_and_says_what_ran():
    started = time.perf_counter()
    p = subprocess.run(
        [sys.executable, str(ROOT / "scripts/walk_docs.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "0 failed" in p.stdout
    lines = p.stdout.splitlines()
    ran = [line for line in lines if line.startswith("ok")]
    skipped = [line for line in lines if line.startswith("SKIP")]
    assert len(ran) >= 25, p.stdout
    repeats = p.stdout.count("(the same command ran above")
    assert len(skipped) - repeats <= 5, p.stdout  # besides repeats, the walk skips only what it must
    assert time.perf_counter() - started < 600


@pytest.mark.slow
def test_the_walk_fails_a_command_that_breaks_or_mislabels(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import walk_docs

    doc = tmp_path / "doc.md"
    doc.write_text(
        "```sh\nesim run scenarios/nowhere.toml\nesim validate scenarios/baseline.toml\n"
        "python -c 'print(float(\"nan\"))'\n```\n"
    )
    work = tmp_path / "copy"
    work.mkdir()
    walk_docs.copy_repository(work)
    import io
    from contextlib import redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out):
        code = walk_docs.walk([doc], work)
    text = out.getvalue()
    assert code == 1 and "2 failed" in text, text
    assert "FAIL  esim run scenarios/nowhere.toml" in text and "exit code 2" in text
    assert "ok    esim validate" in text and "'nan' in the output" in text
    # a result folder whose manifest does not match the command is a mislabel
    (work / "results/base").mkdir(parents=True)
    (work / "results/base/manifest.json").write_text(
        '{"reps": 10, "seed": 1, "overrides": [], "scenario_file": "scenarios/baseline.toml"}'
    )
    problems = walk_docs.check_labels(
        "esim run scenarios/baseline.toml --reps 500 --seed 1 --out results/base", work
    )
    assert problems and "reps 10" in problems[0]


def test_the_lines_a_doc_quotes_must_be_printed_times_aside(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import walk_docs

    doc = tmp_path / "doc.md"
    doc.write_text(
        "```sh\nesim run a.toml\nesim plot r\n```\n\n```text\n"
        "baseline; 500 replications, 3.6 s (139 reps/s)\n...\n│ attacks │   178 │\n```\n\n"
        "```sh\nesim check x\n```\n"
    )
    (cmds, quoted), (later, none) = walk_docs.blocks(doc)
    assert cmds == ["esim run a.toml", "esim plot r"] and later == ["esim check x"] and none == []
    assert quoted == ["baseline; 500 replications, 3.6 s (139 reps/s)", "│ attacks │   178 │"]
    printed = "baseline; 500 replications, 8.7 s (58 reps/s)\n│ attacks    │   177 │   142 │\n"
    assert walk_docs.missing_quotes(quoted, printed) == ["│ attacks │   178 │"]  # another number
    assert walk_docs.missing_quotes(quoted[:1], printed) == []  # the time and rate may differ
    assert walk_docs.missing_quotes(["│ attacks │ 179 │"], "│ attacks │ 178 │") == ["│ attacks │ 179 │"]
