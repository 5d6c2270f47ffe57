"""The esim command end to end, in a subprocess, as an analyst runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BASELINE, ROOT


def esim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    exe = shutil.which("esim", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "sim.cli"]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_run_writes_results_and_prints_the_summary(tmp_path):
    out = tmp_path / "res"
    p = esim(
        "run",
        str(BASELINE),
        "--reps",
        "12",
        "--seed",
        "3",
        "--out",
        str(out),
        "--quiet",
        "--set",
        "command.policy=deaths_only",
    )
    assert p.returncode == 0, p.stderr
    for name in ("attacks", "us_killed", "targets_destroyed", "outcome=halted"):
        assert name in p.stdout
    summary = pd.read_parquet(out / "summary.parquet")
    events = pd.read_parquet(out / "events.parquet")
    assert len(summary) == 12 and {"attack", "decision"} <= set(events["event"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["reps"] == 12
    assert len(manifest["scenario_sha256"]) == 64 and manifest["wall_seconds"] > 0
    resolved = (out / "scenario.resolved.toml").read_text()
    assert 'policy = "deaths_only"' in resolved
    assert sorted(p.name for p in out.iterdir()) == [
        "events.parquet",
        "manifest.json",
        "scenario.resolved.toml",
        "scenario.sources.json",
        "summary.parquet",
    ]
    # the folder says exactly what ran: the override, the policy, the calibration
    assert manifest["overrides"] == ["command.policy=deaths_only"]
    assert manifest["policy"] == "deaths_only" and manifest["calibration"] == "calibration/fitted.toml"
    assert "--set command.policy=deaths_only" in p.stdout and "(policy deaths_only)" in p.stdout
    sources = {r["key"]: r for r in json.loads((out / "scenario.sources.json").read_text())}
    assert sources["command.policy"]["value"] == "deaths_only" and sources["command.policy"]["override"]


@pytest.mark.slow
def test_a_run_with_overrides_never_overwrites_the_plain_run(tmp_path):
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    shutil.copytree(
        ROOT / "calibration", tmp_path / "calibration", ignore=shutil.ignore_patterns("*.db", "*.parquet")
    )
    assert esim("run", "scenarios/baseline.toml", "-n", "3", "-q", cwd=tmp_path).returncode == 0
    p = esim(
        "run",
        "scenarios/baseline.toml",
        "-n",
        "3",
        "-q",
        "--set",
        "command.policy=never",
        "--set",
        "b1b.tanker_pool=1",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    plain = json.loads((tmp_path / "results/baseline/manifest.json").read_text())
    variant = tmp_path / "results/baseline+command.policy=never+b1b.tanker_pool=1"
    assert plain["overrides"] == [] and plain["policy"] == "severity_triggered"
    assert json.loads((variant / "manifest.json").read_text())["overrides"] == [
        "command.policy=never",
        "b1b.tanker_pool=1",
    ]
    assert str(variant.relative_to(tmp_path)) in p.stdout


@pytest.mark.slow
def test_validate_accepts_the_baseline():
    p = esim("validate", str(BASELINE))
    assert p.returncode == 0 and p.stdout.startswith("ok: ")


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, expect",
    [
        (["--set", "b1b.mission_capable_rate=1.3"], "--set: b1b.mission_capable_rate: "),
        (["--set", "militia.branchingratio=0.2"], "--set: militia.branchingratio: unknown key"),
        (["--set", "nonsense"], "--set: nonsense: expected key.path=value"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, expect):
    out = tmp_path / "res"
    out.mkdir()
    (out / "summary.parquet").write_bytes(b"earlier results")
    p = esim("run", str(BASELINE), "--reps", "2", "--out", str(out), *args)
    assert p.returncode == 2
    assert p.stderr.startswith(f"error: {expect}") and p.stderr.count("\n") == 1
    assert "Traceback" not in p.stderr
    assert [f.name for f in out.iterdir()] == ["summary.parquet"]
    assert (out / "summary.parquet").read_bytes() == b"earlier results"


@pytest.mark.slow
def test_missing_scenario_file(tmp_path):
    p = esim("validate", str(tmp_path / "none.toml"))
    assert p.returncode == 2 and p.stderr == f"error: {tmp_path / 'none.toml'}: file not found\n"


@pytest.mark.slow
def test_malformed_scenario_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[militia\n")
    p = esim("run", str(bad), "--out", str(tmp_path / "out"))
    assert p.returncode == 2 and p.stderr.startswith(f"error: {bad}: invalid TOML")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_unwritable_output_folder_fails_before_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = esim("run", str(BASELINE), "--reps", "2", "--out", str(blocker / "res"))
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "Traceback" not in p.stderr


def test_progress_bar_appears_only_after_a_second(monkeypatch):
    from sim.cli import common as cli

    clock = [100.0]
    monkeypatch.setattr(cli.time, "perf_counter", lambda: clock[0])
    quiet = cli._LazyProgress(quiet=True, label="x")
    lazy = cli._LazyProgress(quiet=False, label="x")
    lazy(1, 10)
    assert lazy.bar is None  # fast runs print no bar
    clock[0] += 1.5
    quiet(2, 10)
    lazy(2, 10)
    assert quiet.bar is None and lazy.bar is not None
    assert lazy.bar.tasks[0].completed == 2 and lazy.bar.tasks[0].total == 10
    lazy.close()


# --- calibrate and check --------------------------------------------------------------------------


@pytest.mark.slow
def test_check_exits_0_when_every_check_passes_and_1_when_one_fails(tmp_path):
    (tmp_path / "targets.toml").write_text(f"""
