"""Scenario files: loading, extends, overrides, and one clear error for each kind of bad input."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import sim
from sim.scenario import ScenarioError, load_scenario, parse_override, resolved_toml, scenario_hash
from tests.conftest import BASELINE, ROOT


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def child(tmp_path: Path, body: str, name: str = "child.toml") -> Path:
    return write(tmp_path, name, f'extends = "{BASELINE.as_posix()}"\n{body}')


def error_of(path, overrides=()) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides)
    return info.value


def test_baseline_loads_with_documented_values(baseline):
    assert baseline.meta.start_date.isoformat() == "2023-10-17"
    assert baseline.meta.end_date.isoformat() == "2024-03-31"
    assert baseline.b1b.round_trip_miles == 15000
    assert baseline.b1b.block_time_hours == 44
    assert baseline.command.packages["mass_casualty"].targets == 85
    assert baseline.command.packages["mass_casualty"].facilities == 7
    assert baseline.horizon_hours == 167 * 24


SHIPPED = sorted(p for p in (ROOT / "scenarios").rglob("*.toml") if p.parent.name != "sweeps")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_scenario_validates(path):
    assert load_scenario(path).meta.name


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios" / "sweeps").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_sweep_validates(path):
    from sim.sweep import load_sweep

    sweep = load_sweep(path)
    assert sweep.points >= 1 and sweep.tasks()


def test_extends_changes_only_the_keys_it_sets(tmp_path, baseline):
    path = child(tmp_path, "[militia]\nbranching_ratio = 0.2\n")
    s = load_scenario(path)
    assert s.militia.branching_ratio == 0.2
    assert s.militia.background_rate_per_day == baseline.militia.background_rate_per_day
    assert s.bases == baseline.bases


def test_extends_chain_of_three_files(tmp_path):
    child(tmp_path, "[militia]\nbranching_ratio = 0.2\n", "mid.toml")
    top = write(tmp_path, "top.toml", 'extends = "mid.toml"\n[command]\npolicy = "never"\n')
    s = load_scenario(top)
    assert (s.militia.branching_ratio, s.command.policy) == (0.2, "never")


def test_set_overrides_parse_toml_values_and_fall_back_to_strings():
    assert parse_override("a.b=0.5") == (["a", "b"], 0.5)
    assert parse_override("a=never") == (["a"], "never")
    assert parse_override("a.b=true") == (["a", "b"], True)
    s = sim.load_scenario(BASELINE, ["command.policy=never", "b1b.tanker_pool=1"])
    assert (s.command.policy, s.b1b.tanker_pool) == ("never", 1)


def test_resolved_toml_reloads_to_the_same_scenario(tmp_path, baseline):
    path = write(tmp_path, "resolved.toml", resolved_toml(baseline))
    again = load_scenario(path)
    assert again == baseline
    assert scenario_hash(again) == scenario_hash(baseline)
    assert "extends" not in tomllib.loads(path.read_text())


def test_missing_file(tmp_path):
    err = error_of(tmp_path / "nope.toml")
    assert err.reason == "file not found"
    assert str(err) == f"{tmp_path / 'nope.toml'}: file not found"


def test_malformed_toml(tmp_path):
    err = error_of(write(tmp_path, "bad.toml", "[meta\nname = 1"))
    assert err.file.endswith("bad.toml")
    assert err.reason.startswith("invalid TOML")


def test_unknown_key_names_file_path_and_suggests(tmp_path):
    err = error_of(child(tmp_path, "[militia]\nbranching_ration = 0.3\n"))
    assert err.file.endswith("child.toml")
    assert err.key_path == "militia.branching_ration"
    assert "unknown key" in err.reason and "branching_ratio" in err.reason


def test_a_key_that_moved_says_where_it_went(tmp_path):
    err = error_of(child(tmp_path, "[militia.dormancy]\nmax_probability = 0.5\n"))
    assert err.key_path == "militia.dormancy"
    assert "unknown key" in err.reason and "[patron]" in err.reason


def test_probability_out_of_range(tmp_path):
    err = error_of(child(tmp_path, "[b1b]\nmission_capable_rate = 1.3\n"))
    assert err.key_path == "b1b.mission_capable_rate"
    assert "1.3" in err.reason and "less than or equal to 1" in err.reason


def test_error_names_the_file_that_holds_the_bad_key(tmp_path):
    parent = child(tmp_path, "[militia]\nbranching_ratio = 1.5\n", "parent.toml")
    top = write(tmp_path, "top.toml", 'extends = "parent.toml"\n[meta]\nname = "x"\n')
    err = error_of(top)
    assert err.file == str(parent) and err.key_path == "militia.branching_ratio"


def test_set_error_is_attributed_to_set(tmp_path):
    err = error_of(BASELINE, ["militia.branching_ratio=-1"])
    assert err.file == "--set" and err.key_path == "militia.branching_ratio"


def test_extends_points_nowhere(tmp_path):
    err = error_of(write(tmp_path, "x.toml", 'extends = "missing.toml"\n'))
    assert err.key_path == "extends" and "points to no file" in err.reason


def test_extends_loop(tmp_path):
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    assert "loop" in error_of(tmp_path / "a.toml").reason


def test_missing_required_key(tmp_path):
    fitted = BASELINE.parent.parent / "calibration" / "fitted.toml"
    text = (
        BASELINE.read_text()
        .replace("block_time_hours = 44.0", "")
        .replace('"../calibration/fitted.toml"', f'"{fitted}"')
    )
    err = error_of(write(tmp_path, "x.toml", text))
    assert err.key_path == "b1b.block_time_hours" and err.reason == "required key is missing"


def test_bad_date(tmp_path):
    err = error_of(child(tmp_path, '[meta]\nstart_date = "17 October 2023"\n'))
    assert err.key_path == "meta.start_date"


def test_broken_cross_reference(tmp_path):
    err = error_of(child(tmp_path, '[b1b]\nloadout = "GBU-99"\n'))
    assert err.key_path == "b1b.loadout" and "GBU-99" in err.reason


def test_scripted_attack_outside_the_window(tmp_path):
    body = (
        '[scripted_attacks.x]\ntime = 2025-01-01T00:00:00\nbase = "erbil"\nweapon = "drone"\n'
        "salvo = 1\nus_killed = 0\nus_injured = 0\n"
    )
    err = error_of(child(tmp_path, body))
    assert err.key_path == "scripted_attacks.x.time"


def test_end_before_start(tmp_path):
    err = error_of(child(tmp_path, "[meta]\nend_date = 2023-01-01\n"))
    assert err.key_path == "meta.end_date"


def test_the_scenario_key_reference_is_current_and_complete():
    from sim.scenario.reference import markdown

    text = (ROOT / "docs/scenario-keys.md").read_text(encoding="utf-8")
    assert text == markdown(ROOT / "scenarios/baseline.toml"), (
        "docs/scenario-keys.md is stale: run `make docs`"
    )
    # every key of the schema is there, with its bounds, unit and the baseline's source
    for key, bounds, unit in (
        ("militia.branching_ratio", "0 to below 1", ""),
        ("b1b.block_time_hours", "above 0 to 1,000,000", "hours"),
        ("militia.background_rate_per_day", "0 to 100", "per day"),
        ("command.weather.recheck_hours", "0.01 to 8,760", "hours"),
        ("command.packages.<severity>.targets", "0 to 1,000,000", ""),
    ):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{key}` |"))
        cells = [c.strip() for c in row.split(" | ")]
        assert cells[2] == bounds and cells[3] == unit, row
    row = next(line for line in text.splitlines() if line.startswith("| `b1b.block_time_hours` |"))
    assert "44.0 — article" in row


def _numeric_keys(tree, prefix=""):
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _numeric_keys(v, f"{key}.")
        elif isinstance(v, int | float) and not isinstance(v, bool):
            yield key


NUMERIC_KEYS = sorted(_numeric_keys(load_scenario(BASELINE).model_dump(mode="python")))


def test_every_numeric_key_refuses_non_finite_and_absurd_values_naming_the_key():
    from sim.scenario.loader import _apply_overrides, _load_chain, validate

    origin: dict = {}
    base = _load_chain(BASELINE, origin, ())
    assert len(NUMERIC_KEYS) > 150
    for key in NUMERIC_KEYS:
        for raw in ("inf", "-inf", "nan", "1e300", "-1e300"):
            import copy

            data, where = copy.deepcopy(base), dict(origin)
            _apply_overrides(data, [f"{key}={raw}"], where)
            with pytest.raises(ScenarioError) as err:
                validate(data, where, str(BASELINE))
            assert err.value.file == "--set" and err.value.key_path == key, (key, raw, str(err.value))


@pytest.mark.slow
def test_a_non_finite_value_on_the_command_line_is_one_line_and_writes_nothing(tmp_path):
    from tests.test_cli import esim

    for setting in (
        "militia.background_rate_per_day=inf",
        "drivers.gaza_truce.rate_multiplier=1e308",
        "militia.excitation_decay_days=inf",
        "b1b.tanker_pool=1e9",
    ):
        p = esim("run", str(BASELINE), "-n", "2", "-q", "--set", setting, "--out", str(tmp_path / "o"))
        assert p.returncode == 2 and p.stderr.count("\n") == 1, (setting, p.stderr)
        assert p.stderr.startswith(f"error: --set: {setting.split('=')[0]}:")
    assert list(tmp_path.iterdir()) == []


def test_a_package_of_more_facilities_than_the_scenario_has_is_refused_not_cut():
    from sim.scenario import ScenarioError, load_scenario

    with pytest.raises(ScenarioError, match="12 facilities, but targets.facilities has 7"):
        load_scenario(ROOT / "scenarios/baseline.toml", ["command.packages.mass_casualty.facilities=12"])
    ok = load_scenario(ROOT / "scenarios/baseline.toml", ["command.packages.mass_casualty.facilities=7"])
    assert ok.command.packages["mass_casualty"].facilities == 7
