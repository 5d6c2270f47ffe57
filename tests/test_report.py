"""Reports: the narration against the event log, every figure from a small result folder, and the
HTML page opened in headless Chromium."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import matplotlib
import pytest
from conftest import ROOT, rows_of

import sim
from sim.report import plots
from sim.report.html import scenario_assumptions, write_report
from sim.report.narrate import as_text, narrate


def _at(s, t_hours: float) -> str:
    when = dt.datetime.combine(s.meta.start_date, dt.time()) + dt.timedelta(seconds=round(t_hours * 3600))
    return f"{when:%Y-%m-%d %H:%M}"


def test_the_narration_tells_the_events_that_the_log_holds(baseline):
    events = sim.run_replication(baseline, 20231017, 0).events
    text = as_text(narrate(baseline, 20231017, 0))
    lines = text.splitlines()
    for r in rows_of(events, "attack"):
        if r["severity"] > 0 or r["detail"]:
            assert any(line.startswith(_at(baseline, r["t_hours"])) and r["location"] in line
                       for line in lines), r
    for kind in ("decision", "takeoff", "refuel", "time_over_target", "landing", "warning", "halt"):
        for r in rows_of(events, kind):
            assert any(line.startswith(_at(baseline, r["t_hours"])) and r["detail"] in line
                       for line in lines), r
    packages = {(r["package"], r["asset"]) for r in rows_of(events, "strike")}
    assert sum(" strike, package " in line for line in lines) == len(packages)
    routine = sum(1 for r in rows_of(events, "attack") if r["severity"] == 0 and not r["detail"])
    told = sum(int(line.split(": ")[1].split(" attack")[0]) for line in lines if "that hurt no one" in line)
    assert told == routine  # every harmless attack is in exactly one weekly summary
    assert "3 US killed, 47 injured" in text and "escalation ladder climbs to 'major strike'" in text


@pytest.fixture(scope="module")
def result_folder(tmp_path_factory) -> Path:
    from tests.test_cli import esim

    out = tmp_path_factory.mktemp("run")
    assert esim("run", "scenarios/baseline.toml", "--reps", "12", "--seed", "2", "--out", str(out),
                "--quiet").returncode == 0
    return out


def test_every_figure_draws_from_a_small_result_folder(result_folder):
    r = plots.load_results(result_folder)
    s = r.scenario
    figs = {
        "cumulative": plots.cumulative_attacks(r.events, s, plots.documented_points(s)),
        "weekly": plots.weekly_attacks_and_strikes(r.events, s),
        "ladder": plots.ladder_over_time(r.events, s),
        "sorties": plots.sortie_timeline(r.events, s),
        "outcomes": plots.outcomes(r.summary, s),
    }
    for name, fig in figs.items():
        assert isinstance(fig, matplotlib.figure.Figure), name
        ax = fig.axes[0]
        assert ax.lines or ax.patches or ax.collections, name  # something was drawn
    cum = figs["cumulative"].axes[0].lines[0].get_ydata()
    assert cum[-1] == pytest.approx(float(r.summary["attacks"].median()))  # the median curve ends at
    # the median of the replications' attack counts
    written = plots.plot_folder(result_folder)
    assert {p.suffix for p in written} == {".png", ".svg"} and all(p.stat().st_size > 1000 for p in written)


def test_the_notebook_module_returns_figures(result_folder):
    import sim.plot

    r = sim.plot.load_results(result_folder)
    assert isinstance(sim.plot.outcomes(r.summary, r.scenario), matplotlib.figure.Figure)


def test_the_forest_plot_draws_a_comparison(tmp_path):
    from tests.test_cli import esim

    assert esim("compare", "scenarios/baseline.toml", "scenarios/policies/never.toml", "--reps", "10",
                "--out", str(tmp_path), "--quiet").returncode == 0
    r = plots.load_results(tmp_path)
    fig = plots.forest(r.comparison)
    assert len(fig.axes) == 4 and all(ax.lines for ax in fig.axes)


def test_assumptions_come_with_their_sources():
    rows = scenario_assumptions(ROOT / "scenarios/policies/never.toml")
    by_key = {r["key"]: r for r in rows}
    assert by_key["b1b.block_time_hours"]["source"].startswith("seed")
    assert by_key["militia.counter_retaliation_decay_days"]["source"].startswith("facts")
    assert any(r["file"] == "fitted.toml" for r in rows)


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium chromium-driver;"
                    " .ci/run installs it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_html_report_opens_in_chromium_with_no_console_errors(result_folder, tmp_path):
    page = write_report(result_folder, tmp_path / "report.html", check_reps=20)
    browser = _browser()
    try:
        browser.get(page.resolve().as_uri())
        sizes = browser.execute_script(
            "return Array.from(document.querySelectorAll('img.figure')).map("
            "i => [i.naturalWidth, i.naturalHeight, i.clientWidth, i.clientHeight]);")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        text = browser.find_element("tag name", "body").text
        browser.save_screenshot(str(tmp_path / "report.png"))
    finally:
        browser.quit()
    assert errors == []
    assert len(sizes) >= 5 and all(min(s) > 0 for s in sizes), sizes
    assert "Predictive check against the documented record" in text and "Tower 22" in text
    assert (tmp_path / "report.png").stat().st_size > 10_000
