"""What the lab computes for a page: two policies on the same replication seeds through the same
library function as ``esim compare`` (:func:`sim.compare.run_comparison`), one replication's story of
each, the distribution of the predicted metric, and the documented record to draw beside them.

One run at a time: a second request while one is going is refused (:class:`LabBusy`), never
stacked. A run is bounded by :data:`sim.lab.state.MAX_REPS` replications a policy, each by the
model's event budget, and in time: a run still going after ``max_seconds`` is ended at its next
finished batch with a one-line error (:class:`LabTooSlow`; the batches already handed to the
workers finish in the background).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from sim.backends import Backend
from sim.compare import run_comparison
from sim.lab.levers import LEVERS, current_value, presets
from sim.lab.state import PREDICTABLE, LabError, LabState
from sim.model import events as ev
from sim.posterior import Parameters
from sim.replication import run_replication
from sim.scenario import ScenarioError, load_scenario
from sim.scenario.loader import resolved_toml

#: Metrics the page shows, in order, with words.
SHOWN = {
    "attacks": "attacks",
    "us_killed": "US killed",
    "us_injured": "US injured",
    "strikes": "US strikes",
    "militia_killed": "militia killed",
    "civilians_killed": "civilians killed",
    "halted": "share of campaigns in which the patron orders a halt (halted; not outcome=halted)",
    "max_rung": "highest rung of the ladder",
}

#: Event kinds drawn on a story's timeline.
TIMELINE_EVENTS = (
    ev.ATTACK,
    ev.DECISION,
    ev.WARNING,
    ev.TAKEOFF,
    ev.REFUEL,
    ev.TIME_OVER_TARGET,
    ev.LANDING,
    ev.STRIKE,
    ev.HALT,
    ev.RESUME,
)


class LabBusy(RuntimeError):
    """A run is going: the request is refused, not queued behind it."""


class LabTooSlow(LabError):
    """A run went on past the lab's time limit."""


