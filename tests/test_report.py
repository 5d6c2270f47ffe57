"""Reports: the narration against the event log, every figure from a small result folder, and the
HTML page opened in headless Chromium."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import matplotlib
import pytest
from conftest import ROOT, open_chromium, rows_of

import sim
from sim.report import plots
from sim.report.html import write_report
from sim.report.narrate import as_text, narrate
from sim.scenario.sources import scenario_sources


def _at(s, t_hours: float) -> str:
    when = dt.datetime.combine(s.meta.start_date, dt.time()) + dt.timedelta(seconds=round(t_hours * 3600))
    return f"{when:%Y-%m-%d %H:%M}"


def test_the_narration_tells_the_events_that_the_log_holds(baseline):
    events = sim.run_replication(baseline, 20231017, 0).events
    text = as_text(narrate(baseline, 20231017, 0))
    lines = text.splitlines()
    for r in rows_of(events, "attack"):
        if r["severity"] > 0 or r["detail"]:
            assert any(
                line.startswith(_at(baseline, r["t_hours"])) and r["location"] in line for line in lines
            ), r
    for kind in ("decision", "takeoff", "refuel", "time_over_target", "landing", "warning", "halt"):
        for r in rows_of(events, kind):
            assert any(
                line.startswith(_at(baseline, r["t_hours"])) and r["detail"] in line for line in lines
            ), r
    packages = {(r["package"], r["asset"]) for r in rows_of(events, "strike")}
    assert sum(" strike, package " in line for line in lines) == len(packages)
    routine = sum(1 for r in rows_of(events, "attack") if r["severity"] == 0 and not r["detail"])
    told = sum(int(line.split(": ")[1].split(" attack")[0]) for line in lines if "that hurt no one" in line)
    assert told == routine  # every harmless attack is in exactly one weekly summary
    assert "3 US killed, 47 injured" in text and "escalation ladder rises to 'major strike'" in text


POLICY_WORDS = {
    "never": "never strikes back",
    "deaths_only": "only after attacks that kill",
    "proportional": "every attack, harmless ones included",
    "severity_triggered": "after serious-injury attacks or worse",
}


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "scenarios/policies").glob("*.toml")) + [ROOT / "scenarios/baseline.toml"],
    ids=lambda p: p.stem,
)
def test_the_narration_is_a_correct_story_for_every_shipped_policy(path):
    import re

    from sim.metrics import ladder_by_day
    from sim.model.events import Rung

    s = sim.load_scenario(path)
    lines = narrate(s, 20231017, 0)
    text = as_text(lines)
    # the policy as configured, not a fixed sentence
    assert POLICY_WORDS[s.command.policy] in lines[0].text
    if s.command.policy != "never":
        assert ("no public warning" in lines[0].text) == (not s.command.warning.enabled)
    # plural-aware, no severity code names, one place per name
    assert not re.search(r"\b1 (targets|facilities|munitions|civilians|attacks)\b", text)
    assert not re.search(r"\b(0|[2-9]|\d\d+) (target|facility|munition|civilian|attack)\b", text)
    assert "none attack" not in text and "_attack" not in text and "Ayyash, " not in text
    # the ladder as it rises and falls, with the plot's definition of the current rung
    told = [(m.group(1), m.group(2)) for m in re.finditer(r"ladder (rises|falls) to '([a-z ]+)'", text)]
    _, current = ladder_by_day(sim.run_replication(s, 20231017, 0).events, s)
    changes = [
        Rung(r).label.replace("_", " ")
        for i, r in enumerate(current.tolist())
        if r != (current[i - 1] if i else 0)
    ]
    assert [rung for _, rung in told] == changes
    assert ("falls", "quiet") in told or current[-1] != 0
    # a closing paragraph: the outcome and the totals of this replication
    metrics = sim.run_replication(s, 20231017, 0).metrics
    assert lines[-1].kind == "end" and lines[-1].text.startswith(f"In the end: {metrics['outcome']}")
    assert f"{metrics['attacks']} attacks" in lines[-1].text and "What drove it:" in lines[-1].text


def test_the_narration_says_when_an_attack_breaks_the_halt(baseline):
    def halt_and_tower_22(rep: int) -> tuple[float, float]:
        events = sim.run_replication(baseline, 20231017, rep).events
        halts = [r.t_hours for r in events if r.event == "halt"]
        t22 = next(r.t_hours for r in events if r.event == "attack" and r.scripted == "tower_22")
        return (halts[0] if halts else float("inf")), t22

    # the first replication in which Tower 22 comes during the militia's halt (docs/teaching.md)
    rep = next(r for r in range(60) if (lambda h, t: h < t)(*halt_and_tower_22(r)))
    t22 = halt_and_tower_22(rep)[1]
    text = as_text(narrate(baseline, 20231017, rep))
    line = next(x for x in text.splitlines() if "tower_22" in x)
    assert line.startswith(_at(baseline, t22))
    # the first harmful attack of the halt breaks it (Tower 22 or one before it); later ones come
    # "during the halt"
    broken = [x for x in text.splitlines() if "is broken: " in x]
    assert len(broken) == 1 and ("is broken" in line or "during the halt: " in line)
    assert text.index(broken[0]) <= text.index(line)
    quiet = as_text(narrate(baseline, 20231017, 0))
    assert "is broken" not in quiet  # replication 0 halts after Tower 22: nothing to break


@pytest.fixture(scope="module")
def result_folder(tmp_path_factory) -> Path:
    from tests.test_cli import esim

    out = tmp_path_factory.mktemp("run")
    assert (
        esim(
            "run", "scenarios/baseline.toml", "--reps", "12", "--seed", "2", "--out", str(out), "--quiet"
        ).returncode
        == 0
    )
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


@pytest.fixture(scope="module")
def comparison_folder(tmp_path_factory) -> Path:
    from tests.test_cli import esim

    out = tmp_path_factory.mktemp("compare")
    p = esim(
        "compare",
        "scenarios/baseline.toml",
        "scenarios/policies/never.toml",
        "scenarios/policies/strike_big.toml",
        "--reps",
        "10",
        "--out",
        str(out),
        "--quiet",
        "--set",
        "b1b.tanker_pool=2",
    )
    assert p.returncode == 0, p.stderr
    return out


def test_the_forest_plot_draws_a_comparison(comparison_folder):
    r = plots.load_results(comparison_folder)
    fig = plots.forest(r.comparison)
    assert len(fig.axes) == 4 and all(ax.lines for ax in fig.axes)


def test_a_comparison_folder_keeps_every_scenario_and_its_plots_are_per_scenario(comparison_folder):
    r = plots.load_results(comparison_folder)
    assert r.policies == ["baseline", "never", "strike_big"]
    assert set(r.scenarios) == {"baseline", "never", "strike_big"}  # each resolved file kept
    assert r.scenarios["never"].command.policy == "never"
    assert r.scenarios["strike_big"].b1b.tanker_pool == 2  # the override, in every scenario
    assert "comparison of baseline, never, strike_big" in r.label and "--set b1b.tanker_pool=2" in r.label
    figs = plots.figures(r)
    # outcomes: one bar group per scenario, never pooled; the never bars hold no halted runs
    bars = [p for p in figs["outcomes"].axes[0].patches]
    assert len(bars) == 3 * 3
    legend = [t.get_text() for t in figs["outcomes"].axes[0].get_legend().get_texts()]
    assert legend == ["baseline", "never", "strike_big"]
    assert "2500" not in figs["outcomes"]._suptitle.get_text()
    assert "10 replications each" in figs["outcomes"]._suptitle.get_text()
    # the weekly figure and the ladder: one panel per scenario; strikes axes start at 0 and a
    # scenario that never strikes still has an axis of at least one strike
    weekly = figs["weekly_attacks_strikes"]
    titles = [ax.get_title() for ax in weekly.axes if ax.get_title()]
    assert titles == ["baseline", "never", "strike_big"]
    twins = [ax for ax in weekly.axes if ax.get_ylabel() == "US strikes / week"]
    assert all(ax.get_ylim()[0] == 0 and ax.get_ylim()[1] >= 1 for ax in twins)
    assert [ax.get_title() for ax in figs["escalation_ladder"].axes if ax.get_title()] == titles
    # every figure carries what ran in small print
    for name, fig in figs.items():
        assert any("b1b.tanker_pool=2" in t.get_text() for t in fig.texts), name
    for fig in figs.values():
        matplotlib.pyplot.close(fig)


@pytest.mark.slow
def test_the_report_of_a_comparison_folder_renders_per_scenario(comparison_folder, tmp_path):
    from tests.test_cli import esim

    p = esim("report", str(comparison_folder), "--html", str(tmp_path / "r.html"), "--check-reps", "5")
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    html = (tmp_path / "r.html").read_text()
    assert "baseline: mean" in html and "never: mean" in html and "strike_big: mean" in html
    assert "What the scenarios set differently" in html and "command.policy" in html
    assert "b1b.tanker_pool=2" in html


@pytest.mark.slow
def test_the_report_says_what_ran_and_shows_the_values_that_ran(tmp_path):
    from tests.test_cli import esim

    out = tmp_path / "variant"
    assert (
        esim(
            "run",
            "scenarios/baseline.toml",
            "-n",
            "6",
            "-q",
            "--out",
            str(out),
            "--set",
            "command.policy=deaths_only",
            "--set",
            "b1b.tanker_pool=1",
        ).returncode
        == 0
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # run from another folder: the check still finds the targets of the scenario file that ran
    p = esim("report", str(out), "--html", str(tmp_path / "r.html"), "--check-reps", "5", cwd=elsewhere)
    assert p.returncode == 0, p.stderr
    html = (tmp_path / "r.html").read_text()
    assert "--set command.policy=deaths_only b1b.tanker_pool=1" in html
    assert "Predictive check against the documented record" in html and "targets pass" in html
    row = html.split("<td>b1b.tanker_pool</td>")[1].split("</tr>")[0]
    assert "<td>1</td>" in row and "--set (file: 4)" in row
    policy = html.split("<td>command.policy</td>")[1].split("</tr>")[0]
    assert "deaths_only" in policy and "severity_triggered" in policy  # ran, and what the file says
    # a policy variant has no targets: the page says why there is no check, it does not drop it
    out2 = tmp_path / "never"
    assert esim("run", "scenarios/policies/never.toml", "-n", "4", "-q", "--out", str(out2)).returncode == 0
    assert esim("report", str(out2), "--html", str(tmp_path / "n.html")).returncode == 0
    assert 'id="no-check"' in (tmp_path / "n.html").read_text()


def test_assumptions_come_with_their_sources_and_the_values_that_ran():
    rows = scenario_sources(
        ROOT / "scenarios/policies/never.toml", ["b1b.tanker_pool=1", "militia.capacity_floor=0.2"]
    )
    by_key = {r["key"]: r for r in rows}
    assert by_key["b1b.block_time_hours"]["source"].startswith("article")
    assert by_key["militia.counter_retaliation_decay_days"]["source"].startswith("facts")
    # a fitted key: the value comes from fitted.toml, the source names the fit and its posterior
    fitted = by_key["militia.background_rate_per_day"]
    assert (
        fitted["file"] == "fitted.toml"
        and fitted["source"].startswith("fitted")
        and "prior uniform" in fitted["source"]
    )
    # the policy is the variant's, from the variant's file
    assert by_key["command.policy"]["value"] == "never" and by_key["command.policy"]["file"] == "never.toml"
    # overrides: the value that ran, the file's value beside it, the source comment kept
    pool = by_key["b1b.tanker_pool"]
    assert pool == {**pool, "value": "1", "override": True, "file": "--set", "file_value": "4"}
    assert pool["source"].startswith("assumption")
    assert not by_key["b1b.block_time_hours"]["override"]


def _drawn_share(png: bytes) -> float:
    """Share of a screenshot's pixels that are not (near) white."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float((pixels < 235).mean())


