"""What the record informs: width shares, the not-informed flag, correlated pairs, and whether two
calibrations agree. Each check is tried on cases it must pass and cases it must fail."""

from __future__ import annotations

import numpy as np

from sim.calibrate.identification import agreement, correlations, informed
from sim.calibrate.priors import PriorsFile
from sim.posterior import Posterior
from tests.conftest import ROOT

PRIORS = PriorsFile.model_validate(
    {
        "targets": "t.toml",
        "parameters": {
            "narrow": {"key": "a.x", "distribution": "uniform", "low": 0.0, "high": 10.0, "reason": "r"},
            "wide": {"key": "a.y", "distribution": "uniform", "low": 0.0, "high": 1.0, "reason": "r"},
            "logged": {"key": "a.z", "distribution": "loguniform", "low": 1.0, "high": 100.0, "reason": "r"},
        },
    }
)


def sample(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(5.0, 0.5, n)  # 90% interval about 1.64 of a prior width of 10
    y = rng.random(n)  # the prior itself
    z = np.exp(rng.uniform(np.log(1.0), np.log(100.0), n))  # the prior, on its log scale
    return {"a.x": x, "a.y": y, "a.z": z}, np.full(n, 1.0 / n)


def test_width_shares_flag_a_parameter_that_keeps_its_prior_as_not_informed():
    values, w = sample()
    rows = {r.name: r for r in informed(values, w, PRIORS)}
    assert abs(rows["narrow"].width_share - 0.1645) < 0.01 and rows["narrow"].informed
    assert abs(rows["wide"].width_share - 0.9) < 0.02 and not rows["wide"].informed
    # a log-uniform prior's width is measured on its log scale: the prior itself keeps 90%
    assert abs(rows["logged"].width_share - 0.9) < 0.02 and not rows["logged"].informed
    # weights count: the same draws weighted towards one end are narrower
    tilted = informed(values, np.where(values["a.y"] < 0.2, 1.0, 1e-9), PRIORS)
    assert {r.name: r for r in tilted}["wide"].width_share < 0.25


def test_correlated_pairs_are_listed_and_independent_ones_are_not():
    values, w = sample()
    assert correlations(values, w, PRIORS) == []
    values["a.y"] = np.clip(
        1.0 - (values["a.x"] - 3.5) / 3.0 + 0.05 * np.random.default_rng(1).normal(size=len(w)), 0, 1
    )
    pairs = correlations(values, w, PRIORS)
    assert [(a, b) for a, b, _ in pairs] == [("narrow", "wide")] and pairs[0][2] < -0.9


def post(values: dict, w) -> Posterior:
    keys = tuple(values)
    return Posterior(ROOT, "0" * 64, keys, np.column_stack([values[k] for k in keys]), w / w.sum(), {}, True)


def test_two_calibrations_agree_when_their_medians_are_within_a_quarter_of_the_interval():
    a_values, w = sample(seed=0)
    b_values, _ = sample(seed=1)
    assert all(r.agree for r in agreement(post(a_values, w), post(b_values, w)))
    shifted = dict(b_values, **{"a.x": b_values["a.x"] + 0.6})  # 0.6 > a quarter of 1.64
    rows = {r.key: r for r in agreement(post(a_values, w), post(shifted, w))}
    assert not rows["a.x"].agree and rows["a.y"].agree


def test_a_posterior_as_wide_as_its_prior_does_not_agree_with_a_fit_even_with_the_same_median(tmp_path):
    rng = np.random.default_rng(3)
    fit = {"a.x": rng.normal(0.5, 0.1, 4000), "a.y": rng.normal(0.5, 0.1, 4000)}
    near_prior = dict(fit, **{"a.x": rng.uniform(0.0, 1.0, 4000)})  # same median, far wider
    w = np.ones(4000)
    rows = {r.key: r for r in agreement(post(fit, w), post(near_prior, w))}
    assert rows["a.x"].medians_agree and not rows["a.x"].widths_agree and not rows["a.x"].agree
    assert rows["a.y"].agree


def test_the_agreement_command_exits_1_when_two_fits_differ_and_2_on_bad_input(tmp_path, capsys):
    from sim.calibrate.identification import main
    from sim.posterior import write_posterior

    record = tmp_path / "targets.toml"
    record.write_text("# a record\n")
    from sim.posterior import sha256_of

    rng = np.random.default_rng(4)
    info = {"record": {"targets.toml": sha256_of(record)}}
    narrow = rng.normal(0.5, 0.1, (500, 1))
    write_posterior(
        tmp_path / "a.parquet", ["militia.branching_ratio"], narrow.clip(0, 0.9), np.ones(500), info
    )
    write_posterior(
        tmp_path / "b.parquet", ["militia.branching_ratio"], narrow.clip(0, 0.9), np.ones(500), info
    )
    wide = rng.uniform(0.0, 0.9, (500, 1))
    write_posterior(tmp_path / "c.parquet", ["militia.branching_ratio"], wide, np.ones(500), info)
    assert main([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]) == 0
    assert main([str(tmp_path / "a.parquet"), str(tmp_path / "c.parquet")]) == 1
    assert "DIFFER" in capsys.readouterr().out
    assert main([str(tmp_path / "a.parquet"), str(tmp_path / "nowhere.parquet")]) == 2
    assert main([str(tmp_path / "a.parquet")]) == 2
    err = capsys.readouterr().err
    assert "nowhere.parquet" in err and "Traceback" not in err