class Lab:
    """The lab's library side: a scenario file, its presets and a pool of warm workers."""

    def __init__(
        self,
        scenario_file: str | Path,
        policies_folder: str | Path = "scenarios/policies",
        record_folder: str | Path = "calibration/record",
        workers: int = 2,
        max_seconds: float = 30.0,
        parameters: Parameters | None = None,
    ) -> None:
        self.file = Path(scenario_file)
        self.max_seconds = max_seconds
        self.base = load_scenario(self.file)  # a bad file fails here, before the server starts
        #: where the runs' parameters come from (the fitted point, or a posterior's draws); the
        #: stories always tell the fitted point
        self.parameters = parameters or Parameters()
        self.presets = presets(Path(policies_folder)) if Path(policies_folder).is_dir() else {"scenario": []}
        self.record = _record(Path(record_folder), self.base.meta.start_date)
        self.workers = max(1, workers)
        self._backend: Backend | None = None  # a started pool of workers
        self._lock = threading.Lock()
        self._presets_shown: dict[str, dict[str, str]] | None = None

    # -- workers --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker processes now and let them import the model, so the first run is fast."""
        if self.workers > 1 and self._backend is None:
            self._backend = Backend(self.workers).start(wait=True)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    @property
    def backend(self) -> Backend:
        """The started pool's backend; in this process before :meth:`start` (or with 1 worker)."""
        return self._backend if self._backend is not None else Backend(1)

    # -- what the page asks -----------------------------------------------------------------------
    def controls(self) -> dict:
        """The controls with their units, ranges, sources and the opened scenario's values."""
        out = []
        for lever in LEVERS:
            value = current_value(self.base, lever.key)
            out.append(
                {
                    "name": lever.name,
                    "key": lever.key,
                    "label": lever.label,
                    "unit": lever.unit,
                    "kind": lever.kind,
                    "side": lever.side,
                    "low": lever.low,
                    "high": lever.high,
                    "step": lever.step,
                    "choices": list(lever.choices),
                    "source": lever.source,
                    "value": _shown(value),
                }
            )
        return {
            "scenario": str(self.file),
            "scenario_name": self.base.meta.name,
            "parameters": self.parameters.label(),
            "presets": list(self.presets),
            "preset_values": self._preset_values(),
            "controls": out,
            "predictable": PREDICTABLE,
            "record": self.record,
        }

    def _preset_values(self) -> dict[str, dict[str, str]]:
        """Per preset, the value each policy control takes under it (what the page shows before a
        student moves the control; a control left there adds no override)."""
        if self._presets_shown is None:
            shown = {}
            for name, overrides in self.presets.items():
                scenario = load_scenario(self.file, overrides)
                shown[name] = {
                    lever.name: _shown(current_value(scenario, lever.key)) for lever in LEVERS if lever.side
                }
            self._presets_shown = shown
        return self._presets_shown

    def scenarios(self, state: LabState):
        """The two scenarios of a state, validated by the schema (LabError: its one line)."""
        shared = state.shared_overrides()
        try:
            return [
                load_scenario(self.file, [*shared, *state.side_overrides(side, self.presets)])
                for side in ("a", "b")
            ]
        except ScenarioError as exc:
            raise LabError(str(exc)) from None

    def run(self, state: LabState) -> dict:
        """Both policies on replications 0..n-1 of the seed: the page's numbers and stories."""
        if not self._lock.acquire(blocking=False):
            raise LabBusy("a run is going: wait for its result, then run again")
        try:
            return self._run(state)
        finally:
            self._lock.release()

    def _run(self, state: LabState) -> dict:
        started = time.perf_counter()
        scenario_a, scenario_b = self.scenarios(state)
        comp = self._compare(state)
        summary = comp.summary
        names = comp.names
        table = comp.table[comp.table["policy"] == names[1]].set_index("metric")
        rows = []
        for metric, words in SHOWN.items():
            a = summary.loc[summary["policy"] == names[0], metric].to_numpy(dtype=float)
            b = summary.loc[summary["policy"] == names[1], metric].to_numpy(dtype=float)
            t = table.loc[metric]
            rows.append(
                {
                    "metric": metric,
                    "label": words,
                    "a_mean": _num(a.mean()),
                    "b_mean": _num(b.mean()),
                    "a_range": [_num(np.quantile(a, 0.05)), _num(np.quantile(a, 0.95))],
                    "b_range": [_num(np.quantile(b, 0.05)), _num(np.quantile(b, 0.95))],
                    "difference": _num(t["difference"]),
                    "ci": [_num(t["ci_low"]), _num(t["ci_high"])],
                }
            )
        predicted = {
            side: summary.loc[summary["policy"] == names[i], state.predict].to_numpy(dtype=float).tolist()
            for i, side in enumerate(("a", "b"))
        }
        return {
            "query": state.query(),
            "n": state.n,
            "seed": state.seed,
            "labels": {"a": state.a, "b": state.b},
            "overrides": {"shared": comp.overrides, "a": comp.overrides_of(0), "b": comp.overrides_of(1)},
            "parameters": self.parameters.label(),
            "metrics": rows,
            "prediction": _prediction(state, predicted),
            "stories": {
                "a": story(scenario_a, state.seed),
                "b": story(scenario_b, state.seed),
            },
            "seconds": round(time.perf_counter() - started, 2),
        }

    def _compare(self, state: LabState, events: bool = False):
        """The state's two policies through :func:`sim.compare.run_comparison`, as ``esim compare``
        runs them (here each side with its own overrides), in batches small enough for the time
        limit to be checked often."""
        deadline = time.perf_counter() + self.max_seconds

        def in_time(done: int, total: int) -> None:
            if done < total and time.perf_counter() > deadline:
                raise LabTooSlow(
                    f"the run went past {self.max_seconds:g} s with {done} of {total} replications done: "
                    "ask for fewer replications or gentler rates"
                )

        return run_comparison(
            [str(self.file), str(self.file)],
            reps=state.n,
            seed=state.seed,
            backend=self.backend,
            overrides=state.shared_overrides(),
            scenario_overrides=[
                state.side_overrides("a", self.presets),
                state.side_overrides("b", self.presets),
            ],
            metrics=None if events else tuple(SHOWN),
            events=events,
            batch_reps=max(10, math.ceil(state.n / (8 * self.workers))),
            progress=in_time,
            parameters=self.parameters,
        )

    def export_scenario(self, state: LabState, side: str) -> str:
        """One side of a state as a scenario file that ``esim run`` reads as it is: every key
        resolved, headed by what it was made from."""
        scenario = self.scenarios(state)[0 if side == "a" else 1]
        head = (
            f"# exported by esim lab from {self.file} with preset '{state.a if side == 'a' else state.b}'\n"
            f"# and these overrides: {' '.join(self.overrides(state, side)) or 'none'}\n"
            f"# lab state: ?{state.query()}\n"
        )
        return head + resolved_toml(scenario)

    def overrides(self, state: LabState, side: str) -> list[str]:
        return [*state.shared_overrides(), *state.side_overrides(side, self.presets)]

    def export_report(self, state: LabState, folder: Path) -> Path:
        """The HTML report of a state's comparison (events kept), written under ``folder``."""
        from sim.report.html import write_report
        from sim.store import comparison_manifest, write_comparison

        if not self._lock.acquire(blocking=False):
            raise LabBusy("a run is going: wait for its result, then export")
        try:
            self.scenarios(state)  # one line for a bad value, before anything runs
            comp = self._compare(state, events=True)
            info = comparison_manifest(comp, argv=["esim", "lab", f"?{state.query()}"])
            results = folder / "comparison"
            write_comparison(results, comp, info)
            return write_report(results, folder / "report.html")
        finally:
            self._lock.release()