@pytest.mark.slow
def test_the_html_report_opens_in_chromium_with_no_console_errors(result_folder, tmp_path):
    page = write_report(result_folder, tmp_path / "report.html", check_reps=20)
    browser = open_chromium()
    widths = {}
    try:
        browser.set_window_size(1280, 900)
        browser.get(page.resolve().as_uri())
        sizes = browser.execute_script(
            "return Array.from(document.querySelectorAll('img.figure')).map("
            "i => [i.naturalWidth, i.naturalHeight, i.clientWidth, i.clientHeight]);"
        )
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        text = browser.find_element("tag name", "body").text
        browser.save_screenshot(str(tmp_path / "report.png"))
        # each figure, as the page shows it, is a drawing, not a blank box
        shots = {}
        for i, img in enumerate(browser.find_elements("css selector", "img.figure")):
            browser.execute_script("arguments[0].scrollIntoView();", img)
            shots[img.get_attribute("alt")] = img.screenshot_as_png
            (tmp_path / f"figure_{i}.png").write_bytes(shots[img.get_attribute("alt")])
        for width in (1280, 390):  # a laptop and a phone: the page never scrolls sideways
            browser.set_window_size(width, 900)
            widths[width] = browser.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth];"
            )
    finally:
        browser.quit()
    assert errors == []
    assert len(sizes) >= 5 and all(min(s) > 0 for s in sizes), sizes
    assert "Predictive check against the documented record" in text and "Tower 22" in text
    assert "seed 2" in text and "replications" in text  # what ran, at the top
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert len(shots) >= 5
    for alt, png in shots.items():
        assert 0.03 < _drawn_share(png) < 0.9, alt  # some ink, not a solid block
    for width, (scroll, inner) in widths.items():
        assert scroll <= inner, (width, scroll, inner)


