"""One replication told as a dated story in plain English, from its event log.

Attacks that hurt someone, documented attacks, US decisions, warnings, weather, every step of a B-1B
mission, strike results, the halt and the ladder's turning points are told one by one; attacks
that hurt no one are summed up week by week. Every line comes from an event of the log (the test
checks the narration against the log, not against a frozen text).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sim.model import events as ev
from sim.model.events import COLUMNS, Rung
from sim.replication import run_replication
from sim.scenario.schema import SEVERITY_LEVELS, Scenario


@dataclass(frozen=True)
class Line:
    """One line of a narration: when (local time), what kind, and the text."""

    when: dt.datetime
    kind: str  # an event name, "week" for a weekly summary, "ladder" for a turning point
    text: str


def _when(s: Scenario, t_hours: float) -> dt.datetime:
    start = dt.datetime.combine(s.meta.start_date, dt.time())
    return start + dt.timedelta(seconds=round(t_hours * 3600.0))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def narrate(scenario: Scenario, seed: int, rep: int = 0) -> list[Line]:
    """The story of replication ``rep`` of root seed ``seed``."""
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in run_replication(scenario, seed, rep).events]
    s = scenario
    lines: list[Line] = []
    week: Counter[str] = Counter()
    week_start: dt.date | None = None
    top = int(Rung.QUIET)
    strike_rows: dict[tuple[int, str], list[dict]] = {}

    def flush_week() -> None:
        nonlocal week
        if week and week_start is not None:
            n = sum(week.values())
            kinds = ", ".join(f"{c} {w.replace('_', ' ')}" for w, c in week.most_common())
            first = max(week_start, s.meta.start_date)  # a first week starts on the first day
            lines.append(Line(dt.datetime.combine(first, dt.time()), "week",
                              f"week of {first.isoformat()}: {_plural(n, 'attack')} that hurt "
                              f"no one ({kinds})"))
        week = Counter()

    for i, r in enumerate(rows):
        when = _when(s, r["t_hours"])
        name = r["event"]
        if name == ev.ATTACK:
            monday = (when - dt.timedelta(days=when.weekday())).date()
            if monday != week_start:
                flush_week()
                week_start = monday
            documented = r["detail"].startswith("documented attack")
            if r["severity"] == 0 and not documented:
                week[r["weapon"]] += 1
                continue
            harm = []
            if r["us_killed"]:
                harm.append(f"{r['us_killed']} US killed")
            if r["us_injured"]:
                harm.append(f"{r['us_injured']} injured")
            text = (f"{r['weapon'].replace('_', ' ')} attack on {r['location']} ({r['country']}), "
                    f"{r['salvo']} fired, {r['intercepted']} stopped: "
                    f"{', '.join(harm) or 'no one hurt'} "
                    f"(severity: {SEVERITY_LEVELS[r['severity']].replace('_', ' ')})")
            if documented:
                text += f" [{r['detail']}]"
            lines.append(Line(when, name, text))
        elif name == ev.STRIKE:
            strike_rows.setdefault((r["package"], r["asset"]), []).append(r)
            nxt = rows[i + 1] if i + 1 < len(rows) else None
            if nxt is None or nxt["event"] != ev.STRIKE or (nxt["package"], nxt["asset"]) != (
                    r["package"], r["asset"]) or nxt["t_hours"] != r["t_hours"]:
                lines.append(Line(when, name, _strike_text(strike_rows.pop((r["package"], r["asset"])))))
        elif name == ev.DECISION:
            lines.append(Line(when, name, f"US decision (package {r['package']}): {r['detail']}"))
        elif name in (ev.HALT, ev.HALT_COMPLETE, ev.RESUME):
            lines.append(Line(when, name, r["detail"]))
        elif name == ev.INJURY_REPORT:
            lines.append(Line(when, name, f"US injuries reported on {r['location']} "
                                          f"({r['country']}): {r['detail']}"))
        else:  # the US side's steps: warning, weather, B-1B mission, in-theatre sorties
            lines.append(Line(when, name, f"package {r['package']}: {r['detail'] or name.replace('_', ' ')}"))
        if r["rung"] > top:
            top = r["rung"]
            lines.append(Line(when, "ladder", f"the escalation ladder climbs to "
                                              f"'{Rung(top).label.replace('_', ' ')}'"))
    flush_week()
    lines.sort(key=lambda x: x.when)  # weekly summaries go to the start of their week
    head = Line(_when(s, 0.0), "start",
                f"{s.meta.name}: {s.meta.start_date.isoformat()} to {s.meta.end_date.isoformat()}, "
                f"US policy '{s.command.policy}' (answers {s.command.min_severity.replace('_', ' ')} "
                f"or worse), seed {seed}, replication {rep}")
    return [head, *lines]


def _strike_text(rows: list[dict]) -> str:
    r0 = rows[0]
    if r0["asset"] == "self_defense":  # located at the base whose attackers were engaged
        return (f"self-defence strike, package {r0['package']}: a launch team engaged near "
                f"{r0['location']} ({r0['country']}), {r0['militia_killed']} militia killed "
                f"({r0['detail']})")
    asset = {"bomber": "B-1B and in-theatre", "fighter": "in-theatre", "drone": "armed-drone",
             "self_defense": "self-defence"}.get(
        r0["asset"], r0["asset"])
    targets = sum(r["targets"] for r in rows)
    destroyed = sum(r["destroyed"] for r in rows)
    munitions = sum(r["munitions"] for r in rows)
    militia = sum(r["militia_killed"] for r in rows)
    civilians = sum(r["civilians_killed"] for r in rows)
    places = ", ".join(f"{r['location']} ({r['country']})" for r in rows)
    text = (f"{asset} strike, package {r0['package']}: {destroyed} of {_plural(targets, 'target')} "
            f"destroyed with {munitions} munitions at {places}; {militia} militia and "
            f"{_plural(civilians, 'civilian')} killed")
    details = sorted({r["detail"] for r in rows if r["detail"]})
    return text + (f" ({'; '.join(details)})" if details else "")


def as_text(lines: list[Line]) -> str:
    """The narration as dated lines: ``2024-01-28 05:00  text``."""
    return "\n".join(f"{x.when:%Y-%m-%d %H:%M}  {x.text}" for x in lines) + "\n"
