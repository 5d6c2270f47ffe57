"""The escalation lab: its state and checks, its numbers against ``esim compare``, its routes, its
limits, and (in headless Chromium) the page a student uses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import BASELINE, ROOT, open_chromium
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

import sim
from sim.lab.app import create_app
from sim.lab.engine import Lab, LabBusy, LabTooSlow
from sim.lab.levers import BY_NAME, LEVERS, preset_overrides
from sim.lab.state import MAX_REPS, LabError, LabState
from sim.scenario.loader import resolved_toml

POLICIES = ROOT / "scenarios" / "policies"


@pytest.fixture(scope="module")
def lab():
    return Lab(BASELINE, POLICIES, ROOT / "calibration" / "record", workers=1)


def without_meta(scenario) -> str:
    data = scenario.model_dump(mode="json")
    data.pop("meta")
    return json.dumps(data, sort_keys=True)


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.toml")), ids=lambda p: p.stem)
def test_a_preset_applied_to_the_baseline_is_its_policy_file(path):
    """A preset is the policy file's own keys: on the baseline it is the file, to the last key."""
    as_preset = sim.load_scenario(BASELINE, preset_overrides(path))
    assert without_meta(as_preset) == without_meta(sim.load_scenario(path))


def test_the_preset_check_sees_a_missing_key():
    never = POLICIES / "never.toml"
    assert without_meta(sim.load_scenario(BASELINE)) != without_meta(sim.load_scenario(never))


def _levels(lever):
    if lever.kind == "bool":
        return st.sampled_from(["true", "false"])
    if lever.kind == "choice":
        return st.sampled_from(lever.choices)
    if lever.kind == "integer":
        return st.integers(int(lever.low), int(lever.high)).map(str)
    return st.floats(lever.low, lever.high, allow_nan=False).map(repr)


@given(
    data=st.data(),
    n=st.integers(1, MAX_REPS),
    seed=st.integers(0, 2**63 - 1),
    guess=st.none() | st.floats(-1e5, 1e5, allow_nan=False),
)
def test_a_state_survives_its_url(data, n, seed, guess):
    presets = {"scenario": [], "never": []}
    state = LabState(n=n, seed=seed, guess=guess, b="scenario")
    for lever in LEVERS:
        if data.draw(st.booleans()):
            value = data.draw(_levels(lever))
            scope = data.draw(st.sampled_from(["a", "b"])) if lever.side else "world"
            target = {"a": state.side_a, "b": state.side_b, "world": state.world}[scope]
            target[lever.name] = lever.literal(value)
    from urllib.parse import parse_qsl

    again = LabState.from_query(dict(parse_qsl(state.query())), presets)
    assert again.query() == state.query()
    assert again.shared_overrides() == state.shared_overrides()
    assert again.side_overrides("b", presets) == state.side_overrides("b", presets)


@pytest.mark.parametrize(
    "query, says",
    [
        ({"n": "0"}, "url: n: 0 is outside 1-500"),
        ({"n": str(MAX_REPS + 1)}, "url: n: 501 is outside 1-500"),
        ({"n": "lots"}, "url: n: 'lots' is not a whole number"),
        ({"a": "../../etc/passwd"}, "url: a: '../../etc/passwd' is not a preset"),
        ({"scenario": "/etc/passwd"}, "url: scenario: not a control of the lab"),
        ({"world.militia_branching_ratio": "1.3"}, "outside the control's range 0-0.95"),
        ({"world.militia_background_rate_per_day": "inf"}, "outside the control's range"),
        ({"world.militia_background_rate_per_day": "nan"}, "outside the control's range"),
        ({"a.militia_branching_ratio": "0.4"}, "set for both policies at once"),
        ({"world.command_policy": "never"}, "set for each policy"),
        ({"b.command_policy": "nuke"}, "'nuke' is not one of severity_triggered"),
        ({"b.command_warning_enabled": "yes"}, "'yes' is not true or false"),
        ({"b.b1b_tanker_pool": "2.5"}, "2.5 is not a whole number"),
        ({"guess": "1e300"}, "url: guess: 1e300 is not a finite number below a million"),
        ({"predict": "everything"}, "url: predict: 'everything' is not one of"),
    ],
)
def test_a_bad_value_is_one_line_naming_it(query, says):
    with pytest.raises(LabError) as info:
        LabState.from_query(query, {"scenario": [], "never": []})
    assert says in str(info.value)
    assert "\n" not in str(info.value)