def test_the_drawn_share_tells_a_blank_figure_from_a_drawing():
    import io

    from PIL import Image

    def png(colour, box=None):
        im = Image.new("RGB", (200, 100), colour)
        if box:
            im.paste((30, 30, 200), box)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()

    assert _drawn_share(png("white")) < 0.03
    assert _drawn_share(png("black")) > 0.9
    assert 0.03 < _drawn_share(png("white", (20, 20, 120, 80))) < 0.9


def test_the_b1b_figure_shows_whole_missions_hour_by_hour(result_folder):
    r = plots.load_results(result_folder)
    fig = plots.sortie_timeline(r.events, r.scenario)
    left, right = fig.axes[0], fig.axes[1]
    assert left.get_xlabel() == "hours from the US decision" and "replication" in left.get_title()
    bars = [p for p in left.patches]
    assert bars, "no mission drawn"
    lo, hi = left.get_xlim()
    assert lo == 0 and all(b.get_x() >= lo and b.get_x() + b.get_width() <= hi for b in bars)
    # the time over target is a visible bar, and a mission lasts its 44-hour block time
    over = [b for b in bars if b.get_facecolor()[:3] == matplotlib.colors.to_rgb("#de2d26")]
    assert over and all(b.get_width() == pytest.approx(r.scenario.b1b.time_over_target_hours) for b in over)
    # over all replications: one count per bomber mission that reached its targets
    flown = r.events[(r.events["event"] == "time_over_target") & (r.events["asset"] == "bomber")]
    assert sum(p.get_height() for p in right.patches) == len(flown)
    matplotlib.pyplot.close(fig)


