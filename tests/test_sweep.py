"""Sweeps: files and designs, the same rows on every backend (Dask included), kill and resume,
failed replications, the result store, and common-random-number comparisons."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.compare import aggregate, paired
from sim.runner import Backend, run_batch
from sim.scenario import ScenarioError
from sim.scenario.values import with_values
from sim.store import SweepStore, SweepStoreError
from sim.sweep import design_points, load_sweep, run_sweep
from tests.conftest import ROOT, variant

SWEEP = """
name = "t"
base = "{base}"
reps = {reps}
seed = 7
batch_reps = {batch}
{extra}
"""
FACTORIAL = """
[policies]
baseline = "{base}"
never = "{never}"
[factors.lag]
key = "command.decision_lag.bomber.median_hours"
values = [24.0, 96.0]
[factors.dispersal]
key = "command.warning.dispersal_fraction"
values = [0.0, 0.5, 0.9]
"""


def _sweep(tmp_path: Path, reps: int = 6, batch: int = 3, extra: str | None = None) -> Path:
    base = ROOT / "scenarios/baseline.toml"
    never = ROOT / "scenarios/policies/never.toml"
    extra = FACTORIAL.format(base=base, never=never) if extra is None else extra
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP.format(base=base, reps=reps, batch=batch, extra=extra))
    return path


def test_a_factorial_sweep_runs_every_point_policy_and_replication(tmp_path):
    sw = load_sweep(_sweep(tmp_path))
    assert sw.points == 6 and sw.policy_names == ["baseline", "never"]
    assert sorted(map(tuple, sw.design.to_numpy())) == sorted(
        (a, b) for a in (24.0, 96.0) for b in (0.0, 0.5, 0.9)
    )
    assert sw.scenario(5, 0).command.decision_lag.bomber.median_hours == sw.design.at[5, "lag"]
    run = run_sweep(sw, tmp_path / "out")
    rows = SweepStore(tmp_path / "out").summary()
    assert run.replications == len(rows) == 6 * 2 * 6 and run.failed == 0
    assert rows.groupby(["point", "policy"])["rep"].apply(list).map(lambda r: r == list(range(6))).all()


def test_ranges_give_latin_hypercube_and_sobol_points_inside_their_bounds(tmp_path):
    for kind, points in (("lhs", 20), ("sobol", 16)):
        extra = (
            f'[design]\nkind = "{kind}"\npoints = {points}\n[factors.rate]\n'
            'key = "militia.background_rate_per_day"\nlow = 0.5\nhigh = 2.5\n'
            '[factors.lag]\nkey = "command.decision_lag.bomber.median_hours"\nlow = 24.0\n'
            "high = 200.0\nlog = true\n"
        )
        sw = load_sweep(_sweep(tmp_path, extra=extra))
        d = sw.design
        assert len(d) == points and d["rate"].between(0.5, 2.5).all() and d["lag"].between(24, 200).all()
        if kind == "lhs":  # one point in each of the 20 equal strata of each factor
            strata = np.floor((d["rate"] - 0.5) / 2.0 * points).astype(int)
            assert sorted(strata) == list(range(points))
        assert design_points(sw.spec).equals(d)  # the design is seeded: the same every time


@pytest.mark.parametrize("kind", ["lhs", "sobol", "saltelli"])
def test_a_log_factor_is_spread_evenly_on_the_log_scale_in_every_range_design(tmp_path, kind):
    """A factor from 1 to 1000 with log = true: half of the points below the log midpoint
    (sqrt(1000) = 31.6) and a quarter in each quarter of the log range, in every design."""
    from sim.sweep import sensitivity_sweep

    extra = (
        f'[design]\nkind = "{"lhs" if kind == "lhs" else "sobol"}"\npoints = 64\n'
        '[factors.lag]\nkey = "command.decision_lag.bomber.median_hours"\nlow = 1.0\n'
        'high = 1000.0\nlog = true\n[factors.rate]\nkey = "militia.background_rate_per_day"\n'
        "low = 0.5\nhigh = 2.5\n"
    )
    sw = load_sweep(_sweep(tmp_path, extra=extra))
    if kind == "saltelli":
        sw = sensitivity_sweep(sw)[0]
        assert len(sw.design) == 64 * (2 + 2)
    u = np.log10(sw.design["lag"]) / 3.0  # the position on the log scale, 0..1
    assert u.between(0, 1).all()
    quarters = np.histogram(u, bins=4, range=(0, 1))[0] / len(u)
    assert np.allclose(quarters, 0.25, atol=0.07), quarters
    # the linear factor beside it stays evenly spread on its own scale
    halves = np.histogram(sw.design["rate"], bins=2, range=(0.5, 2.5))[0] / len(u)
    assert np.allclose(halves, 0.5, atol=0.07), halves


@pytest.mark.parametrize(
    "extra, key, reason",
    [
        (
            '[factors.x]\nkey = "militia.background_rate_per_day"\nlow = 1.0\nhigh = 2.0\n',
            "factors.x",
            "a factorial design needs 'values'",
        ),
        (
            '[design]\nkind = "sobol"\npoints = 10\n[factors.x]\nkey = "militia.branching_ratio"\n'
            "low = 0.1\nhigh = 0.5\n",
            "design.points",
            "a sobol design needs a power of 2",
        ),
        (
            '[factors.x]\nkey = "attacks.casualties.killed_probability"\nvalues = [0.1, 1.3]\n',
            "factors.x",
            "less than or equal to 1",
        ),
        (
            '[factors.x]\nkey = "militia.background_rat"\nvalues = [1.0]\n',
            "factors.x.key",
            "is not a key of the scenario",
        ),
        (
            '[factors.x]\nkey = "militia.branching_ratio"\nvalues = [0.1]\nstep = 2\n',
            "factors.x.step",
            "unknown key",
        ),
    ],
)
def test_a_malformed_sweep_names_file_key_and_reason(tmp_path, extra, key, reason):
    with pytest.raises(ScenarioError) as err:
        load_sweep(_sweep(tmp_path, extra=extra))
    assert err.value.file.endswith("sweep.toml") and err.value.key_path == key
    assert reason in err.value.reason


@pytest.mark.slow
def test_the_same_sweep_gives_equal_frames_in_process_on_2_processes_and_on_dask(tmp_path):
    sw = load_sweep(_sweep(tmp_path, reps=4, batch=2))
    frames = {}
    scheduler_file = tmp_path / "scheduler.json"
    dask = shutil.which("dask", path=str(Path(sys.executable).parent))
    if dask is None:
        pytest.fail("the dask command is missing from the environment")
    sched = subprocess.Popen(
        [
            dask,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        for _ in range(600):
            if scheduler_file.is_file() and scheduler_file.stat().st_size:
                break
            time.sleep(0.05)
        worker = subprocess.Popen(
            [
                dask,
                "worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        import json

        from dask.distributed import Client

        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
        for name, backend in (
            ("serial", Backend()),
            ("processes", Backend(workers=2)),
            ("dask", Backend(scheduler=address)),
        ):
            run_sweep(sw, tmp_path / name, backend)
            frames[name] = SweepStore(tmp_path / name).summary()
    finally:
        for proc in (worker, sched):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
    pd.testing.assert_frame_equal(frames["serial"], frames["processes"])
    pd.testing.assert_frame_equal(frames["serial"], frames["dask"])
    assert len(frames["serial"]) == 6 * 2 * 4


@pytest.mark.slow
def test_a_sweep_killed_with_sigkill_resumes_to_exactly_the_uninterrupted_rows(tmp_path):
    path = _sweep(tmp_path, reps=80, batch=4)  # 240 batches: the kill lands well before the end
    out = tmp_path / "killed"
    exe = shutil.which("esim", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "sim.cli"]
    proc = subprocess.Popen(
        [*cmd, "sweep", str(path), "--out", str(out), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(1200):
            if len(list((out / "batches").glob("*.parquet"))) >= 5:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    written = len(list((out / "batches").glob("*.parquet")))
    assert 5 <= written < 240  # stopped in the middle
    res = subprocess.run(
        [*cmd, "sweep", str(path), "--out", str(out), "--resume", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert f"{written} batches already done" in res.stdout
    run_sweep(load_sweep(path), tmp_path / "whole")
    pd.testing.assert_frame_equal(SweepStore(out).summary(), SweepStore(tmp_path / "whole").summary())


def test_a_replication_that_raises_is_a_failed_row_and_the_sweep_goes_on(baseline, tmp_path):
    broken = with_values(baseline, {"militia.excitation_decay_days": 0.0})  # divides by zero
    rows = run_batch(broken, 1, 0, "broken", 0, 3)
    assert rows["rep"].tolist() == [0, 1, 2] and (rows["error"].str.startswith("ZeroDivisionError")).all()
    assert rows["attacks"].isna().all()
    good = run_batch(baseline, 1, 0, "good", 0, 3)
    assert (good["error"] == "").all() and good["attacks"].notna().all()
    assert list(rows.dtypes) == list(good.dtypes)  # one schema for every batch file
    table = aggregate(pd.concat([rows, good]), metrics=("attacks",))
    assert table.set_index("policy").at["broken", "failed"] == 3


def test_a_folder_holding_another_sweep_is_refused_and_nothing_is_lost(tmp_path):
    path = _sweep(tmp_path, reps=2, batch=2)
    run_sweep(load_sweep(path), tmp_path / "out")
    before = sorted(p.name for p in (tmp_path / "out" / "batches").iterdir())
    with pytest.raises(SweepStoreError, match="already holds this sweep"):
        run_sweep(load_sweep(path), tmp_path / "out")
    path.write_text(path.read_text().replace("seed = 7", "seed = 8"))
    with pytest.raises(SweepStoreError, match="another sweep"):
        run_sweep(load_sweep(path), tmp_path / "out", resume=True)
    assert sorted(p.name for p in (tmp_path / "out" / "batches").iterdir()) == before


def test_the_paired_interval_of_a_variant_against_itself_is_exactly_zero(baseline):
    a = run_batch(baseline, 3, 0, "a", 0, 30)
    b = run_batch(baseline, 3, 0, "b", 0, 30)
    never = run_batch(variant('command.policy="never"'), 3, 0, "never", 0, 30)
    table = paired(pd.concat([a, b, never]), ("attacks", "militia_killed"))
    same = table[table["policy"] == "b"]
    assert (same[["difference", "ci_low", "ci_high"]] == 0.0).all().all()
    diff = table[(table["policy"] == "never") & (table["metric"] == "militia_killed")].iloc[0]
    assert diff["ci_high"] < 0 and diff["variance_reduction"] > 0
    # the paired interval is narrower than the independent one whenever the runs are correlated:
    # a variant that acts differently only from the February warning on shares its attack times
    # until then
    unwarned = run_batch(variant("command.warning.enabled=false"), 3, 0, "unwarned", 0, 30)
    x = unwarned["attacks"].to_numpy(float)
    y = a["attacks"].to_numpy(float)
    assert np.corrcoef(x, y)[0, 1] > 0.5  # the same seeds draw the same attack times at first
    table = paired(pd.concat([a, unwarned]), ("attacks",))
    assert table[table["policy"] == "unwarned"].iloc[0]["variance_reduction"] > 1


@pytest.mark.slow
def test_results_and_compare_commands(tmp_path):
    from tests.test_cli import esim

    path = _sweep(tmp_path, reps=4, batch=2)
    assert esim("sweep", str(path), "--out", str(tmp_path / "o"), "--workers", "2").returncode == 0
    res = esim("results", str(tmp_path / "o"), "-m", "attacks")
    assert res.returncode == 0 and "48 of 48 replications" in res.stdout and "never" in res.stdout
    res = esim("results", str(tmp_path))
    assert res.returncode == 2 and "not a sweep's result folder" in res.stderr
    res = esim(
        "compare",
        "scenarios/baseline.toml",
        "scenarios/policies/never.toml",
        "--reps",
        "20",
        "-m",
        "attacks",
        "--out",
        str(tmp_path / "c"),
    )
    assert res.returncode == 0, res.stderr
    saved = pd.read_parquet(tmp_path / "c" / "comparison.parquet")
    assert set(saved["policy"]) == {"baseline", "never"}
    assert (saved.loc[saved["metric"] == "attacks", "n"] == 20).all()
    # every metric is kept, not only those printed; a metric no replication has is NaN, printed '-'
    lag = saved[(saved["metric"] == "lag_lethal_to_strike_hours") & (saved["policy"] == "never")]
    assert len(lag) == 1 and lag["difference"].isna().all()
    assert "nan" not in res.stdout


def test_sobol_indices_under_crn_give_a_factor_without_effect_exactly_zero(tmp_path):
    from sim.compare import sobol_indices
    from sim.sweep import sensitivity_sweep

    extra = (
        '[design]\nkind = "sobol"\npoints = 8\n[factors.rate]\n'
        'key = "militia.background_rate_per_day"\nlow = 0.3\nhigh = 2.5\n'
        '[factors.label]\nkey = "outcome.spiral_rate_ratio"\nlow = 1.1\nhigh = 3.0\n'
    )
    sw, problem = sensitivity_sweep(load_sweep(_sweep(tmp_path, reps=6, batch=6, extra=extra)))
    assert sw.points == 8 * (2 + 2)
    run_sweep(sw, tmp_path / "out")
    table = sobol_indices(sw.design, SweepStore(tmp_path / "out").summary(), problem, ("attacks",))
    by = table.set_index("factor")
    # the spiral threshold only labels outcomes: under common random numbers the attacks do not
    # move at all with it, so its indices are exactly zero; the background rate carries it all
    assert by.at["label", "ST"] == 0.0 and by.at["label", "S1"] == 0.0
    assert by.at["rate", "ST"] > 0.5
    assert 0.0 <= by.at["rate", "noise_share"] < 1.0


def test_event_logs_are_kept_only_on_request_one_file_per_batch(tmp_path, baseline):
    path = _sweep(tmp_path, reps=4, batch=2)
    run_sweep(load_sweep(path), tmp_path / "plain")
    assert not (tmp_path / "plain" / "events").exists()
    run_sweep(load_sweep(path), tmp_path / "ev", events=True)
    files = sorted((tmp_path / "ev" / "events").glob("*.parquet"))
    assert [f.name for f in files] == sorted(f.name for f in (tmp_path / "ev" / "batches").glob("*.parquet"))
    events = pd.concat([pd.read_parquet(f) for f in files])
    sw = load_sweep(path)
    one = events[(events["point"] == 3) & (events["policy"] == "baseline") & (events["rep"] == 1)]
    from sim import run_replication

    assert len(one) == len(run_replication(sw.scenario(3, 0), sw.spec.seed, 1).events)
    with pytest.raises(SweepStoreError, match="started with --events"):
        run_sweep(sw, tmp_path / "ev", resume=True)


def test_sobol_warnings_flag_wide_intervals_and_first_order_above_total():
    from sim.compare import sobol_warnings

    def table(*rows):
        return pd.DataFrame(
            [("base", "attacks", f, s1, c1, st, ct, 0.01) for f, s1, c1, st, ct in rows],
            columns=["policy", "metric", "factor", "S1", "S1_conf", "ST", "ST_conf", "noise_share"],
        )

    clean = table(("rate", 0.6, 0.05, 0.65, 0.05), ("lag", 0.2, 0.04, 0.25, 0.03))
    assert sobol_warnings(clean, 64) == []
    wide = sobol_warnings(table(("rate", 0.6, 0.05, 0.65, 0.05), ("lag", 0.1, 0.3, 0.2, 0.1)), 16)
    assert (
        len(wide) == 1 and "1 of 2" in wide[0] and "attacks/lag" in wide[0] and "--base-samples 64" in wide[0]
    )
    above = sobol_warnings(table(("rate", 0.7, 0.05, 0.6, 0.05)), 64)
    assert len(above) == 1 and "S1 0.70 > ST 0.60" in above[0]
    # a factor without effect under common random numbers (exactly 0) is not a warning
    assert sobol_warnings(table(("label", 0.0, 0.0, 0.0, 0.0)), 64) == []


@pytest.mark.slow
def test_plot_and_report_of_a_sweep_folder_draw_what_the_rows_say(tmp_path):
    from tests.test_cli import esim

    out = tmp_path / "o"
    assert esim("sweep", str(_sweep(tmp_path, reps=4, batch=4)), "--out", str(out), "-q").returncode == 0
    p = esim("plot", str(out))
    assert p.returncode == 0, p.stderr
    assert {f.stem for f in (out / "plots").glob("*.png")} == {
        "factor_response",
        "factor_heatmap",
        "paired_by_point",
    }
    from sim.compare import aggregate
    from sim.report.sweep_figures import (
        SWEEP_METRICS,
        factor_heatmap,
        factor_response,
        load_sweep_results,
        paired_by_point,
    )

    r = load_sweep_results(out)
    fig = factor_response(r)
    assert len(fig.axes) == len(SWEEP_METRICS) * 2  # metrics x factors
    # the heatmap's cells are the means of the points, per policy: baseline's attacks panel first
    heat = factor_heatmap(r, ("attacks",))
    drawn = heat.axes[0].images[0].get_array()
    table = aggregate(r.summary, r.design, ("attacks",))
    want = (
        table[table["policy"] == "baseline"]
        .pivot_table(index="dispersal", columns="lag", values="mean")
        .to_numpy()
    )
    assert np.allclose(np.asarray(drawn), want)
    # paired differences: never minus baseline at every one of the 6 points, per metric
    pair = paired_by_point(r)
    assert [len(ax.lines[0].get_xdata()) for ax in pair.axes] == [6] * len(SWEEP_METRICS)
    p = esim("report", str(out), "--html", str(tmp_path / "s.html"))
    assert p.returncode == 0, p.stderr
    html = (tmp_path / "s.html").read_text()
    assert "escalation-sim: sweep t (" in html and "6 points x policies baseline, never" in html
    assert html.count('class="figure"') == 3 and "lag = command.decision_lag.bomber.median_hours" in html


def test_the_sobol_figure_shows_both_indices_of_every_factor(tmp_path):
    from sim.report.sweep_figures import SweepResults, sobol_bars

    sobol = pd.DataFrame(
        [
            ("base", m, f, 0.3, 0.1, 0.4, 0.1, 0.02)
            for m in ("attacks", "us_killed")
            for f in ("rate", "lag", "label")
        ],
        columns=["policy", "metric", "factor", "S1", "S1_conf", "ST", "ST_conf", "noise_share"],
    )
    r = SweepResults(
        tmp_path,
        {"sweep": "s", "points": 40, "policies": ["base"], "reps": 2},
        pd.DataFrame(),
        pd.DataFrame(),
        sobol,
    )
    fig = sobol_bars(r)
    assert len(fig.axes) == 2 and all(len(ax.patches) == 2 * 3 for ax in fig.axes)
    assert [p.get_height() for p in fig.axes[0].patches] == [0.3] * 3 + [0.4] * 3


def test_paired_differences_at_rounding_level_are_zero_not_noise():
    rng = np.random.default_rng(1)
    lag = rng.uniform(20, 200, 50)
    a = pd.DataFrame({"policy": "a", "rep": range(50), "outcome": "halted", "lag": lag})
    b = a.assign(policy="b", lag=lag + rng.normal(0, 1e-8, 50))  # the same times, summed otherwise
    c = a.assign(policy="c", lag=lag + 0.5)
    table = paired(pd.concat([a, b, c]), ("lag",)).set_index("policy")
    assert table.at["b", "difference"] == 0 and table.at["b", "ci_low"] == table.at["b", "ci_high"] == 0
    assert table.at["c", "difference"] == pytest.approx(0.5)


@pytest.mark.slow
def test_resume_redoes_a_truncated_empty_or_foreign_batch_file(tmp_path):
    from tests.test_cli import esim

    path = _sweep(tmp_path, reps=4, batch=2)
    out = tmp_path / "o"
    assert esim("sweep", str(path), "--out", str(out), "-q").returncode == 0
    whole = SweepStore(out).summary()
    files = sorted((out / "batches").glob("*.parquet"))
    files[0].write_bytes(b"")  # a batch emptied by a full disk
    files[1].write_bytes(files[1].read_bytes()[:200])  # cut short
    files[2].write_bytes(files[3].read_bytes())  # whole, but another batch's rows
    (out / "batches" / "p99999-q00-r0000000.parquet").write_bytes(files[3].read_bytes())  # no task
    p = esim("results", str(out))
    assert (
        p.returncode == 2
        and p.stderr.count("\n") == 1
        and "unreadable batch file" in p.stderr
        and "--resume" in p.stderr
    )
    p = esim("sweep", str(path), "--out", str(out), "--resume", "-q")
    assert p.returncode == 0, p.stderr
    assert f"{len(files) - 3} batches already done" in p.stdout  # the three bad ones rerun
    assert not (out / "batches" / "p99999-q00-r0000000.parquet").exists()
    pd.testing.assert_frame_equal(SweepStore(out).summary(), whole)


@pytest.mark.slow
def test_sweep_designs_are_bounded_finite_and_record_the_values_that_run(tmp_path):
    base = ROOT / "scenarios/baseline.toml"
    cases = {
        "factorial": (
            '[factors.a]\nkey = "militia.excitation_decay_days"\n'
            "values = [" + ", ".join(str(1.0 + i) for i in range(400)) + "]\n"
            '[factors.b]\nkey = "militia.capacity_regeneration_days"\n'
            "values = [" + ", ".join(str(1.0 + i) for i in range(400)) + "]\n",
            "a factorial of 160,000 points; at most 100,000",
        ),
        "infinite": (
            '[design]\nkind = "lhs"\npoints = 4\n[factors.r]\n'
            'key = "militia.background_rate_per_day"\nlow = 1.0\nhigh = inf\n',
            "finite number",
        ),
        "huge": (
            '[factors.r]\nkey = "militia.background_rate_per_day"\nvalues = [1.0, 1e9]\n',
            "less than or equal to 100",
        ),
        "seed": (
            '[design]\nkind = "lhs"\npoints = 4\nseed = -1\n[factors.r]\n'
            'key = "militia.background_rate_per_day"\nlow = 1.0\nhigh = 2.0\n',
            "design.seed",
        ),
    }
    for name, (extra, said) in cases.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(f'name = "x"\nbase = "{base}"\nreps = 2\n{extra}')
        with pytest.raises(ScenarioError, match=said):
            load_sweep(path)
    # a count varied over a range runs whole values: the design records what ran
    path = tmp_path / "count.toml"
    path.write_text(
        f'name = "x"\nbase = "{base}"\nreps = 2\n[design]\nkind = "lhs"\npoints = 8\n'
        '[factors.pool]\nkey = "b1b.tanker_pool"\nlow = 1.0\nhigh = 6.0\n'
    )
    sw = load_sweep(path)
    assert (sw.design["pool"] == sw.design["pool"].round()).all()
    assert all(sw.scenario(p, 0).b1b.tanker_pool == sw.design.at[p, "pool"] for p in range(8))


@pytest.mark.slow
def test_a_bad_scheduler_address_or_a_corrupt_sweep_folder_is_one_line(tmp_path):
    from tests.test_cli import esim

    path = _sweep(tmp_path, reps=2, batch=2)
    for address, said in (
        ("not a url", "is not a scheduler address"),
        ("tcp://127.0.0.1:1", "nothing answers at tcp://127.0.0.1:1"),
    ):
        p = esim("sweep", str(path), "--out", str(tmp_path / "d"), "--scheduler", address)
        assert p.returncode == 2 and said in p.stderr and p.stderr.count("\n") == 1, p.stderr
        assert not (tmp_path / "d").exists()  # refused before anything was written
    out = tmp_path / "o"
    assert esim("sweep", str(path), "--out", str(out), "-q").returncode == 0
    (out / "sweep.json").write_text("{ half a file")
    for args in (
        ("results", str(out)),
        ("sweep", str(path), "--out", str(out), "--resume"),
        ("plot", str(out)),
    ):
        p = esim(*args)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and "sweep.json: unreadable" in p.stderr, (
            args,
            p.stderr,
        )


@pytest.mark.slow
@pytest.mark.parametrize("lost", ["worker", "scheduler"])
def test_a_sweep_whose_dask_cluster_is_lost_ends_within_seconds_with_one_line(tmp_path, lost):
    """A real cluster (scheduler and one worker without a nanny, as separate processes): kill one
    once the first batch is saved; the sweep must end, with one line that says to --resume."""
    import socket

    bin_ = Path(sys.executable).parent
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    cluster = {
        "scheduler": subprocess.Popen(
            [str(bin_ / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            **quiet,
        ),
        "worker": subprocess.Popen(
            [str(bin_ / "dask"), "worker", address, "--no-nanny", "--nthreads", "1", "--no-dashboard"],
            **quiet,
        ),
    }
    out = tmp_path / "sw"
    sweep = subprocess.Popen(
        [
            str(bin_ / "esim"),
            "sweep",
            "scenarios/sweeps/bomber_lag.toml",
            "--out",
            str(out),
            "--scheduler",
            address,
            "-q",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ESIM_DASK_NO_WORKER_S": "3"},
    )
    try:
        deadline = time.monotonic() + 120
        while not list((out / "batches").glob("*.parquet")):
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "no batch within 120 s"
            time.sleep(0.1)
        cluster[lost].kill()
        killed = time.monotonic()
        _, err = sweep.communicate(timeout=60)
        ended = time.monotonic() - killed
    finally:
        for p in (sweep, *cluster.values()):
            p.kill()
            p.wait(timeout=30)
    assert sweep.returncode == 2 and err.count("\n") == 1, err
    said = "no Dask worker for 3 s" if lost == "worker" else "lost the Dask cluster"
    assert said in err and "--resume" in err and "Traceback" not in err, err
    assert ended < 30, ended
    assert len(SweepStore(out).summary()) >= 100, "the finished batches are kept"


def test_a_comparison_is_a_sweep_that_resumes_only_its_unfinished_batches(tmp_path):
    """run_comparison keeps its batches in a sweep store: a comparison stopped part-way (here: a
    batch file removed) reruns only that batch, and ends with the rows of an unbroken one."""
    from sim.compare import run_comparison

    files = [str(ROOT / "scenarios/baseline.toml"), str(ROOT / "scenarios/policies/never.toml")]
    store = tmp_path / "store"
    whole = run_comparison(files, reps=12, seed=5, batch_reps=4, store=store, events=True)
    assert len(list((store / "batches").glob("*.parquet"))) == 2 * 3
    (store / "batches" / "p00000-q01-r0000004.parquet").unlink()
    ran = []
    again = run_comparison(
        files,
        reps=12,
        seed=5,
        batch_reps=4,
        store=store,
        events=True,
        resume=True,
        progress=lambda done, total: ran.append((done, total)),
    )
    assert ran[-1] == (4, 4)  # one batch of 4 replications ran, the other five were kept
    pd.testing.assert_frame_equal(again.summary, whole.summary)
    pd.testing.assert_frame_equal(again.events, whole.events)
    pd.testing.assert_frame_equal(again.table, whole.table)
    # without a store the batches stay in memory (MemoryStore): the same frames as read back from
    # the files, also when two processes finish the batches out of order
    fresh = run_comparison(files, reps=12, seed=5, batch_reps=4, events=True, backend=Backend(workers=2))
    pd.testing.assert_frame_equal(fresh.summary, whole.summary)
    pd.testing.assert_frame_equal(fresh.events, whole.events)
    pd.testing.assert_frame_equal(fresh.table, whole.table)
    assert list(whole.summary["policy"].unique()) == ["baseline", "never"]
    with pytest.raises(SweepStoreError, match="already holds this sweep"):
        run_comparison(files, reps=12, seed=5, batch_reps=4, store=store)


def test_a_started_backend_runs_every_map_on_the_pool_it_started_and_stops_it():
    """Backend.start() starts the workers ahead (they import a batch's modules while the command
    loads the rest); each map runs on those same processes; leaving the block stops them."""
    with Backend(workers=2).start() as backend:
        pool = set(backend._own._processes)  # the started pool's process ids (all started at once)
        assert len(pool) == 2 and os.getpid() not in pool
        for _ in range(2):  # every map, on those processes (whichever of them is free)
            assert {pid for _, pid in backend.map(os.getpid, [()] * 6)} <= pool
        assert dict(backend.map(pow, [(2, 10), (3, 3)])) == {0: 1024, 1: 27}
    assert backend._own is None
    # without start(), each map starts and stops its own pool: other processes
    plain = Backend(workers=2)
    assert {pid for _, pid in plain.map(os.getpid, [()] * 4)}.isdisjoint(pool)