def test_a_value_the_schema_refuses_is_the_schemas_one_line(lab):
    """The schema has the last word on a value that reaches it (here one the page would not send)."""
    state = LabState()
    state.side_b["b1b_tanker_pool"] = "0"
    with pytest.raises(LabError) as info:
        lab.scenarios(state)
    assert "b1b.tanker_pool" in str(info.value) and "\n" not in str(info.value)


def esim_compare(
    tmp_path: Path, files: list[Path], n: int, seed: int, sets: list[str], parameters: str = "--point"
) -> tuple[dict, dict]:
    """``esim compare FILES -n N --seed S --set ... --out DIR --point`` (or ``--posterior``): per
    metric, each scenario's mean (reference first) and the paired difference of the second."""
    out = tmp_path / f"cmp{parameters}"
    args = [sys.executable, "-m", "sim.cli", "compare", *map(str, files), "-n", str(n), "--seed", str(seed)]
    args.append(parameters)
    for s in sets:
        args += ["--set", s]
    subprocess.run([*args, "--out", str(out), "-q"], check=True, cwd=ROOT, capture_output=True)
    summary = pd.read_parquet(out / "summary.parquet")
    table = pd.read_parquet(out / "comparison.parquet")
    names = list(dict.fromkeys(summary["policy"]))
    means, differences = {}, {}
    for m in table["metric"].unique():
        if m not in summary:
            continue
        means[m] = tuple(round(summary.loc[summary["policy"] == k, m].astype(float).mean(), 3) for k in names)
        row = table[(table["policy"] == names[1]) & (table["metric"] == m)].iloc[0]
        differences[m] = round(float(row["difference"]), 3)
    return means, differences


def test_the_lab_shows_the_numbers_of_esim_compare_on_the_same_seeds(lab, tmp_path):
    """The page's numbers come from the comparison esim compare runs: same seeds, same rows."""
    query = {"b": "strike_big", "n": "12", "seed": "7", "world.militia_branching_ratio": "0.3"}
    result = lab.run(LabState.from_query(query, lab.presets))
    means, differences = esim_compare(
        tmp_path, [BASELINE, POLICIES / "strike_big.toml"], 12, 7, ["militia.branching_ratio=0.3"]
    )
    for row in result["metrics"]:
        assert (row["a_mean"], row["b_mean"]) == means[row["metric"]], row["metric"]
        assert row["difference"] == differences[row["metric"]], row["metric"]
    # a different seed would not have matched: the check can fail
    other = lab.run(LabState.from_query({**query, "seed": "8"}, lab.presets))
    assert [(r["a_mean"], r["b_mean"]) for r in other["metrics"]] != [
        means[r["metric"]] for r in other["metrics"]
    ]


def test_the_lab_over_the_posterior_shows_the_numbers_of_esim_compare_over_it(tmp_path):
    """As esim lab runs by default: over the shipped posterior, the page's numbers are those of
    esim compare over it (same draws, same dice), and not those of the point."""
    from sim.posterior import resolve

    params = resolve("default-posterior", None, BASELINE)
    assert not params.is_point
    over = Lab(BASELINE, POLICIES, ROOT / "calibration" / "record", workers=1, parameters=params)
    query = {"b": "strike_big", "n": "20", "seed": "7"}
    result = over.run(LabState.from_query(query, over.presets))
    files = [BASELINE, POLICIES / "strike_big.toml"]
    means, differences = esim_compare(tmp_path, files, 20, 7, [], "--posterior")
    point, _ = esim_compare(tmp_path, files, 20, 7, [], "--point")
    for row in result["metrics"]:
        assert (row["a_mean"], row["b_mean"]) == means[row["metric"]], row["metric"]
        assert row["difference"] == differences[row["metric"]], row["metric"]
    assert means["attacks"] != point["attacks"]