@pytest.mark.slow
def test_the_report_renders_the_check_it_stored_and_recomputes_it_only_for_other_replications(
    result_folder, tmp_path, monkeypatch
):
    import json

    import sim.calibrate
    from sim.report import html

    folder = tmp_path / "run"
    shutil.copytree(result_folder, folder)
    (folder / html.CHECK_FILE).unlink(missing_ok=True)
    calls = []
    real = sim.calibrate.predictive_check

    def counted(*args, **kwargs):
        calls.append(kwargs.get("reps"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sim.calibrate, "predictive_check", counted)
    first = write_report(folder, tmp_path / "a.html", check_reps=10).read_text()
    stored = json.loads((folder / html.CHECK_FILE).read_text())
    assert calls == [10] and stored["reps"] == 10 and stored["section"]["rows"]
    second = write_report(folder, tmp_path / "b.html", check_reps=10).read_text()
    assert calls == [10] and second == first  # rendered from the stored check
    write_report(folder, tmp_path / "c.html", check_reps=12)
    assert calls == [10, 12] and json.loads((folder / html.CHECK_FILE).read_text())["reps"] == 12
    (folder / html.CHECK_FILE).write_text("{")  # an unreadable stored check is computed again
    write_report(folder, tmp_path / "d.html", check_reps=12)
    assert calls == [10, 12, 12]


def test_an_attack_whose_injuries_are_all_reported_later_is_not_told_as_hurting_no_one(baseline):
    from sim.report.narrate import LATER

    for rep in range(10):
        events = sim.run_replication(baseline, 20231017, rep).events
        late = [
            r for r in events
            if r.event == "attack" and r.severity > 0 and r.us_injured == 0 and r.us_killed == 0
        ]  # fmt: skip
        if late:
            break
    assert late, "no attack in replications 0-9 whose injuries are all diagnosed later"
    text = as_text(narrate(baseline, 20231017, rep))
    at = _at(baseline, late[0].t_hours)
    line = next(x for x in text.splitlines() if x.startswith(at) and "attack" in x)
    assert LATER in line and "no one hurt" not in line
    assert "hurt no one" in text  # the weekly lines of attacks that hurt no one stay as they were


def test_a_scenario_keeps_its_colour_from_figure_to_figure(comparison_folder):
    from matplotlib.colors import to_hex

    r = plots.load_results(comparison_folder)
    cumulative = plots.figures(r)["cumulative_attacks"].axes[0]
    median_colour = {
        line.get_label().split(":")[0]: to_hex(line.get_color())
        for line in cumulative.lines
        if line.get_label().endswith("median")
    }
    forest = plots.forest(r.comparison).axes[0]
    names = [t.get_text() for t in forest.get_yticklabels()]  # the scenarios after the reference
    for line in forest.lines:
        if len(line.get_xdata()) == 1:  # an estimate's marker
            name = names[int(round(line.get_ydata()[0]))]
            assert to_hex(line.get_color()) == median_colour[name], name


def test_a_comparisons_b1b_figure_counts_the_missions_of_every_scenario(comparison_folder):
    import matplotlib.pyplot as plt

    r = plots.load_results(comparison_folder)
    figs = plots.figures(r)
    left, right = figs["b1b_sorties"].axes[:2]
    shown = [t.get_text().split(":")[0] for t in right.get_legend().get_texts()]
    assert shown == ["baseline", "strike_big"]  # the scenarios whose B-1Bs flew, each its histogram
    assert "no mission: never" in right.get_title()
    assert "first scenario whose B-1Bs flew" in left.get_title()
    for fig in figs.values():
        plt.close(fig)


def test_the_b1b_figure_draws_weather_holds_as_the_narration_tells_them(baseline):
    """Replications 0-9: the hours the figure draws as weather holds are the hours from each
    package's first 'clouds over the targets' to its take-off, and no bar is called generation
    for bombers generated on a warning order before the decision."""
    import matplotlib.pyplot as plt

    from sim.runner import run

    _, events = run(baseline, reps=10, seed=20231017)
    hold_rgb = matplotlib.colors.to_rgb("#fdae6b")
    gen_rgb = matplotlib.colors.to_rgb("#bdbdbd")
    seen = 0
    for rep in range(10):
        ev = events[events["rep"] == rep]
        flew = ev[(ev["event"] == "takeoff") & (ev["asset"] == "bomber")]
        if flew.empty:
            continue
        fig = plots.sortie_timeline(ev, baseline, rep=rep)
        bars = fig.axes[0].patches
        drawn = sum(b.get_width() for b in bars if b.get_facecolor()[:3] == hold_rgb)
        told = 0.0
        for pkg, off in zip(flew["package"], flew["t_hours"], strict=True):
            holds = ev[(ev["package"] == pkg) & (ev["event"] == "weather_delay")]["t_hours"]
            told += off - holds.min() if len(holds) else 0.0
        assert drawn == pytest.approx(told), rep
        decided = ev[(ev["event"] == "decision") & (ev["asset"] == "bomber")]["t_hours"].min()
        generated = ev[(ev["event"] == "generation") & (ev["asset"] == "bomber")]["t_hours"]
        if len(generated) and generated.max() <= decided:  # generated before the decision
            assert not any(b.get_facecolor()[:3] == gen_rgb for b in bars), rep
        seen += 1
        plt.close(fig)
    assert seen >= 5
