"""Shared fixtures: the baseline scenario, and scenario variants built with --set style overrides."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import sim

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"

settings.register_profile(
    "project",
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("project")


#: The longest tests (minutes), started first so that ``pytest -n auto`` (``make test``) runs the
#: rest beside them instead of after them.
LONGEST_FIRST = ("test_docs_walk.py::test_every_command",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not any(name in item.nodeid for name in LONGEST_FIRST))


@pytest.fixture(scope="session")
def baseline() -> sim.Scenario:
    return sim.load_scenario(BASELINE)


def variant(*overrides: str) -> sim.Scenario:
    """The baseline with ``key.path=value`` overrides."""
    return sim.load_scenario(BASELINE, list(overrides))


TOWER_22 = ("scripted_attacks.tower_22.enabled=true",)  # the baseline's documented attack
#: the baseline's documented attacks of Oct-Dec 2023 (record) switched off
NO_2023_DOCUMENTED = (
    "scripted_attacks.al_tanf_2023_10_18.enabled=false",
    "scripted_attacks.al_asad_2023_11_20.enabled=false",
    "scripted_attacks.erbil_2023_12_25.enabled=false",
)
QUIET = (
    "militia.background_rate_per_day=0",
    "militia.branching_ratio=0",
    "militia.counter_retaliation_attacks_per_severity=0",
    "command.weather.clear_probability=1",
    "command.targeted_strike.standalone_per_day=0",
    "scripted_attacks.tower_22.enabled=false",
    *NO_2023_DOCUMENTED,
)


def tower_22(*overrides: str) -> sim.Scenario:
    """A quiet campaign with one documented attack, Tower 22 (seed: 3 killed, 47 injured)."""
    return variant(*QUIET, *TOWER_22, *overrides)


def rows_of(events, name: str):
    """Rows of one event type from a replication's event rows, as dicts."""
    return [r._asdict() for r in events if r.event == name]


def open_chromium():
    """Headless Chromium driven by selenium; the test is skipped where it is not installed."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "headless Chromium not installed (Debian: apt-get install chromium chromium-driver;"
            " .ci/run installs it)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)