def test_every_metric_the_page_shows_or_predicts_is_one_the_comparison_has():
    from sim.lab.engine import SHOWN
    from sim.lab.state import PREDICTABLE
    from sim.metrics import NUMERIC_METRICS

    assert set(PREDICTABLE) <= set(NUMERIC_METRICS)
    assert set(SHOWN) <= set(NUMERIC_METRICS)


def test_the_prediction_is_placed_in_the_simulated_distribution(lab):
    state = LabState.from_query({"n": "20", "predict": "attacks", "guess": "150", "b": "never"}, lab.presets)
    p = lab.run(state)["prediction"]
    values = p["b"]["values"]
    assert len(values) == 20
    assert p["b"]["share_below"] == pytest.approx(sum(v < 150 for v in values) / 20)
    assert p["guess"] == 150


def test_a_second_run_while_one_is_going_is_refused(lab):
    lab._lock.acquire()
    try:
        with pytest.raises(LabBusy):
            lab.run(LabState(n=1))
        client = TestClient(create_app(lab))
        r = client.get("/api/run?n=1")
        assert r.status_code == 429
        assert r.json() == {"error": "a run is going: wait for its result, then run again"}
    finally:
        lab._lock.release()
    assert lab.run(LabState(n=2))["n"] == 2


def test_a_run_past_the_time_limit_ends_with_one_line_and_frees_the_lab():
    """At the extremes of the controls a replication takes about 0.2 s: 40 of each policy would
    take seconds; a lab with no time to spare ends the run after its first batch."""
    extreme = {
        "n": "40",
        "world.militia_background_rate_per_day": "10",
        "world.militia_branching_ratio": "0.95",
        "b": "never",
    }
    hurried = Lab(BASELINE, POLICIES, workers=1, max_seconds=0.0)
    state = LabState.from_query(extreme, hurried.presets)
    started = time.perf_counter()
    with pytest.raises(LabTooSlow, match=r"went past 0 s with 10 of 80 replications done: ask for fewer"):
        hurried.run(state)
    assert time.perf_counter() - started < 5.0
    assert hurried._lock.acquire(blocking=False)  # the lock was given back
    hurried._lock.release()
    client = TestClient(create_app(hurried))
    assert client.get("/api/run?" + state.query()).status_code == 503


def test_the_same_run_with_time_to_spare_finishes():
    patient = Lab(BASELINE, POLICIES, workers=1, max_seconds=600.0)
    state = LabState.from_query(
        {"n": "2", "world.militia_branching_ratio": "0.95", "b": "never"}, patient.presets
    )
    assert patient.run(state)["n"] == 2


def test_an_exported_scenario_runs_as_the_lab_ran_it(lab, tmp_path):
    state = LabState.from_query({"b": "warn_first", "b.b1b_tanker_pool": "1"}, lab.presets)
    path = tmp_path / "b.toml"
    path.write_text(lab.export_scenario(state, "b"))
    assert resolved_toml(sim.load_scenario(path)) == resolved_toml(lab.scenarios(state)[1])
    assert "b1b.tanker_pool=1" in path.read_text().splitlines()[1]


