"""Figures of a run, as matplotlib figures (usable in a notebook) and as PNG and SVG files.

Each function takes frames of a result folder (see :func:`load_results`) and returns a
``matplotlib.figure.Figure``; :func:`plot_folder` draws every figure that the folder has data for.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # files, not windows; a notebook keeps its own (inline) backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.metrics import ladder_by_day  # noqa: E402
from sim.model.events import COLUMNS, Rung  # noqa: E402
from sim.scenario.loader import load_scenario  # noqa: E402
from sim.scenario.schema import Scenario  # noqa: E402

RUNG_COLOURS = ("#f0f0f0", "#c6dbef", "#9ecae1", "#6baed6", "#fb6a4a", "#de2d26", "#67000d")


@dataclass
class Results:
    """What a result folder holds: the scenario as run, summaries, events, a comparison."""

    folder: Path
    scenario: Scenario
    summary: pd.DataFrame
    events: pd.DataFrame | None
    comparison: pd.DataFrame | None


def load_results(folder: str | Path) -> Results:
    """Read a folder written by ``esim run`` (or ``esim compare --out``)."""
    folder = Path(folder)
    scenario = load_scenario(folder / "scenario.resolved.toml")
    summary = pd.read_parquet(folder / "summary.parquet")
    events = pd.read_parquet(folder / "events.parquet") if (folder / "events.parquet").is_file() else None
    comp = folder / "comparison.parquet"
    return Results(folder, scenario, summary, events, pd.read_parquet(comp) if comp.is_file() else None)


def _dates(s: Scenario, days: np.ndarray) -> list[dt.date]:
    return [s.meta.start_date + dt.timedelta(days=int(d)) for d in days]


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


def cumulative_attacks(events: pd.DataFrame, s: Scenario,
                       documented: list[tuple[dt.date, float, str]] | None = None) -> Figure:
    """Cumulative attacks: median and 5-95% band over replications, with documented points."""
    daily = _daily_counts(events, s, "attack")
    cum = np.cumsum(daily, axis=1)
    x = _dates(s, np.arange(cum.shape[1]))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    lo, med, hi = np.percentile(cum, [5, 50, 95], axis=0)
    ax.fill_between(x, lo, hi, alpha=0.3, label="5-95% of replications")
    ax.plot(x, med, lw=2, label="median")
    for when, value, label in documented or []:
        ax.plot([when], [value], "o", color="black")
        ax.annotate(label, (when, value), textcoords="offset points", xytext=(-10, 8), ha="right",
                    fontsize=8)
    ax.set_title(f"{s.meta.name}: cumulative militia attacks ({cum.shape[0]} replications)")
    ax.set_ylabel("attacks")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def weekly_attacks_and_strikes(events: pd.DataFrame, s: Scenario) -> Figure:
    """Mean attacks and US strikes per week, over replications."""
    attacks = _daily_counts(events, s, "attack").mean(axis=0)
    strikes = _daily_counts(events, s, "strike").mean(axis=0)
    weeks = len(attacks) // 7 + (len(attacks) % 7 > 0)
    wa = np.add.reduceat(attacks, np.arange(0, len(attacks), 7))
    ws = np.add.reduceat(strikes, np.arange(0, len(strikes), 7))
    x = _dates(s, np.arange(weeks) * 7)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar(x, wa, width=5, label="militia attacks", color="#6baed6")
    ax2 = ax.twinx()
    ax2.plot(x, ws, "o-", color="#de2d26", label="US strikes")
    ax.set_ylabel("attacks per week (mean)")
    ax2.set_ylabel("US strikes per week (mean)")
    ax.set_title(f"{s.meta.name}: weekly attacks against US strikes")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, ["militia attacks", "US strikes"], loc="upper right")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def ladder_over_time(events: pd.DataFrame, s: Scenario) -> Figure:
    """Share of replications at each rung of the escalation ladder, day by day."""
    n_days = int(round(s.horizon_hours / 24.0))
    shares = np.zeros((len(Rung), n_days))
    reps = events["rep"].unique()
    cols = [c for c in COLUMNS]
    for _, group in events.groupby("rep"):
        rows = list(group[cols].itertuples(index=False, name=None))
        _, current = ladder_by_day(rows, s)
        shares[current, np.arange(n_days)] += 1
    shares /= max(len(reps), 1)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.stackplot(_dates(s, np.arange(n_days)), shares, colors=RUNG_COLOURS,
                 labels=[r.label.replace("_", " ") for r in Rung])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of replications")
    ax.set_title(f"{s.meta.name}: the escalation ladder over time")
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def sortie_timeline(events: pd.DataFrame, s: Scenario, rep: int | None = None) -> Figure:
    """The B-1B missions of one replication: generation, legs, refuellings, time over target,
    recovery, one bar per package."""
    bombers = events[(events["asset"] == "bomber") | (events["event"] == "generation")]
    if rep is None:
        reps = bombers.loc[bombers["event"] == "takeoff", "rep"]
        rep = int(reps.iloc[0]) if len(reps) else int(events["rep"].min())
    mine = bombers[bombers["rep"] == rep]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    packages = sorted(mine["package"].unique())
    colours = {"generation": "#bdbdbd", "outbound": "#6baed6", "over target": "#de2d26",
               "inbound": "#9ecae1"}
    for y, pkg in enumerate(packages):
        p = mine[mine["package"] == pkg]

        def t(name, how=min, p=p):
            v = p.loc[p["event"] == name, "t_hours"]
            return how(v) if len(v) else None

        gen, off, tot, land = t("generation"), t("takeoff"), t("time_over_target"), t("landing", max)
        segments = [("generation", gen, off), ("outbound", off, tot),
                    ("over target", tot, None if tot is None else tot + s.b1b.time_over_target_hours),
                    ("inbound", None if tot is None else tot + s.b1b.time_over_target_hours, land)]
        for label, a, b in segments:
            if a is not None and b is not None and b > a:
                ax.barh(y, (b - a) / 24.0, left=a / 24.0, color=colours[label],
                        label=label if y == 0 else None)
        refuel = p.loc[p["event"] == "refuel", "t_hours"] / 24.0
        ax.plot(refuel, [y] * len(refuel), "k|", markersize=14, label="refuelling" if y == 0 else None)
    ax.set_yticks(range(len(packages)), [f"package {int(k)}" for k in packages])
    ax.set_xlabel(f"days since {s.meta.start_date.isoformat()}")
    ax.set_title(f"{s.meta.name}: B-1B missions of replication {rep}")
    if packages:
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig


def outcomes(summary: pd.DataFrame, s: Scenario) -> Figure:
    """Distribution of outcomes (halted, contained, spiral) and of attacks per replication."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.5))
    names = ["halted", "contained", "spiral"]
    shares = [float((summary["outcome"] == n).mean()) for n in names]
    ax1.bar(names, shares, color=["#31a354", "#fdae6b", "#de2d26"])
    ax1.set_ylim(0, 1)
    ax1.set_ylabel("share of replications")
    ax1.set_title("outcome")
    ax2.hist(summary["attacks"].dropna(), bins=30, color="#6baed6")
    ax2.set_xlabel("attacks per replication")
    ax2.set_title("attacks")
    fig.suptitle(f"{s.meta.name}: {len(summary)} replications")
    fig.tight_layout()
    return fig


