"""Figures of a run, as matplotlib figures (usable in a notebook) and as PNG and SVG files.

Each function takes frames of a result folder (see :func:`load_results`) and returns a
``matplotlib.figure.Figure``; :func:`plot_folder` draws every figure that the folder has data for.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # files, not windows; a notebook keeps its own (inline) backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.metrics import current_rungs  # noqa: E402
from sim.model.events import Rung  # noqa: E402
from sim.scenario.loader import load_scenario  # noqa: E402
from sim.scenario.schema import Scenario  # noqa: E402

RUNG_COLOURS = ("#f0f0f0", "#c6dbef", "#9ecae1", "#6baed6", "#fb6a4a", "#de2d26", "#67000d")


@dataclass
class Results:
    """What a result folder holds: the scenario as run (and each scenario of a comparison), the
    summaries, the events, a comparison, the manifest (what ran) and the sources of each value."""

    folder: Path
    scenario: Scenario
    summary: pd.DataFrame
    events: pd.DataFrame | None
    comparison: pd.DataFrame | None
    manifest: dict = field(default_factory=dict)
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    sources: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """One line that says exactly what ran (see :func:`sim.store.run_label`)."""
        from sim.store import run_label

        if self.manifest:
            return run_label(self.manifest)
        return f"{self.scenario.meta.name}: {len(self.summary)} replications"

    @property
    def policies(self) -> list[str]:
        """The scenarios of a comparison, in order; one name for a plain run."""
        if "policy" in self.summary and self.summary["policy"].nunique() > 1:
            return list(dict.fromkeys(self.summary["policy"]))
        return [self.scenario.meta.name]


def load_results(folder: str | Path) -> Results:
    """Read a folder written by ``esim run`` (or ``esim compare --out``); a folder whose files are
    not those its manifest lists is a :class:`sim.folders.FolderError`."""
    import json

    from sim.folders import FolderError, verify_folder

    folder = Path(folder)
    if (folder / "manifest.json").is_file():
        problems = verify_folder(folder)
        if problems:
            raise FolderError(
                f"{folder}: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                + ": the folder was changed after it was written; run it again"
            )
    scenario = load_scenario(folder / "scenario.resolved.toml")
    summary = pd.read_parquet(folder / "summary.parquet")
    events = pd.read_parquet(folder / "events.parquet") if (folder / "events.parquet").is_file() else None
    comp = folder / "comparison.parquet"
    info = folder / "manifest.json"
    manifest = json.loads(info.read_text(encoding="utf-8")) if info.is_file() else {}
    scenarios: dict[str, Scenario] = {}
    sources: dict[str, list[dict]] = {}
    for entry in manifest.get("scenarios", []):
        stem = entry["name"].replace(":", "-")
        resolved = folder / "scenarios" / f"{stem}.resolved.toml"
        if resolved.is_file():
            scenarios[entry["name"]] = load_scenario(resolved)
        src = folder / "scenarios" / f"{stem}.sources.json"
        if src.is_file():
            sources[entry["name"]] = json.loads(src.read_text(encoding="utf-8"))
    if not scenarios:
        scenarios[scenario.meta.name] = scenario
        src = folder / "scenario.sources.json"
        if src.is_file():
            sources[scenario.meta.name] = json.loads(src.read_text(encoding="utf-8"))
    return Results(
        folder,
        scenario,
        summary,
        events,
        pd.read_parquet(comp) if comp.is_file() else None,
        manifest,
        scenarios,
        sources,
    )


def _dates(s: Scenario, days: np.ndarray) -> np.ndarray:
    """Calendar days (numpy datetime64[D]) of the scenario's day numbers."""
    return np.datetime64(s.meta.start_date, "D") + np.asarray(days, dtype="timedelta64[D]")


def _groups(frame: pd.DataFrame, name: str) -> list[tuple[str, pd.DataFrame]]:
    """``(policy, rows)`` per scenario of a comparison, in order; one group named ``name`` else."""
    if "policy" in frame and frame["policy"].nunique() > 1:
        labels = frame["policy"].astype(str)
        order = list(pd.unique(labels))
        return [(p, frame[labels.to_numpy() == p]) for p in order]
    return [(name, frame)]


