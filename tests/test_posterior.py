"""Runs over a posterior: the file is checked, every replication draws its parameters from its own
stream, two policies share draws and dice (common random numbers), a bad file is one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim.posterior import (
    Parameters,
    batch_draws,
    draw_of_group,
    keys_to_draw,
    load_posterior,
    resolve,
    write_posterior,
)
from sim.scenario import ScenarioError, load_scenario
from tests.conftest import BASELINE, ROOT
from tests.test_cli import esim

KEYS = ["militia.background_rate_per_day", "attacks.casualties.killed_probability"]


def make_posterior(
    folder, values=None, weights="default", keys=KEYS, manifest=None, name="posterior.parquet"
):
    """A posterior file in ``folder``, fitted to a record file beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "targets.toml"
    if not record.exists():
        record.write_text("# a record\n", encoding="utf-8")
    from sim.posterior import sha256_of

    if values is None:
        values = np.column_stack([np.linspace(0.8, 2.0, 50), np.linspace(0.0, 0.02, 50)])
    if isinstance(weights, str):
        weights = np.linspace(1.0, 2.0, len(values))
    info = manifest if manifest is not None else {"record": {"targets.toml": sha256_of(record)}}
    path = folder / name
    write_posterior(path, keys, np.asarray(values, float), weights, info)
    return path