def test_the_routes(lab):
    client = TestClient(create_app(lab))
    assert "escalation-sim lab" in client.get("/").text
    controls = client.get("/api/controls").json()
    assert {c["name"] for c in controls["controls"]} == set(BY_NAME)
    assert controls["record"]["tallies"][0]["attacks"] == 13  # the Pentagon's tally of 24 Oct 2023
    story = client.get("/api/story?seed=3").json()
    assert story["lines"][0]["text"].startswith("baseline:")
    assert client.get("/api/run?n=1000").json() == {"error": "url: n: 1000 is outside 1-500"}
    assert client.get("/api/run?n=1000").status_code == 400
    toml = client.get("/api/scenario?side=b&b=never")
    assert toml.headers["content-disposition"] == 'attachment; filename="lab_b.toml"'
    assert 'policy = "never"' in toml.text
    assert client.get("/api/scenario?side=c").status_code == 400


class running_lab:
    """``esim lab`` in a subprocess on a free port, until the ``with`` block ends."""

    def __init__(self, workers: int = 1, host: str | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.workers = workers
        self.host = host

    def __enter__(self) -> running_lab:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sim.cli", "lab", "--port", str(self.port), "-w", str(self.workers)]
            + (["--host", self.host] if self.host else []),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for(f"http://127.0.0.1:{self.port}/api/controls")
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.stdout, self.stderr = self.proc.communicate(timeout=10)


def test_stopping_esim_lab_stops_its_worker_processes():
    with running_lab(workers=2) as server:
        children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True)
        pids = [int(p) for p in children.stdout.split()]
        assert len(pids) >= 2  # the two workers (and multiprocessing's resource tracker)
    # SIGTERM ended the server; its workers went with it (the resource tracker follows within
    # moments of the server's exit): none is left running
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        threading.Event().wait(0.1)
    assert [pid for pid in pids if running(pid)] == []


def running(pid: int) -> bool:
    """Whether a process runs (an exited one not yet reaped, a zombie, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_esim_lab_listens_on_this_machine_only_unless_told(tmp_path):
    with running_lab() as lab_server:
        listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        assert f"127.0.0.1:{lab_server.port}" in listening
        assert f"0.0.0.0:{lab_server.port}" not in listening
    assert lab_server.stderr == ""
    assert lab_server.stdout.startswith(f"escalation lab on http://127.0.0.1:{lab_server.port}/")
    with running_lab(host="0.0.0.0") as everywhere:
        assert (
            f"0.0.0.0:{everywhere.port}"
            in subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        )
    assert everywhere.stderr.startswith(
        f"warning: listening on 0.0.0.0: anyone who can reach this machine on port {everywhere.port}"
    )


def test_esim_lab_with_a_bad_scenario_or_a_busy_port_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "nowhere.toml"\n')
    r = subprocess.run(
        [sys.executable, "-m", "sim.cli", "lab", "--scenario", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "nowhere.toml" in r.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        taken.listen()
        r = subprocess.run(
            [sys.executable, "-m", "sim.cli", "lab", "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    assert r.returncode == 2
    assert r.stderr == f"error: --port: cannot listen on 127.0.0.1:{port} (Address already in use)\n"


def _wait_for(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            threading.Event().wait(0.2)


@pytest.mark.slow
def test_a_student_runs_two_policies_in_chromium_and_sees_esim_compares_numbers(tmp_path):
    """Drive the page as a student does: open a shared URL, move a control, predict, run, read."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser = open_chromium()  # skips the test where Chromium is not installed
    shots = ROOT / "results" / "lab-screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with running_lab(workers=2) as server:
            port = server.port
            browser.set_window_size(1300, 1000)
            browser.get(f"http://127.0.0.1:{port}/?b=deaths_only&n=40&seed=11")  # a shared link
            WebDriverWait(browser, 60).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
            )
            assert "step 1 of" in browser.find_element(By.ID, "story-step").text
            browser.find_element(By.ID, "story-next").click()
            assert "step 2 of" in browser.find_element(By.ID, "story-step").text
            browser.save_screenshot(str(shots / "1-story.png"))
            # move a control of the world, and one of policy B
            rate = browser.find_element(By.ID, "world.militia_branching_ratio")
            rate.clear()
            rate.send_keys("0.3")
            Select(browser.find_element(By.ID, "b")).select_by_value("strike_big")
            # predict first: running without a prediction is refused by the page
            browser.find_element(By.ID, "run").click()
            assert "prediction first" in browser.find_element(By.ID, "error").text
            browser.find_element(By.ID, "guess").send_keys("3")
            browser.find_element(By.ID, "run").click()
            WebDriverWait(browser, 120).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done")
            )
            browser.save_screenshot(str(shots / "2-results.png"))
            assert "militia_branching_ratio=0.3" in browser.current_url
            assert "b=strike_big" in browser.current_url
            page = {
                row.get_attribute("id")[4:]: (
                    float(row.find_element(By.CLASS_NAME, "a-mean").get_attribute("data-value")),
                    float(row.find_element(By.CLASS_NAME, "b-mean").get_attribute("data-value")),
                )
                for row in browser.find_elements(By.CSS_SELECTOR, "#result-table tbody tr")
            }
            assert "You predicted 3" in browser.find_element(By.ID, "verdict").text
            browser.set_window_size(400, 900)  # a phone: the page reflows, nothing runs off the side
            assert browser.execute_script(
                "return document.documentElement.scrollWidth <= window.innerWidth"
            ), "the page is wider than a phone's screen"
            browser.save_screenshot(str(shots / "3-phone.png"))
            logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            assert logs == [], logs
    finally:
        browser.quit()
    means, _ = esim_compare(  # esim lab, like esim compare, runs over the posterior by default
        tmp_path,
        [BASELINE, POLICIES / "strike_big.toml"],
        40,
        11,
        ["militia.branching_ratio=0.3"],
        "--posterior",
    )
    assert page == {m: means[m] for m in page}
    assert len(page) == 8
    assert (shots / "2-results.png").stat().st_size > 10_000