def _shown(value: Any) -> str:
    """A scenario value as a control shows it."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _num(x: float) -> float | None:
    """A number for JSON: None for NaN, rounded to what a page shows."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return round(x, 3)


def _prediction(state: LabState, values: dict[str, list[float]]) -> dict:
    """Where the student's guess falls in each policy's distribution."""
    out: dict[str, Any] = {"metric": state.predict, "label": PREDICTABLE[state.predict], "guess": state.guess}
    for side, v in values.items():
        arr = np.asarray(v, dtype=float)
        arr = arr[~np.isnan(arr)]
        entry: dict[str, Any] = {
            "values": [_num(x) for x in arr],
            "mean": _num(arr.mean()) if arr.size else None,
        }
        if state.guess is not None and arr.size:
            entry["share_below"] = _num(float((arr < state.guess).mean()))
            entry["share_equal"] = _num(float((arr == state.guess).mean()))
        out[side] = entry
    return out


def story(scenario, seed: int, rep: int = 0) -> dict:
    """Replication ``rep``'s narration (the lines of ``esim narrate``) and its timeline in days."""
    from sim.report.narrate import narrate

    result = run_replication(scenario, seed, rep)
    lines = [
        {"when": line.when.isoformat(timespec="minutes"), "kind": line.kind, "text": line.text}
        for line in narrate(scenario, seed, rep, result)
    ]
    timeline = [
        {
            "day": round(r.t_hours / 24.0, 3),
            "event": r.event,
            "rung": r.rung,
            "us_killed": r.us_killed,
            "us_injured": r.us_injured,
            "targets": r.targets,
            "bomber": r.bomber,
        }
        for r in result.events
        if r.event in TIMELINE_EVENTS
    ]
    return {"lines": lines, "timeline": timeline, "horizon_days": scenario.horizon_hours / 24.0}


def _record(folder: Path, start: dt.date) -> dict:
    """The documented record to draw beside a story: the Pentagon's cumulative attack tallies and
    the dates of the US strikes, in days since the scenario's start (empty where not found)."""
    out: dict[str, list] = {"tallies": [], "strikes": []}
    tallies = folder / "dod_attack_tallies_2023.csv"
    strikes = folder / "us_strikes_2023.csv"
    if tallies.is_file():
        with tallies.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                day = (dt.date.fromisoformat(row["as_of_date"]) - start).days + 1.0
                out["tallies"].append(
                    {"day": day, "attacks": int(row["cumulative_attacks"]), "source": row["source_title"]}
                )
    if strikes.is_file():
        with strikes.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                day = (dt.date.fromisoformat(row["date_local"]) - start).days + 0.5
                out["strikes"].append({"day": day, "kind": row["kind"], "source": row["source_title"]})
    return out