def test_a_posterior_file_reads_back_with_its_weights_and_hash(tmp_path):
    path = make_posterior(tmp_path)
    p = load_posterior(path)
    assert p.keys == tuple(KEYS) and p.draws == 50 and p.weighted
    assert np.isclose(p.weights.sum(), 1.0) and p.weights[-1] == pytest.approx(2 * p.weights[0])
    assert len(p.sha256) == 64 and 40 < p.ess < 50
    assert "ESS" in p.label() and p.sha256[:12] in p.label()


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (lambda p: p.unlink(), "file not found"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a readable Parquet file"),
        (lambda p: p.write_text("militia,weight\n1,1\n"), "not a readable Parquet file"),
        (lambda p: (p.unlink(), p.mkdir()), "not a regular file"),
    ],
)
def test_a_missing_truncated_or_foreign_file_is_one_line(tmp_path, spoil, reason):
    path = make_posterior(tmp_path)
    spoil(path)
    with pytest.raises(ScenarioError, match=reason) as info:
        load_posterior(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_weights_that_are_negative_not_finite_or_all_zero_are_refused(tmp_path):
    for weights, reason in [
        (np.r_[-1.0, np.ones(49)], "finite and non-negative"),
        (np.r_[np.nan, np.ones(49)], "finite and non-negative"),
        (np.r_[np.inf, np.ones(49)], "finite and non-negative"),
        (np.zeros(50), "every weight is 0"),
    ]:
        path = make_posterior(tmp_path / reason[:5], weights=weights)
        with pytest.raises(ScenarioError, match=reason) as info:
            load_posterior(path)
        assert "weight" in str(info.value)


def test_values_that_are_not_finite_or_not_numbers_are_refused(tmp_path):
    values = np.column_stack([np.linspace(0.8, 2.0, 50), np.linspace(0.0, 0.02, 50)])
    values[3, 0] = np.inf
    with pytest.raises(ScenarioError, match="militia.background_rate_per_day: not a finite number in row 3"):
        load_posterior(make_posterior(tmp_path, values=values))


def test_a_posterior_fitted_to_other_targets_is_refused(tmp_path):
    path = make_posterior(tmp_path)
    (tmp_path / "targets.toml").write_text("# another record\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="fitted to other targets: targets.toml changed"):
        load_posterior(path)
    with pytest.raises(ScenarioError, match="names no record files"):
        load_posterior(make_posterior(tmp_path / "x", manifest={"record": {}}))


def test_keys_the_schema_does_not_know_or_values_it_does_not_allow_are_refused(tmp_path):
    sc = load_scenario(BASELINE)
    bad = make_posterior(tmp_path / "a", keys=["militia.background_rate_per_dya", KEYS[1]])
    with pytest.raises(ScenarioError, match="militia.background_rate_per_dya: unknown key"):
        keys_to_draw(Parameters(load_posterior(bad)), sc, BASELINE)
    values = np.column_stack([np.linspace(0.8, 2.0, 50), np.linspace(0.0, 1.5, 50)])  # a probability > 1
    out_of_range = make_posterior(tmp_path / "b", values=values)
    with pytest.raises(ScenarioError, match="killed_probability: 1.5 is out of range"):
        keys_to_draw(Parameters(load_posterior(out_of_range)), sc, BASELINE)


def test_only_keys_the_scenario_takes_from_its_fitted_file_are_drawn(tmp_path):
    params = Parameters(load_posterior(make_posterior(tmp_path)))
    sc = load_scenario(BASELINE)
    assert keys_to_draw(params, sc, BASELINE) == KEYS
    overridden = ["militia.background_rate_per_day=1.0"]
    sc2 = load_scenario(BASELINE, overridden)
    assert keys_to_draw(params, sc2, BASELINE, overridden) == KEYS[1:]  # --set wins
    assert keys_to_draw(params, sc, BASELINE, (), fixed=(KEYS[1],)) == KEYS[:1]  # a sweep's factor wins


def test_each_group_of_replications_runs_one_draw_from_its_own_stream(tmp_path):
    p = load_posterior(make_posterior(tmp_path))
    params = Parameters(p, reps_per_draw=5)
    whole = batch_draws(params, KEYS, 7, 0, 40)
    part = batch_draws(params, KEYS, 7, 12, 23)  # another batch of the same run
    for rep in range(12, 23):
        assert whole.draw(rep) == part.draw(rep)
    assert whole.draw(10) == whole.draw(14) and whole.draw(15)[0] == draw_of_group(p, 7, 15)
    # the draw depends on the root seed and the group's first replication alone
    assert [whole.draw(r)[0] for r in range(0, 40, 5)] != [
        batch_draws(params, KEYS, 8, 0, 40).draw(r)[0] for r in range(0, 40, 5)
    ]


def test_draws_are_chosen_by_weight():
    from sim.posterior import Posterior

    w = np.array([0.7, 0.1, 0.1, 0.1])
    p = Posterior(ROOT, "0" * 64, ("k",), np.arange(4.0)[:, None], w, {}, True)
    picks = np.array([draw_of_group(p, 1, g) for g in range(4000)])
    shares = np.bincount(picks, minlength=4) / len(picks)
    assert abs(shares[0] - 0.7) < 0.03 and all(abs(s - 0.1) < 0.02 for s in shares[1:])
    zero = Posterior(
        ROOT, "0" * 64, ("k",), np.arange(4.0)[:, None], np.array([0.5, 0.0, 0.5, 0.0]), {}, True
    )
    assert {draw_of_group(zero, 1, g) for g in range(500)} == {0, 2}  # a weight of 0 is never run


def test_a_comparison_over_the_posterior_shares_draws_and_a_scenario_against_itself_is_zero(tmp_path):
    from sim.compare import run_comparison

    params = Parameters(load_posterior(make_posterior(tmp_path)), reps_per_draw=2)
    never = ROOT / "scenarios/policies/never.toml"
    comp = run_comparison([str(BASELINE), str(BASELINE), str(never)], reps=12, seed=3, parameters=params)
    s = comp.summary
    draws = {n: s.loc[s["policy"] == n, "draw"].tolist() for n in comp.names}
    assert draws[comp.names[0]] == draws[comp.names[1]] == draws[comp.names[2]]  # the same draw a replication
    assert min(draws[comp.names[0]]) >= 0 and len(set(draws[comp.names[0]])) > 1
    self_row = comp.table[comp.table["policy"] == comp.names[1]]
    assert (self_row["difference"].fillna(0) == 0).all() and (self_row["ci_low"].fillna(0) == 0).all()
    # and the draws change what runs: the point gives other attacks
    point = run_comparison([str(BASELINE), str(never)], reps=12, seed=3)
    assert (point.summary["draw"] == -1).all()
    assert point.summary["attacks"].tolist() != s[s["policy"] != comp.names[1]]["attacks"].tolist()


def test_the_rows_do_not_depend_on_the_number_of_workers(tmp_path):
    from sim.backends import Backend
    from sim.compare import run_comparison

    params = Parameters(load_posterior(make_posterior(tmp_path)), reps_per_draw=3)
    files = [str(BASELINE), str(ROOT / "scenarios/policies/never.toml")]
    one = run_comparison(files, reps=20, seed=5, parameters=params, batch_reps=7)
    with Backend(2) as two_workers:
        two = run_comparison(files, reps=20, seed=5, parameters=params, batch_reps=4, backend=two_workers)
    pd.testing.assert_frame_equal(one.summary, two.summary)


def test_resolve_defaults_to_the_posterior_beside_the_fitted_file_or_says_why_not(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(f'extends = "{BASELINE}"\n', encoding="utf-8")
    plain = tmp_path / "plain.toml"
    plain.write_text((ROOT / "scenarios/baseline.toml").read_text().split("extends")[0], encoding="utf-8")
    assert resolve("point", None, scenario).is_point
    beside = ROOT / "calibration" / "posterior.parquet"
    got = resolve("default-posterior", None, scenario)
    if beside.exists():
        assert got.posterior is not None and got.posterior.path == beside
    else:
        assert got.is_point and "no posterior.parquet" in got.why_point
    none = resolve("default-posterior", None, plain)
    assert none.is_point and none.why_point == "the scenario extends no fitted file"
    with pytest.raises(ScenarioError, match="extends no fitted.toml"):
        resolve("posterior", None, plain)


@pytest.mark.slow
def test_esim_run_over_a_posterior_says_so_in_its_line_and_manifest(tmp_path):
    path = make_posterior(tmp_path / "post")
    out = tmp_path / "res"
    p = esim("run", str(BASELINE), "-n", "6", "--out", str(out), "--posterior", str(path), "-q")
    assert p.returncode == 0, p.stderr
    assert f"posterior {path}" in p.stdout and "10 replications a draw" in p.stdout
    info = json.loads((out / "manifest.json").read_text())
    assert info["parameters"]["mode"] == "posterior" and info["parameters"]["keys_drawn"] == KEYS
    assert info["parameters"]["sha256"] == load_posterior(path).sha256
    assert (pd.read_parquet(out / "summary.parquet")["draw"] >= 0).all()
    point = esim("run", str(BASELINE), "-n", "6", "--out", str(tmp_path / "pt"), "-q")
    assert "fitted point" in point.stdout
    assert json.loads((tmp_path / "pt" / "manifest.json").read_text())["parameters"] == {"mode": "point"}


@pytest.mark.slow
def test_a_bad_posterior_is_one_line_with_exit_code_2_and_nothing_written(tmp_path):
    path = make_posterior(tmp_path / "post")
    path.write_bytes(path.read_bytes()[:100])
    for args in (
        ["run", str(BASELINE), "-n", "3", "--out", str(tmp_path / "r")],
        ["compare", str(BASELINE), str(BASELINE), "-n", "3", "--out", str(tmp_path / "c")],
        ["check", str(BASELINE), "-n", "3"],
    ):
        p = esim(*args, "--posterior", str(path))
        assert p.returncode == 2, p.stderr
        assert p.stderr.count("\n") == 1 and "not a readable Parquet file" in p.stderr
        assert "Traceback" not in p.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "c").exists()
    both = esim("run", str(BASELINE), "-n", "3", "--point", "--posterior", str(path))
    assert both.returncode == 2 and "not both" in both.stderr


@pytest.mark.slow
def test_check_over_single_draws_runs_each_draw_alone_and_records_what_failed(tmp_path):
    # two draws far apart: a background rate of 0.8 a day and of 2.0; the attack tallies fail at one
    values = np.array([[0.8, 0.0], [2.0, 0.0]])
    path = make_posterior(tmp_path / "post", values=values, weights=np.array([1.0, 1.0]))
    out = tmp_path / "chk"
    p = esim(
        "check", str(BASELINE), "-n", "20", "--posterior", str(path), "--single-draws", "3",
        "--out", str(out),
    )  # fmt: skip
    assert p.returncode in (0, 1), p.stderr
    line = next(x for x in p.stdout.splitlines() if x.startswith("single draws:"))
    info = json.loads((out / "manifest.json").read_text())["single_draws"]
    post = load_posterior(path)
    params = Parameters(post, 10)
    expected = batch_draws(params, KEYS, 20231017, 0, 30)
    assert info["draws"] == [expected.groups[g][0] for g in (0, 10, 20)]
    assert info["reps_each"] == 20 and len(info["failed"]) == 3
    assert line.startswith(f"single draws: {info['passed']} of 3 pass on 20 replications each")
    # the draw with about twice the fitted attack rate fails the attack series wherever it is drawn
    assert 1 in info["draws"]
    for index, failed in zip(info["draws"], info["failed"], strict=True):
        assert index != 1 or "series attacks" in failed


@pytest.mark.slow
def test_a_posterior_run_keeps_the_point_run_and_says_which_keys_its_draws_set(tmp_path):
    import shutil

    work = tmp_path / "w"
    shutil.copytree(ROOT / "scenarios", work / "scenarios")
    shutil.copytree(ROOT / "calibration", work / "calibration")
    assert esim("run", "scenarios/baseline.toml", "-n", "3", "-q", cwd=work).returncode == 0
    over = esim("run", "scenarios/baseline.toml", "-n", "3", "-q", "--posterior", cwd=work)
    assert over.returncode == 0, over.stderr
    point, post = work / "results/baseline", work / "results/baseline+posterior"
    assert json.loads((point / "manifest.json").read_text())["parameters"]["mode"] == "point"
    assert json.loads((post / "manifest.json").read_text())["parameters"]["mode"] == "posterior"
    resolved = (post / "scenario.resolved.toml").read_text()
    assert resolved.startswith("# Run over the posterior") and "#   militia.branching_ratio\n" in resolved
    assert not (point / "scenario.resolved.toml").read_text().startswith("# Run over")
    sources = {x["key"]: x for x in json.loads((post / "scenario.sources.json").read_text())}
    assert "story point" in sources["militia.branching_ratio"]["drawn"]
    assert "drawn" not in sources["b1b.round_trip_miles"]
    # options that only mean something over a posterior are refused at the point
    base = ["scenarios/baseline.toml", "-n", "2"]
    for args in (["run", *base, "--reps-per-draw", "5"], ["check", *base, "--point", "--single-draws", "2"]):
        p = esim(*args, cwd=work)
        assert p.returncode == 2 and "fitted point" in p.stderr and p.stderr.count("\n") == 1, p.stderr