scenario = "{ROOT}/scenarios/baseline.toml"
[targets.us_killed]
quote = "The explosion killed three U.S. soldiers"
source = "article"
window = [2023-10-17, 2024-01-31]
statistic = "us_killed"
kind = "at_least"
value = 3
[targets.round_trip]
quote = "The 15,000-mile round trip"
source = "article"
kind = "input"
value = 15000
input_key = "b1b.round_trip_miles"
""")
    ok = esim("check", "scenarios/baseline.toml", "--reps", "30", "--targets", str(tmp_path / "targets.toml"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS: all 2 targets, 0 series" in ok.stdout
    never = esim("check", "scenarios/baseline.toml", "--reps", "30", "--set", 'command.policy="never"')
    assert never.returncode == 1 and "FAIL" in never.stdout and "feb_package_targets" in never.stdout
    assert "the dated path: model against two naive references" in never.stdout
    assert "exceed what 2 B-1Bs carry" in never.stdout and "the story at once" in never.stdout


@pytest.mark.slow
def test_check_without_targets_is_bad_input(tmp_path):
    res = esim("check", "scenarios/policies/never.toml")
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "no targets file in calibration/ names this scenario" in res.stderr
    res = esim("check", "scenarios/baseline.toml", "--targets", str(tmp_path / "none.toml"))
    assert res.returncode == 2 and "none.toml: file not found" in res.stderr


@pytest.mark.slow
def test_calibrate_writes_a_fitted_file_that_a_scenario_can_extend(tmp_path):
    (tmp_path / "targets.toml").write_text(
        (ROOT / "calibration/targets.toml")
        .read_text()
        .replace('scenario = "../scenarios/baseline.toml"', f'scenario = "{ROOT}/scenarios/baseline.toml"')
    )
    shutil.copytree(ROOT / "calibration/record", tmp_path / "record")
    (tmp_path / "priors.toml").write_text(
        'targets = "targets.toml"\n[parameters.rate]\nkey = "militia.background_rate_per_day"\n'
        'distribution = "uniform"\nlow = 0.5\nhigh = 2.5\nreason = "test"\n'
    )
    out = tmp_path / "out"
    res = esim(
        "calibrate",
        "--method",
        "abc-smc",
        "--priors",
        str(tmp_path / "priors.toml"),
        "--out",
        str(out),
        "--population",
        "20",
        "--budget",
        "200",
        "--workers",
        "1",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    # the last population resampled and moved, within the budget: equal weights, said where it ran
    assert "resample-move at epsilon" in res.stdout
    smc = int(re.search(r"; ([\d,]+) simulations", res.stdout).group(1).replace(",", ""))
    moved = int(re.search(r"equal weights; ([\d,]+) simulations", res.stdout).group(1).replace(",", ""))
    assert 0 < moved and smc + moved <= 200
    posterior = pd.read_parquet(out / "posterior.parquet")
    assert posterior["weight"].nunique() == 1 and list(posterior.columns) == [
        "militia.background_rate_per_day",
        "weight",
    ]
    assert "Then resample-move: " in (out / "fitted.toml").read_text()
    from sim.posterior import load_posterior

    manifest = load_posterior(out / "posterior.parquet").manifest  # what the record informs, too
    assert manifest["informed"][0]["key"] == "militia.background_rate_per_day"
    assert 0 < manifest["informed"][0]["width_share"] <= 1 and "correlations" in manifest
    written = {p.name for p in out.iterdir()}
    assert {"posterior.parquet", "fitted.toml", "generations.csv", "abc.db"} <= written
    assert "gen   epsilon" in res.stdout and "rate" in res.stdout
    fitted = (out / "fitted.toml").read_text()
    assert fitted.count("militia.background_rate_per_day = ") == 1
    (tmp_path / "s.toml").write_text(
        f'extends = "{ROOT}/scenarios/baseline.toml"\n'
        + "\n".join(line for line in fitted.splitlines() if not line.startswith("#"))
    )
    assert esim("validate", str(tmp_path / "s.toml")).returncode == 0
    # the fitted file, written last, names its companions: one left by another calibration is refused
    from sim.calibrate import verify_outputs

    assert verify_outputs(out / "fitted.toml") == []
    (out / "posterior.parquet").unlink()  # missing is not mixed (the repository ships no posterior)
    assert verify_outputs(out / "fitted.toml") == []
    with open(out / "generations.csv", "a") as f:
        f.write("9,1,1,1,1,1,1\n")
    assert verify_outputs(out / "fitted.toml") == [
        f"{out / 'generations.csv'} is not the file fitted.toml was written with (another or an "
        "interrupted calibration): rerun esim calibrate (--resume)"
    ]
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    shutil.copytree(
        ROOT / "calibration", tmp_path / "calibration", ignore=shutil.ignore_patterns("*.db", "*.parquet")
    )
    (tmp_path / "calibration/generations.csv").write_text("gen\n0\n")  # a log (not in git) ...
    with open(tmp_path / "calibration/fitted.toml", "a") as f:  # ... other than the one it names
        f.write(f"# written with: generations.csv sha256={'0' * 64}\n")
    res = esim("check", "scenarios/baseline.toml", "--reps", "2", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "scenarios/baseline.toml: extends: " in res.stderr and "generations.csv is not" in res.stderr


@pytest.mark.slow
def test_calibrate_with_a_broken_prior_is_bad_input(tmp_path):
    (tmp_path / "priors.toml").write_text(
        f'targets = "{ROOT}/calibration/targets.toml"\n[parameters.p]\n'
        'key = "attacks.casualties.killed_probability"\ndistribution = "uniform"\nlow = 0.1\n'
        'high = 1.3\nreason = "test"\n'
    )
    res = esim("calibrate", "--priors", str(tmp_path / "priors.toml"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "priors.toml: parameters.p.high:" in res.stderr and "less than or equal to 1" in res.stderr
    res = esim(
        "calibrate",
        "--priors",
        str(ROOT / "calibration/priors.toml"),
        "--out",
        str(tmp_path / "o"),
        "--resume",
    )
    assert res.returncode == 2 and "no calibration to resume" in res.stderr


@pytest.mark.slow
def test_a_calibration_killed_with_sigkill_resumes_where_it_stopped(tmp_path):
    exe = shutil.which("esim", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "sim.cli"]
    out = tmp_path / "out"
    args = [
        "calibrate",
        "--method",
        "abc-smc",
        "--out",
        str(out),
        "--population",
        "20",
        "--workers",
        "1",
        "--budget",
        "100000",
        "--min-acceptance",
        "0",
    ]
    proc = subprocess.Popen(
        [*cmd, *args, "--max-minutes", "5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        for line in proc.stdout:  # the per-generation log, written as each generation ends
            if line.split()[:1] == ["1"]:
                break
        proc.kill()  # SIGKILL: no clean-up, in the middle of generation 2 or later
    finally:
        proc.wait(timeout=60)
    import pyabc

    before = pyabc.History(f"sqlite:///{out / 'abc.db'}").max_t
    assert before >= 1 and not (out / "fitted.toml").exists()
    res = esim(*args, "--resume", "--max-minutes", "0.1")
    assert res.returncode == 0, res.stdout + res.stderr
    log = pd.read_csv(out / "generations.csv")
    assert log["generation"].tolist() == list(range(len(log))) and len(log) > before + 1
    assert (out / "fitted.toml").is_file()


@pytest.mark.slow
def test_validate_knows_every_kind_of_input_file(tmp_path):
    for path, said in (
        ("scenarios/sweeps/policies.toml", "sweep 'policies', 1 point x 8 policies"),
        ("calibration/targets.toml", "targets file,"),
        ("calibration/priors.toml", "priors file, 16 parameters"),
        ("scenarios/baseline.toml", "scenario 'baseline'"),
    ):
        p = esim("validate", path)
        assert p.returncode == 0 and said in p.stdout, (path, p.stdout, p.stderr)
    bad = tmp_path / "sweep.toml"
    bad.write_text('name = "x"\nbase = "nowhere.toml"\nreps = 10\n')
    p = esim("validate", str(bad))
    assert (
        p.returncode == 2
        and p.stderr.count("\n") == 1
        and "base: 'nowhere.toml' points to no file" in p.stderr
        and "meta" not in p.stderr
    )


@pytest.mark.slow
def test_help_shows_flags_as_flags_and_the_library_shares_the_cli_defaults():
    import inspect

    import sim
    from sim import runner

    p = esim("run", "--help")
    assert p.returncode == 0 and "<bool>" not in p.stdout and "-q, --quiet" in p.stdout
    assert "--reps N" in p.stdout and "--set KEY=VALUE" in p.stdout
    assert "[default: 200" in p.stdout and "[default: 20231017" in p.stdout
    params = inspect.signature(sim.run).parameters
    assert params["reps"].default == runner.DEFAULT_REPS == 200
    assert params["seed"].default == runner.DEFAULT_SEED == 20231017


@pytest.mark.slow
def test_export_writes_every_table_as_csv_json_or_parquet(tmp_path):
    run = tmp_path / "run"
    assert esim("run", str(BASELINE), "-n", "3", "-q", "--out", str(run)).returncode == 0
    summary = pd.read_parquet(run / "summary.parquet")
    events = pd.read_parquet(run / "events.parquet")
    p = esim("export", str(run))
    assert p.returncode == 0, p.stderr
    csv = run / "export-csv"
    assert sorted(f.name for f in csv.iterdir()) == ["events.csv", "manifest.json", "summary.csv"]
    back = pd.read_csv(csv / "summary.csv")
    assert len(back) == 3 and list(back.columns) == list(summary.columns)
    assert back["attacks"].tolist() == summary["attacks"].tolist()
    assert len(pd.read_csv(csv / "events.csv")) == len(events)
    assert pd.read_csv(csv / "events.csv")["timestamp"].iloc[0].startswith("2023-10-17T")
    p = esim("export", str(run), "--format", "json", "--out", str(tmp_path / "j"))
    assert p.returncode == 0, p.stderr
    records = json.loads((tmp_path / "j" / "summary.json").read_text())
    assert [r["attacks"] for r in records] == summary["attacks"].tolist()
    # a saved predictive check exports one row per target
    chk = tmp_path / "chk"
    p = esim("check", str(BASELINE), "--reps", "5", "--out", str(chk))
    assert p.returncode in (0, 1), p.stderr
    assert esim("export", str(chk)).returncode == 0
    targets = pd.read_csv(chk / "export-csv" / "check_targets.csv")
    assert len(targets) == 28 and {"name", "documented", "median", "passed", "crps"} <= set(targets.columns)
    # bad input: one line, exit 2, nothing written
    for args, said in (
        ((str(run), "--format", "xls"), "'xls' is not one of csv, json, parquet"),
        ((str(tmp_path / "nothing"),), "no such folder"),
    ):
        p = esim("export", *args)
        assert p.returncode == 2 and said in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert not (run / "export-xls").exists()


@pytest.mark.slow
def test_absurd_requests_are_refused_up_front_with_what_they_would_need(tmp_path):
    for args, said in (
        (
            ("run", str(BASELINE), "--reps", "1000000000"),
            "1,000,000,000 replications would need about 300.0 GB of memory; at most 1,000,000",
        ),
        (("run", str(BASELINE), "--seed", str(2**64)), "--seed"),
        (
            ("compare", str(BASELINE), str(BASELINE), "--reps", "200000"),
            "400,000 replications with their events would need about 104.4 GB",
        ),
    ):
        p = esim(*args, "--out", str(tmp_path / "o"))
        assert p.returncode == 2 and said in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
    assert not (tmp_path / "o").exists()
    p = esim(
        "compare",
        str(BASELINE),
        "scenarios/policies/never.toml",
        "-n",
        "4",
        "-q",
        "--workers",
        "1000",
        "-m",
        "attacks",
    )
    assert p.returncode == 0 and "--workers 1000: capped at" in p.stderr, p.stderr


def test_esim_version_prints_the_package_version_and_runs_nothing():
    from typer.testing import CliRunner

    from sim.cli import app
    from sim.version import __version__

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output == f"escalation-sim {__version__}\n"
    assert CliRunner().invoke(app, ["--bogus"]).exit_code == 2


@pytest.mark.slow
def test_a_result_folder_that_does_not_exist_is_said_to_be_missing(tmp_path):
    nope = tmp_path / "nope"
    for args in (["plot", str(nope)], ["report", str(nope), "--html", str(tmp_path / "x.html")],
                 ["export", str(nope)], ["results", str(nope)]):  # fmt: skip
        p = esim(*args)
        assert p.returncode == 2 and p.stderr.strip() == f"error: {nope}: no such folder", (args, p.stderr)
    (tmp_path / "empty").mkdir()
    assert "not a result folder" in esim("plot", str(tmp_path / "empty")).stderr
    assert not (tmp_path / "x.html").exists()


@pytest.mark.slow
def test_check_at_80_columns_or_piped_prints_every_target_name_and_verdict_whole(tmp_path):
    import subprocess as sp

    exe = shutil.which("esim", path=str(Path(sys.executable).parent))
    out = tmp_path / "tables"
    for env in ({"COLUMNS": "80"}, {}):  # a narrow terminal; piped (no COLUMNS: rich takes 80)
        environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | env
        p = sp.run(
            [exe, "check", "scenarios/baseline.toml", "-n", "20", "--point", "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, env=environ, timeout=300,
        )  # fmt: skip
        assert p.returncode in (0, 1), p.stderr
        lines = p.stdout.splitlines()
        assert "…" not in p.stdout  # no cell cut (prose lines may be longer: a terminal wraps them)
        rows = pd.read_parquet(out / "check_targets.parquet")
        for name, passed, why in zip(rows["name"], rows["passed"], rows["why"], strict=True):
            at = lines.index(name)  # the name whole, on its own line
            assert lines[at + 1].strip().startswith("PASS" if passed else f"FAIL {why}"), (
                name,
                lines[at + 1],
            )
        series = pd.read_parquet(out / "check_series.parquet")
        for name in series["name"]:
            assert f"series {name}" in lines


@pytest.mark.slow
def test_compare_at_80_columns_prints_every_metric_and_scenario_whole():
    metrics = ["lag_lethal_to_strike_hours", "outcome=halted", "us_killed"]
    p = subprocess.run(
        [shutil.which("esim", path=str(Path(sys.executable).parent)), "compare", "scenarios/baseline.toml",
         "scenarios/policies/never.toml", "scenarios/policies/strike_at_once.toml", "-n", "20", "-q",
         *[a for m in metrics for a in ("-m", m)]],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "…" not in p.stdout
    for m in metrics:
        at = lines.index(m)
        assert lines[at + 1].split()[0] == "baseline" and lines[at + 3].split()[0] == "strike_at_once"
    assert any(
        x.split()[:2] == ["strike_at_once", "27.66"] or x.startswith("  strike_at_once") for x in lines
    )
