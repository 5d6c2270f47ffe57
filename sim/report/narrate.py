"""One replication told as a dated story in plain English, from its event log.

The story opens with the US policy as the scenario configures it; then attacks that hurt someone,
documented attacks, US decisions, warnings, weather, every step of a B-1B mission, strike results,
the halt (and any attack that breaks it) and the ladder as it rises and falls, day by day, with the
same definition of the current rung as the ladder plot (:func:`sim.metrics.ladder_by_day`). Attacks
that hurt no one are summed up week by week. It closes with a paragraph: the outcome, the totals and
what drove them. Every line comes from an event of the log (the tests check the narration against
the log, not against a frozen text).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sim.metrics import ladder_by_day
from sim.model import events as ev
from sim.model.events import SEVERITY_WORDS, Rung, plural
from sim.replication import Replication, run_replication
from sim.scenario.schema import SEVERITY_LEVELS, Scenario


@dataclass(frozen=True)
class Line:
    """One line of a narration: when (local time), what kind, and the text."""

    when: dt.datetime
    kind: str  # an event name; "week" (weekly summary), "ladder" (a turning point), "start", "end"
    text: str


def _when(s: Scenario, t_hours: float) -> dt.datetime:
    start = dt.datetime.combine(s.meta.start_date, dt.time())
    return start + dt.timedelta(seconds=round(t_hours * 3600.0))


def _rung(r: int) -> str:
    return Rung(r).label.replace("_", " ")


def policy_text(s: Scenario) -> str:
    """The US policy of a scenario in plain words, as configured (what is answered, and how)."""
    c = s.command
    if c.policy == "never":
        return (
            "never strikes back: no planned strike, no self-defence engagement of launch teams, "
            "no strike on a commander"
        )
    answered = {
        "severity_triggered": f"strikes back after {SEVERITY_WORDS[c.min_severity]} attacks or worse",
        "proportional": "strikes back after every attack, harmless ones included",
        "deaths_only": "strikes back only after attacks that kill US personnel",
    }[c.policy]
    parts = [answered]
    bombers = sorted((lvl for lvl, p in c.packages.items() if p.asset == "bomber"), key=SEVERITY_LEVELS.index)
    if bombers and s.b1b.enabled:
        parts.append(
            f"B-1Bs from {s.b1b.home_base} answer {SEVERITY_WORDS[bombers[0]]} attacks"
            f"{' or worse' if bombers[0] != SEVERITY_LEVELS[-1] else ''}"
        )
    elif bombers:
        parts.append("no B-1B can fly: in-theatre aircraft fly every package")
    if c.warning.enabled:
        parts.append(
            f"a public warning comes before answering {SEVERITY_WORDS[c.warning.min_severity]}"
            " attacks or worse"
        )
    else:
        parts.append("no public warning")
    if c.self_defense.engagement_probability > 0:
        parts.append(
            f"aircraft in theatre engage an attack's launch team with chance "
            f"{c.self_defense.engagement_probability:.0%}"
        )
    if c.run_response.enabled and c.policy in ("severity_triggered", "proportional"):
        parts.append(
            f"a run of {c.run_response.attacks} attacks in {c.run_response.window_days:g} "
            "days draws a planned strike"
        )
    if c.targeted_strike.standalone_per_day > 0:
        parts.append(
            f"armed drones hunt commanders on their own about every "
            f"{1 / c.targeted_strike.standalone_per_day:.0f} days"
        )
    return "; ".join(parts)


#: An attack whose injuries are all reported days after it (late diagnosis, ``injury_reports``).
LATER = "no one reported hurt at the time (its injuries are reported later)"


def narrate(
    scenario: Scenario, seed: int, rep: int = 0, result: Replication | None = None, parameters: str = ""
) -> list[Line]:
    """The story of replication ``rep`` of root seed ``seed`` (``result``: that replication, when
    the caller has already run it); ``parameters`` says where its values come from, in words (the
    opening line ends with it)."""
    if result is None:
        result = run_replication(scenario, seed, rep)
    raw = result.events
    rows: list[dict[str, Any]] = [r._asdict() for r in raw]
    s = scenario
    lines: list[Line] = []
    week: Counter[str] = Counter()
    week_in_halt = 0
    week_start: dt.date | None = None
    strike_rows: dict[tuple[int, str], list[dict]] = {}
    halted_since: float | None = None
    broken = False

    def flush_week() -> None:
        nonlocal week, week_in_halt
        if week and week_start is not None:
            n = sum(week.values())
            kinds = ", ".join(f"{c} {w.replace('_', ' ')}" for w, c in week.most_common())
            first = max(week_start, s.meta.start_date)  # a first week starts on the first day
            during = (
                ""
                if not week_in_halt
                else "; after the halt order"
                if week_in_halt == n
                else f"; {week_in_halt} of them after the halt order"
            )
            lines.append(
                Line(
                    dt.datetime.combine(first, dt.time()),
                    "week",
                    f"week of {first.isoformat()}: {plural(n, 'attack')} that hurt no one ({kinds}){during}",
                )
            )
        week = Counter()
        week_in_halt = 0

    for i, r in enumerate(rows):
        when = _when(s, r["t_hours"])
        name = r["event"]
        if name == ev.ATTACK:
            monday = (when - dt.timedelta(days=when.weekday())).date()
            if monday != week_start:
                flush_week()
                week_start = monday
            documented = bool(r["scripted"])
            if r["severity"] == 0 and not documented:
                week[r["weapon"]] += 1
                week_in_halt += halted_since is not None
                continue
            harm = []
            if r["us_killed"]:
                harm.append(f"{r['us_killed']} US killed")
            if r["us_injured"]:
                harm.append(f"{r['us_injured']} injured")
            text = (
                f"{SEVERITY_WORDS[SEVERITY_LEVELS[r['severity']]]} "
                f"{r['weapon'].replace('_', ' ')} attack on {r['location']} ({r['country']}): "
                f"{r['salvo']} fired, {r['intercepted']} stopped, "
                f"{', '.join(harm) or (LATER if r['severity'] else 'no one hurt')}"
            )
            if documented:
                text += f" [{r['detail']}]"
            if halted_since is not None:
                since = _when(s, halted_since).date().isoformat()
                text = (
                    f"the halt ordered on {since} is broken: {text}"
                    if not broken
                    else f"during the halt: {text}"
                )
                broken = True
            lines.append(Line(when, name, text))
        elif name == ev.STRIKE:
            key = (r["package"], r["asset"])
            strike_rows.setdefault(key, []).append(r)
            nxt = rows[i + 1] if i + 1 < len(rows) else None
            if (
                nxt is None
                or nxt["event"] != ev.STRIKE
                or (nxt["package"], nxt["asset"]) != key
                or nxt["t_hours"] != r["t_hours"]
            ):
                lines.append(Line(when, name, _strike_text(strike_rows.pop(key))))
        elif name == ev.DECISION:
            lines.append(Line(when, name, f"US decision (package {r['package']}): {r['detail']}"))
        elif name == ev.HALT:
            halted_since, broken = r["t_hours"], False
            lines.append(Line(when, name, r["detail"]))
        elif name == ev.RESUME:
            halted_since = None
            lines.append(Line(when, name, r["detail"]))
        elif name == ev.HALT_COMPLETE:
            lines.append(Line(when, name, r["detail"]))
        elif name == ev.INJURY_REPORT:
            lines.append(
                Line(when, name, f"US injuries reported on {r['location']} ({r['country']}): {r['detail']}")
            )
        elif r["package"] >= 0:  # the US side's steps: warning, weather, B-1B mission, sorties
            lines.append(Line(when, name, f"package {r['package']}: {r['detail'] or name.replace('_', ' ')}"))
        else:  # bombers generated on a warning order, before any package exists
            lines.append(Line(when, name, r["detail"] or name.replace("_", " ")))
    flush_week()
    lines.extend(_ladder_lines(raw, rows, s))
    order = {"week": 0, "ladder": 2}
    lines.sort(key=lambda x: (x.when, order.get(x.kind, 1)))  # stable: the log's order within a time
    head = Line(
        _when(s, 0.0),
        "start",
        f"{s.meta.name}: {s.meta.start_date.isoformat()} to {s.meta.end_date.isoformat()}, "
        f"seed {seed}, replication {rep}{'; ' + parameters if parameters else ''}. "
        f"The US {policy_text(s)}.",
    )
    end = Line(_when(s, s.horizon_hours), "end", closing(rows, result.metrics, s))
    return [head, *lines, end]


_EVENT_WORDS = {
    "generation": "B-1Bs generated on a warning order",
    "decision": "US decision",
    "strike": "US strike",
    "attack": "attack",
    "halt": "halt order",
}


def _ladder_lines(raw: Sequence[tuple], rows: list[dict], s: Scenario) -> list[Line]:
    """A line on each day the current rung changes: up at the event that lifts it, down at the
    start of the day the last higher event leaves the ladder's memory."""
    if not raw:
        return []
    _, current = ladder_by_day(raw, s)
    out = []
    before = int(Rung.QUIET)
    for day, rung in enumerate(current.tolist()):
        if rung == before:
            continue
        if rung > before:
            first = next((r for r in rows if int(r["t_hours"] // 24) == day and r["rung"] == rung), None)
            at = _when(s, first["t_hours"]) if first else _when(s, day * 24.0)
            what = (
                f", with the {_EVENT_WORDS.get(first['event'], first['event'].replace('_', ' '))}"
                if first
                else ""
            )
            out.append(
                Line(
                    at,
                    "ladder",
                    f"the escalation ladder rises to '{_rung(rung)}' (from '{_rung(before)}'{what})",
                )
            )
        else:
            out.append(
                Line(
                    _when(s, day * 24.0),
                    "ladder",
                    f"the escalation ladder falls to '{_rung(rung)}' (from '{_rung(before)}'): "
                    f"nothing higher in the last {s.ladder.memory_days:g} days",
                )
            )
        before = rung
    return out


def closing(rows: list[dict], metrics: dict, s: Scenario) -> str:
    """The closing paragraph: the outcome, the totals and what drove them."""
    weeks = s.horizon_hours / (24.0 * 7.0)
    outcome = metrics["outcome"]
    strikes = [r for r in rows if r["event"] == ev.STRIKE]
    kinds = Counter(r["asset"] for r in {(r["package"], r["asset"]): r for r in strikes}.values())
    kind_text = ", ".join(
        plural(
            n,
            {
                "bomber": "B-1B package",
                "fighter": "in-theatre package",
                "drone": "strike on a commander",
                "self_defense": "self-defence engagement",
            }.get(k, k),
            {"drone": "strikes on commanders"}.get(k),
        )
        for k, n in kinds.most_common()
    )
    text = [
        f"In the end: {outcome} ("
        + {
            "halted": "at most a few attacks in the final weeks",
            "contained": "attacks went on without a lethal spiral",
            "spiral": "attacks rising after a lethal attack",
        }[outcome]
        + f"). {plural(metrics['attacks'], 'attack')} in {weeks:.0f} weeks, "
        f"{metrics['us_killed']} US killed and {metrics['us_injured']} injured; "
        f"{plural(metrics['strikes'], 'US strike')}"
        + (f" ({kind_text})" if kind_text else "")
        + f", {metrics['militia_killed']} militia and "
        f"{plural(metrics['civilians_killed'], 'civilian')} killed."
    ]
    halt = next((r for r in rows if r["event"] == ev.HALT), None)
    attacks = [r["t_hours"] for r in rows if r["event"] == ev.ATTACK]
    if halt is not None:
        t = halt["t_hours"]
        before = sum(1 for a in attacks if a < t) / max(t / 168.0, 1e-9)
        after_h = s.horizon_hours - t
        after = sum(1 for a in attacks if a >= t) / max(after_h / 168.0, 1e-9)
        text.append(
            f"What drove it: the patron ordered a halt on {_when(s, t).date().isoformat()} "
            f"({halt['detail'].split(': ')[0].removeprefix('the patron orders a halt ')}); "
            f"attacks fell from {before:.1f} a week before it to {after:.1f} a week after."
        )
    elif s.command.policy == "never" and s.patron.requires_us_response:
        text.append(
            "What drove it: the US never answered, so no US response was ever in "
            "preparation and the patron never had the threat that would make it order a halt."
        )
    elif metrics["us_killed"] < s.patron.us_killed_threshold:
        text.append(
            "What drove it: no attack killed US personnel, so the patron never weighed a "
            "halt; the campaign ran at the militia's own pace."
        )
    elif not s.patron.enabled:
        text.append("What drove it: the patron's halt is switched off in this scenario.")
    else:
        text.append(
            f"What drove it: US personnel were killed, but the patron did not order a halt "
            f"(it orders one with chance {s.patron.order_probability:.0%} once US deaths "
            "and a US response come together)."
        )
    capacity = [r["militia_capacity"] for r in strikes if r["militia_capacity"] == r["militia_capacity"]]
    if capacity:
        low = min(capacity)
        text.append(
            f"Strikes cut the militia's capacity to {low:.0%} of its start at the lowest "
            f"(it rebuilds over about {s.militia.capacity_regeneration_days:g} days)."
        )
    return " ".join(text)


def _places(rows: list[dict]) -> str:
    """Places grouped by country: ``A, B (Syria); C (Iraq)``."""
    by_country: dict[str, list[str]] = {}
    for r in rows:
        places = by_country.setdefault(r["country"], [])
        if r["location"] not in places:
            places.append(r["location"])
    return "; ".join(f"{', '.join(p)} ({c})" for c, p in by_country.items())


def _strike_text(rows: list[dict]) -> str:
    r0 = rows[0]
    if r0["asset"] == "self_defense":  # located at the base whose attackers were engaged
        return (
            f"self-defence strike, package {r0['package']}: a launch team engaged near "
            f"{r0['location']} ({r0['country']}), {r0['militia_killed']} militia killed "
            f"({r0['detail']})"
        )
    asset = {"bomber": "B-1B and in-theatre", "fighter": "in-theatre", "drone": "armed-drone"}.get(
        r0["asset"], r0["asset"]
    )
    targets = sum(r["targets"] for r in rows)
    destroyed = sum(r["destroyed"] for r in rows)
    munitions = sum(r["munitions"] for r in rows)
    militia = sum(r["militia_killed"] for r in rows)
    civilians = sum(r["civilians_killed"] for r in rows)
    text = (
        f"{asset} strike, package {r0['package']}: {destroyed} of {plural(targets, 'target')} "
        f"destroyed with {plural(munitions, 'munition')} at {_places(rows)}; {militia} militia "
        f"and {plural(civilians, 'civilian')} killed"
    )
    details = sorted({r["detail"] for r in rows if r["detail"]})
    return text + (f" ({'; '.join(details)})" if details else "")


def as_text(lines: list[Line]) -> str:
    """The narration as dated lines: ``2024-01-28 05:00  text``; the closing paragraph apart."""
    body = [f"{x.when:%Y-%m-%d %H:%M}  {x.text}" for x in lines if x.kind != "end"]
    end = [f"\n{x.text}" for x in lines if x.kind == "end"]
    return "\n".join(body + end) + "\n"