def _daily_counts(events: pd.DataFrame, s: Scenario, kind: str) -> np.ndarray:
    """Array (replications x days) of the number of ``kind`` events per day."""
    n_days = int(round(s.horizon_hours / 24.0))
    reps = np.sort(events["rep"].unique())
    out = np.zeros((len(reps), n_days))
    rows = events[events["event"] == kind]
    if kind == "strike":  # a package's facilities are one strike
        rows = rows.drop_duplicates(["rep", "package", "asset"])
    day = np.minimum((rows["t_hours"].to_numpy() // 24).astype(int), n_days - 1)
    idx = np.searchsorted(reps, rows["rep"].to_numpy())
    np.add.at(out, (idx, day), 1)
    return out


def _footer(fig: Figure, label: str | None) -> None:
    """What ran, in small print at the bottom of a figure."""
    if label:
        fig.text(0.01, 0.005, label, fontsize=6.5, color="#555", ha="left", va="bottom", wrap=True)


def _title(s: Scenario, what: str, n: int | None = None) -> str:
    return f"{s.meta.name}: {what}" + (f" ({n} replications)" if n is not None else "")


POLICY_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def cumulative_attacks(
    events: pd.DataFrame,
    s: Scenario,
    documented: list[tuple[dt.date, float, str]] | None = None,
    label: str | None = None,
) -> Figure:
    """Cumulative attacks: median and 5-95% band over replications (one of each per scenario of a
    comparison), with documented points."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    groups = _groups(events, s.meta.name)
    n = 0
    for i, (name, rows) in enumerate(groups):
        cum = np.cumsum(_daily_counts(rows, s, "attack"), axis=1)
        n = cum.shape[0]
        x = _dates(s, np.arange(cum.shape[1]))
        lo, med, hi = np.percentile(cum, [5, 50, 95], axis=0)
        colour = POLICY_COLOURS[i % len(POLICY_COLOURS)]
        what = f"{name}: " if len(groups) > 1 else ""
        ax.fill_between(x, lo, hi, alpha=0.2, color=colour, label=f"{what}5-95% of replications")
        ax.plot(x, med, lw=2, color=colour, label=f"{what}median")
    for when, value, text in documented or []:
        ax.plot([np.datetime64(when, "D")], [value], "o", color="black")
        ax.annotate(text, (when, value), textcoords="offset points", xytext=(-10, 8), ha="right", fontsize=8)
    ax.set_title(
        _title(s, "cumulative militia attacks", n)
        if len(groups) == 1
        else f"cumulative militia attacks per scenario ({n} replications each)"
    )
    ax.set_ylabel("attacks")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _footer(fig, label)
    return fig


def weekly_attacks_and_strikes(events: pd.DataFrame, s: Scenario, label: str | None = None) -> Figure:
    """Mean attacks and US strikes per week, over replications; one panel per scenario of a
    comparison, on the same axes. Both axes start at 0."""
    groups = _groups(events, s.meta.name)
    fig, axes = plt.subplots(
        len(groups), 1, figsize=(8, 2.6 * len(groups) + 1.2), squeeze=False, sharex=True, sharey=True
    )
    weekly = []
    for _, rows in groups:
        attacks = _daily_counts(rows, s, "attack").mean(axis=0)
        strikes = _daily_counts(rows, s, "strike").mean(axis=0)
        starts = np.arange(0, len(attacks), 7)
        weekly.append((np.add.reduceat(attacks, starts), np.add.reduceat(strikes, starts), starts))
    top_strikes = max(1.0, max(float(w[1].max()) for w in weekly) * 1.15)
    twins = []
    for ax, (name, _), (wa, ws, starts) in zip(axes[:, 0], groups, weekly, strict=True):
        x = _dates(s, starts)
        ax.bar(x, wa, width=5, color="#6baed6", label="militia attacks")
        ax2 = ax.twinx()
        twins.append(ax2)
        ax2.plot(x, ws, "o-", color="#de2d26", label="US strikes")
        ax2.set_ylim(0, top_strikes)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("attacks / week")
        ax2.set_ylabel("US strikes / week")
        ax.set_title(
            name
            if len(groups) > 1
            else _title(s, "weekly attacks against US strikes (means over replications)"),
            fontsize=10,
        )
    handles = axes[0, 0].get_legend_handles_labels()[0] + twins[0].get_legend_handles_labels()[0]
    axes[0, 0].legend(handles, ["militia attacks (mean)", "US strikes (mean)"], loc="upper right", fontsize=7)
    if len(groups) > 1:
        fig.suptitle("weekly attacks against US strikes, means over replications")
    fig.autofmt_xdate()
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _footer(fig, label)
    return fig


def ladder_shares(events: pd.DataFrame, s: Scenario) -> np.ndarray:
    """Array (rungs x days): the share of replications whose current rung is each rung, day by day
    (the current rung as :func:`sim.metrics.ladder_by_day` defines it)."""
    n_days = int(round(s.horizon_hours / 24.0))
    reps = np.sort(events["rep"].unique())
    daily = np.zeros((len(reps), n_days), dtype=np.int64)
    idx = np.searchsorted(reps, events["rep"].to_numpy())
    day = np.minimum((events["t_hours"].to_numpy() // 24.0).astype(np.int64), n_days - 1)
    np.maximum.at(daily, (idx, day), events["rung"].to_numpy().astype(np.int64))
    current = current_rungs(daily, s)  # replications x days
    shares = np.stack([(current == r).sum(axis=0) for r in range(len(Rung))]).astype(float)
    return shares / max(len(reps), 1)


def ladder_over_time(events: pd.DataFrame, s: Scenario, label: str | None = None) -> Figure:
    """Share of replications at each rung of the escalation ladder, day by day (one panel per
    scenario of a comparison); the legend sits beside the plot, not over it."""
    groups = _groups(events, s.meta.name)
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 2.4 * len(groups) + 1.4), squeeze=False, sharex=True)
    n_days = int(round(s.horizon_hours / 24.0))
    for ax, (name, rows) in zip(axes[:, 0], groups, strict=True):
        ax.stackplot(
            _dates(s, np.arange(n_days)),
            ladder_shares(rows, s),
            colors=RUNG_COLOURS,
            labels=[r.label.replace("_", " ") for r in Rung],
        )
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of runs")
        ax.set_title(name if len(groups) > 1 else _title(s, "the escalation ladder over time"), fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles[::-1], labels[::-1], loc="center right", fontsize=7, title="current rung", title_fontsize=7
    )
    if len(groups) > 1:
        fig.suptitle("the escalation ladder over time")
    fig.autofmt_xdate()
    fig.tight_layout(rect=(0, 0.04, 0.8, 1))
    _footer(fig, label)
    return fig


def _bomber_rep(events: pd.DataFrame, rep: int | None) -> int | None:
    flown = events.loc[(events["event"] == "takeoff") & (events["asset"] == "bomber"), "rep"]
    if rep is not None:
        return rep
    return int(flown.iloc[0]) if len(flown) else None


def sortie_timeline(
    events: pd.DataFrame, s: Scenario, rep: int | None = None, label: str | None = None
) -> Figure:
    """The B-1B missions: left, each bomber package of one replication (the first that flew one,
    unless ``rep`` says), on a scale of hours from its decision: deciding, generation, outbound
    legs with their refuellings, time over target, inbound legs, landing; right, over every
    replication, the hours from a bomber decision to its time over target."""
    every = events  # a comparison's every scenario, for the right panel
    several = "policy" in events and events["policy"].nunique() > 1
    if several:  # the left panel tells the first scenario that flew
        flew = events[(events["event"] == "takeoff") & (events["asset"] == "bomber")]
        first = str(flew["policy"].iloc[0]) if len(flew) else str(events["policy"].iloc[0])
        events = events[events["policy"].astype(str) == first]
        name = f"{first} (the first scenario whose B-1Bs flew)"
    else:
        name = s.meta.name
    bombers = events[events["asset"] == "bomber"]
    rep = _bomber_rep(events, rep)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [2.2, 1]})
    colours = {
        "deciding": "#e0e0e0",
        "generation": "#bdbdbd",
        "weather hold": "#fdae6b",
        "outbound": "#6baed6",
        "over target": "#de2d26",
        "inbound": "#9ecae1",
    }
    mine = bombers[bombers["rep"] == rep] if rep is not None else bombers.iloc[0:0]
    packages = sorted(
        p
        for p in mine["package"].unique()
        if p >= 0 and (mine[(mine["package"] == p)]["event"] == "takeoff").any()
    )
    gen_rows = mine[mine["event"] == "generation"]
    start = s.meta.start_date
    labels = []
    shown = set()
    for y, pkg in enumerate(packages):
        p = mine[mine["package"] == pkg]

        def t(name, how=min, p=p):
            v = p.loc[p["event"] == name, "t_hours"]
            return float(how(v)) if len(v) else None

        decided, off, tot, land = t("decision"), t("takeoff"), t("time_over_target"), t("landing", max)
        origin = decided if decided is not None else off
        gen = t("generation")
        if gen is None and len(gen_rows):  # generated on a warning order, before the decision
            before = gen_rows[gen_rows["t_hours"] <= (off or 0.0)]
            gen = float(before["t_hours"].max()) if len(before) else None
        over = None if tot is None else tot + s.b1b.time_over_target_hours
        # from the decision to take-off: deciding, then generation (if the bombers were generated
        # after the decision; on a warning order before it, there is none to draw), and each hold
        # for weather over the targets (``weather_delay``) until the next check or take-off
        holds = events[(events["package"] == pkg) & (events["event"] == "weather_delay")]["t_hours"]
        marks = {origin: "deciding"}
        if gen is not None and gen > origin:
            marks[gen] = "generation"
        for h in sorted(float(x) for x in holds):
            if off is None or h < off:
                marks[h] = "weather hold"  # a hold at the decision's own hour replaces deciding
        times = sorted(marks)
        segments = [(marks[a], a, b) for a, b in zip(times, [*times[1:], off], strict=True)]
        segments += [("outbound", off, tot), ("over target", tot, over), ("inbound", over, land)]
        for kind, a, b in segments:
            if a is not None and b is not None and b > a:
                ax.barh(
                    y,
                    b - a,
                    left=a - origin,
                    color=colours[kind],
                    height=0.6,
                    label=None if kind in shown else kind,
                )
                shown.add(kind)
        refuel = (p.loc[p["event"] == "refuel", "t_hours"].drop_duplicates() - origin).to_numpy()
        ax.plot(
            refuel,
            [y] * len(refuel),
            "k|",
            markersize=16,
            label=None if "refuelling" in shown else "refuelling",
        )
        shown.add("refuelling")
        when = start + dt.timedelta(hours=origin)
        labels.append(f"package {int(pkg)}\n{when:%Y-%m-%d}")
    if packages:
        ax.set_yticks(range(len(packages)), labels, fontsize=8)
        ax.set_ylim(-0.7, len(packages) - 0.3)
        ax.set_xlim(left=0)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=6, fontsize=7, frameon=False)
    else:
        ax.text(
            0.5,
            0.5,
            "no B-1B mission flew in this scenario",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_yticks([])
    ax.set_xlabel("hours from the US decision")
    ax.set_title(
        f"{name}: B-1B missions of replication {rep}" if rep is not None else f"{name}: B-1B missions",
        fontsize=10,
    )
    groups = (
        [(str(k), g) for k, g in every.groupby(every["policy"].astype(str), sort=False)]
        if several
        else [(s.meta.name, every)]
    )
    medians, none = [], []
    for i, (scenario_name, g) in enumerate(groups):
        b = g[g["asset"] == "bomber"]
        dec = b[b["event"] == "decision"][["rep", "package", "t_hours"]]
        hit = b[b["event"] == "time_over_target"][["rep", "package", "t_hours"]]
        lag = dec.merge(hit, on=["rep", "package"], suffixes=("_decision", "_target"))
        hours = (lag["t_hours_target"] - lag["t_hours_decision"]).to_numpy()
        if not len(hours):
            none.append(scenario_name)
            continue
        colour = POLICY_COLOURS[i % len(POLICY_COLOURS)] if several else "#6baed6"
        said = f"median {np.median(hours):.0f} h, {len(hours)} missions"
        ax2.hist(
            hours, bins=20, color=colour, alpha=0.6 if several else 1.0, label=f"{scenario_name}: {said}"
        )
        ax2.axvline(float(np.median(hours)), color=colour if several else "black", lw=1)
        medians.append(said)
    if medians:
        ax2.set_title(
            "decision to bombs on target\n(every mission of every replication)"
            + ("" if several else f"\n({medians[0]})")
            + (f"\nno mission: {', '.join(none)}" if none else ""),
            fontsize=8,
        )
        if several:
            ax2.legend(fontsize=7, frameon=False)
    else:
        ax2.set_title("no B-1B mission in any replication", fontsize=9)
    ax2.set_xlabel("hours")
    ax2.set_ylabel("missions")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _footer(fig, label)
    return fig


def outcomes(summary: pd.DataFrame, s: Scenario, label: str | None = None) -> Figure:
    """Outcomes (halted, contained, spiral) and attacks per replication: one bar group and one
    histogram per scenario of a comparison, never pooled."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8))
    names = ["halted", "contained", "spiral"]
    groups = _groups(summary, s.meta.name)
    width = 0.8 / len(groups)
    values = summary["attacks"].dropna()
    bins = np.linspace(values.min(), values.max() + 1, 31) if len(values) else 10
    for i, (name, rows) in enumerate(groups):
        shares = [float((rows["outcome"] == n).mean()) for n in names]
        colour = POLICY_COLOURS[i % len(POLICY_COLOURS)] if len(groups) > 1 else None
        x = np.arange(len(names)) + (i - (len(groups) - 1) / 2) * width
        ax1.bar(x, shares, width=width, label=name, color=colour or ["#31a354", "#fdae6b", "#de2d26"])
        ax2.hist(
            rows["attacks"].dropna(),
            bins=bins,
            histtype="step" if len(groups) > 1 else "bar",
            lw=1.5,
            color=colour or "#6baed6",
            label=name,
        )
    ax1.set_xticks(range(len(names)), names)
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("share of replications")
    ax1.set_title("outcome")
    ax2.set_xlabel("attacks per replication")
    ax2.set_ylabel("replications")
    ax2.set_title("attacks")
    if len(groups) > 1:
        ax1.legend(fontsize=7)
        ax2.legend(fontsize=7)
        n = len(groups[0][1])
        fig.suptitle(f"outcomes per scenario ({n} replications each)")
    else:
        fig.suptitle(_title(s, "outcomes", len(summary)))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _footer(fig, label)
    return fig


def forest(
    comparison: pd.DataFrame,
    metrics: tuple[str, ...] = ("attacks", "us_killed", "militia_killed", "outcome=halted"),
    label: str | None = None,
) -> Figure:
    """Paired differences from the reference scenario, with 95% confidence intervals."""
    comp = comparison[comparison["metric"].isin(metrics)]
    policies = list(dict.fromkeys(comp["policy"]))
    reference, others = policies[0], policies[1:]
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3 * len(metrics), 0.6 * len(others) + 2.1), squeeze=False
    )
    for ax, m in zip(axes[0], metrics, strict=True):
        rows = comp[comp["metric"] == m].set_index("policy")
        for y, pol in enumerate(others):
            if pol not in rows.index or rows.loc[pol, "difference"] != rows.loc[pol, "difference"]:
                continue
            r = rows.loc[pol]
            lo = r["ci_low"] if r["ci_low"] == r["ci_low"] else r["difference"]
            hi = r["ci_high"] if r["ci_high"] == r["ci_high"] else r["difference"]
            ax.errorbar(  # each scenario in its colour of every other figure (the reference is 0)
                r["difference"],
                y,
                xerr=[[r["difference"] - lo], [hi - r["difference"]]],
                fmt="o",
                color=POLICY_COLOURS[(y + 1) % len(POLICY_COLOURS)],
            )
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(range(len(others)), others if ax is axes[0][0] else [""] * len(others))
        ax.set_ylim(-0.5, len(others) - 0.5)
        ax.set_title(m, fontsize=9)
    fig.suptitle(f"difference from '{reference}' (same seeds, 95% CI)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    _footer(fig, label)
    return fig


def documented_points(s: Scenario) -> list[tuple[dt.date, float, str]]:
    """Documented cumulative attack counts inside the scenario's dates (the article: more than 170 by the
    February strikes)."""
    when = dt.date(2024, 2, 2)
    if s.meta.start_date <= when <= s.meta.end_date and s.meta.start_date == dt.date(2023, 10, 17):
        return [(when, 171.0, "article: more than 170 attacks by 2 Feb 2024")]
    return []


def figures(results: Results) -> dict[str, Figure]:
    """Every figure the folder has data for, by file stem; each carries the folder's label (what
    ran) in small print."""
    s = results.scenario
    label = results.label
    out: dict[str, Figure] = {}
    if results.events is not None and len(results.events):
        ev = results.events
        out["cumulative_attacks"] = cumulative_attacks(ev, s, documented_points(s), label=label)
        out["weekly_attacks_strikes"] = weekly_attacks_and_strikes(ev, s, label=label)
        out["escalation_ladder"] = ladder_over_time(ev, s, label=label)
        if ((ev["event"] == "takeoff") & (ev["asset"] == "bomber")).any():
            out["b1b_sorties"] = sortie_timeline(ev, s, label=label)
    if "outcome" in results.summary:
        out["outcomes"] = outcomes(results.summary, s, label=label)
    if results.comparison is not None:
        out["comparison_forest"] = forest(results.comparison, label=label)
    return out


def plot_folder(folder: str | Path) -> list[Path]:
    """Write every figure of a result folder as PNG and SVG into ``folder/plots``."""
    return write_figures(figures(load_results(folder)), Path(folder) / "plots")


def write_figures(figs: dict[str, Figure], plots: Path) -> list[Path]:
    """Write figures as PNG and SVG into the folder ``plots``, whole (the old figures stay until
    the new ones are all drawn); the figures are closed."""
    from sim.folders import FolderWriter

    written = []
    with FolderWriter(plots, owned=("*.png", "*.svg")) as tmp:
        for stem, fig in figs.items():
            for ext in ("png", "svg"):
                fig.savefig(tmp / f"{stem}.{ext}", format=ext, dpi=110)
                written.append(plots / f"{stem}.{ext}")
            plt.close(fig)
    return written