def forest(comparison: pd.DataFrame, metrics: tuple[str, ...] = ("attacks", "us_killed",
                                                                   "militia_killed",
                                                                   "outcome=halted")) -> Figure:
    """Paired differences from the reference scenario, with 95% confidence intervals."""
    comp = comparison[comparison["metric"].isin(metrics)]
    policies = list(dict.fromkeys(comp["policy"]))
    reference, others = policies[0], policies[1:]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3 * len(metrics), 0.6 * len(others) + 1.8),
                             squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=True):
        rows = comp[comp["metric"] == m].set_index("policy")
        for y, pol in enumerate(others):
            if pol not in rows.index:
                continue
            r = rows.loc[pol]
            ax.errorbar(r["difference"], y, xerr=[[r["difference"] - r["ci_low"]],
                                                  [r["ci_high"] - r["difference"]]], fmt="o")
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(range(len(others)), others if ax is axes[0][0] else [""] * len(others))
        ax.set_title(m, fontsize=9)
    fig.suptitle(f"difference from '{reference}' (same seeds, 95% CI)")
    fig.tight_layout()
    return fig


def documented_points(s: Scenario) -> list[tuple[dt.date, float, str]]:
    """Documented cumulative attack counts inside the scenario's dates (seed: more than 170 by the
    February strikes)."""
    when = dt.date(2024, 2, 2)
    if s.meta.start_date <= when <= s.meta.end_date and s.meta.start_date == dt.date(2023, 10, 17):
        return [(when, 171.0, "seed: more than 170 attacks by 2 Feb 2024")]
    return []


def figures(results: Results) -> dict[str, Figure]:
    """Every figure the folder has data for, by file stem."""
    s = results.scenario
    out: dict[str, Figure] = {}
    if results.events is not None and len(results.events):
        ev = results.events
        out["cumulative_attacks"] = cumulative_attacks(ev, s, documented_points(s))
        out["weekly_attacks_strikes"] = weekly_attacks_and_strikes(ev, s)
        out["escalation_ladder"] = ladder_over_time(ev, s)
        if (ev["event"] == "takeoff").any():
            out["b1b_sorties"] = sortie_timeline(ev, s)
    if "outcome" in results.summary:
        out["outcomes"] = outcomes(results.summary, s)
    if results.comparison is not None:
        out["comparison_forest"] = forest(results.comparison)
    return out


def plot_folder(folder: str | Path) -> list[Path]:
    """Write every figure of a result folder as PNG and SVG into ``folder/plots``."""
    from sim.store import atomic_write

    results = load_results(folder)
    plots = Path(folder) / "plots"
    written = []
    for stem, fig in figures(results).items():
        for ext in ("png", "svg"):
            path = plots / f"{stem}.{ext}"
            atomic_write(path, lambda p, fig=fig, ext=ext: fig.savefig(p, format=ext, dpi=110))
            written.append(path)
        plt.close(fig)
    return written