def test_a_sides_controls_show_its_presets_values(lab):
    shown = lab.controls()["preset_values"]
    assert shown["strike_big"]["command_packages_deaths_targets"] == "85"
    assert shown["scenario"]["command_packages_deaths_targets"] == str(
        sim.load_scenario(BASELINE).command.packages["deaths"].targets
    )
    assert shown["never"]["command_policy"] == "never"
    assert shown["no_bomber"]["b1b_enabled"] == "false"


@pytest.mark.slow
def test_the_report_export_says_what_ran_with_each_sides_overrides(lab, tmp_path):
    state = LabState.from_query({"b": "never", "n": "5", "b.b1b_tanker_pool": "2"}, lab.presets)
    page = lab.export_report(state, tmp_path).read_text()
    info = json.loads((tmp_path / "comparison" / "manifest.json").read_text())
    assert info["scenarios"][1]["overrides"] == ['command.policy="never"', "b1b.tanker_pool=2"]
    assert info["scenarios"][0]["overrides"] == []
    assert info["reps"] == 5
    assert "esim lab" in page and "b.b1b_tanker_pool=2" in page


def test_the_lab_names_the_patrons_halt_apart_from_the_quiet_ending():
    from sim.lab.engine import SHOWN
    from sim.lab.state import PREDICTABLE

    # `halted` is the patron's order; `outcome=halted` is a campaign that ended quiet (docs/glossary.md)
    assert "patron orders a halt" in SHOWN["halted"] and "outcome=halted" in SHOWN["halted"]
    assert "patron orders a halt" in PREDICTABLE["halted"]


def test_esim_lab_prints_its_address_only_once_it_answers():
    """The line a student copies the address from comes once the page answers, not seconds before."""
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "lab", "--port", str(port), "-w", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    try:
        line = proc.stdout.readline()  # blocks until the lab prints it
        assert f"escalation lab on http://127.0.0.1:{port}/" in line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/controls", timeout=5) as answer:
            assert answer.status == 200  # at once: no retry, no wait
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
