"""``esim calibrate`` (population Monte Carlo): what it writes, that a scenario can run it, and that
a calibration killed part-way and resumed ends with the posterior of one that never stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.test_cli import esim


def one_parameter_priors(tmp_path: Path) -> Path:
    (tmp_path / "targets.toml").write_text(
        (ROOT / "calibration/targets.toml")
        .read_text()
        .replace('scenario = "../scenarios/baseline.toml"', f'scenario = "{ROOT}/scenarios/baseline.toml"')
    )
    shutil.copytree(ROOT / "calibration/record", tmp_path / "record")
    priors = tmp_path / "priors.toml"
    priors.write_text(
        'targets = "targets.toml"\n[parameters.rate]\nkey = "militia.background_rate_per_day"\n'
        'distribution = "uniform"\nlow = 0.5\nhigh = 2.5\nreason = "test"\n'
    )
    return priors


SMALL = ["--budget", "2400", "--draws", "200", "--final-reps", "4", "--ess", "150"]


@pytest.mark.slow
def test_calibrate_writes_the_posterior_its_summary_and_a_story_point_a_scenario_runs(tmp_path):
    priors = one_parameter_priors(tmp_path)
    out = tmp_path / "out"
    res = esim("calibrate", "--priors", str(priors), "--out", str(out), "--workers", "1", *SMALL)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "by population Monte Carlo" in res.stdout and "(last)" in res.stdout
    assert (
        "what the record informs" in res.stdout
        and "story point (fitted.toml): the draw nearest" in res.stdout
    )
    from sim.posterior import load_posterior

    post = load_posterior(out / "posterior.parquet")
    assert post.keys == ("militia.background_rate_per_day",) and post.weighted and post.ess >= 150
    m = post.manifest
    assert set(m["record"]) >= {"../targets.toml", "../record/dod_attack_tallies_2023.csv", "../priors.toml"}
    assert m["simulations"] <= 2400 and m["seed"] == 20240202 and m["informed"][0]["key"] == post.keys[0]
    log = pd.read_csv(out / "iterations.csv")
    assert log["final"].iloc[-1] and log["total_simulations"].iloc[-1] == m["simulations"]
    fitted = (out / "fitted.toml").read_text()
    story = float(post.values[m["story_point"]["draw"], 0])
    line = next(x for x in fitted.splitlines() if x.startswith("militia.background_rate_per_day = "))
    assert float(line.split("=")[1].split("#")[0]) == pytest.approx(story, rel=1e-3)
    assert "width" in line and "prior uniform(0.5, 2.5)" in line
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'extends = "{ROOT}/scenarios/baseline.toml"\n' + fitted)
    assert esim("validate", str(scenario)).returncode == 0
    from sim.calibrate import verify_outputs

    assert verify_outputs(out / "fitted.toml") == []
    with open(out / "iterations.csv", "a") as f:
        f.write("9,1,1,1,1,1,1,1,false\n")
    assert (
        "iterations.csv is not the file fitted.toml was written with"
        in verify_outputs(out / "fitted.toml")[0]
    )


@pytest.mark.slow
def test_a_calibration_killed_and_resumed_equals_one_that_never_stopped_on_any_number_of_workers(tmp_path):
    priors = one_parameter_priors(tmp_path)
    whole = tmp_path / "whole"
    res = esim("calibrate", "--priors", str(priors), "--out", str(whole), "--workers", "2", *SMALL, "-q")
    assert res.returncode == 0, res.stdout + res.stderr
    killed = tmp_path / "killed"
    args = ["calibrate", "--priors", str(priors), "--out", str(killed), "--workers", "1", *SMALL]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        for line in proc.stdout:  # the per-iteration log, written as each iteration ends
            if line.split()[:1] == ["1"]:
                break
        proc.kill()  # SIGKILL: no clean-up, in the middle of iteration 2 or later
    finally:
        proc.wait(timeout=60)
    assert not (killed / "fitted.toml").exists() and list((killed / ".pmc").glob("iter01-*.npy"))
    res = esim(*args, "--resume", "-q")
    assert res.returncode == 0, res.stdout + res.stderr
    a = pd.read_parquet(whole / "posterior.parquet")
    b = pd.read_parquet(killed / "posterior.parquet")
    pd.testing.assert_frame_equal(a, b)

    def kept(path: Path) -> list[str]:  # the companions' hashes differ by their wall times
        return [x for x in path.read_text().splitlines() if not x.startswith("# written with")]

    assert kept(whole / "fitted.toml") == kept(killed / "fitted.toml")
    # resuming with other settings is refused, with one line
    other = esim(*args[:-1], "300", "--resume")
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "other inputs" in other.stderr


@pytest.mark.slow
def test_an_option_of_the_other_method_or_a_resume_of_nothing_is_refused_before_any_simulation(tmp_path):
    out = tmp_path / "out"
    for args, said in (
        (["--population", "100"], "--population: applies to --method abc-smc only"),
        (["--method", "abc-smc", "--ess", "100"], "--ess: applies to --method pmc only"),
        (["--resume"], "--resume: no calibration to resume"),
    ):
        res = esim("calibrate", "--out", str(out), *args)
        assert res.returncode == 2 and said in res.stderr, res.stderr
        assert res.stderr.count("\n") == 1 and "iter" not in res.stdout
    assert not out.exists()
