"""Figures of a sweep's result folder: how each metric responds to each factor (per policy, with
95% confidence intervals; a heatmap when a full factorial has two factors), the paired difference of
each policy from the first at every design point, and the Sobol indices of ``esim sensitivity``.

Every function returns a ``matplotlib.figure.Figure``; :func:`sweep_figures` draws what the folder
has data for, and :func:`plot_sweep_folder` writes them as PNG and SVG into ``folder/plots``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.compare import aggregate, paired
from sim.report.plots import POLICY_COLOURS, _footer

#: The metrics a sweep's figures show.
SWEEP_METRICS = ("attacks", "us_killed", "militia_killed", "outcome=halted")


@dataclass
class SweepResults:
    """A sweep's folder: the manifest (``sweep.json``), the design, the per-replication rows and, after
    ``esim sensitivity``, the Sobol indices."""

    folder: Path
    manifest: dict
    design: pd.DataFrame
    summary: pd.DataFrame
    sobol: pd.DataFrame | None

    @property
    def label(self) -> str:
        m = self.manifest
        policies = ", ".join(m.get("policies", []))
        done = len(self.summary)
        expected = m.get("points", 0) * len(m.get("policies", [])) * m.get("reps", 0)
        return (
            f"sweep {m.get('sweep', '?')} ({m.get('sweep_file', '?')}): {m.get('points')} "
            f"points x policies {policies} x {m.get('reps')} replications ({done:,} of "
            f"{expected:,} done), seed {m.get('seed')}"
        )


def load_sweep_results(folder: str | Path) -> SweepResults:
    from sim.store import SweepStore

    store = SweepStore(folder)
    sobol = Path(folder) / "sobol.parquet"
    return SweepResults(
        Path(folder),
        store.manifest(),
        store.design(),
        store.summary(),
        pd.read_parquet(sobol) if sobol.is_file() else None,
    )


def _factor_label(r: SweepResults, factor: str) -> str:
    key = r.manifest.get("factors", {}).get(factor)
    return f"{factor}\n({key})" if key else factor


def _means(r: SweepResults, metrics: tuple[str, ...]) -> tuple[pd.DataFrame, list[str]]:
    """Mean and 95% CI of each metric per design point and policy, and the policies in order."""
    return aggregate(r.summary, r.design, metrics), list(dict.fromkeys(r.summary["policy"]))


def factor_response(r: SweepResults, metrics: tuple[str, ...] = SWEEP_METRICS) -> Figure:
    """Each metric (rows) against each factor (columns): the mean of every design point with its 95%
    confidence interval, one colour per policy. With one factor the points are joined by lines; with
    more, every point also varies the others, so they are left as points."""
    factors = list(r.design.columns)
    table, policies = _means(r, metrics)
    fig, axes = plt.subplots(
        len(metrics),
        len(factors),
        figsize=(3.6 * len(factors) + 0.6, 2.4 * len(metrics) + 0.8),
        squeeze=False,
    )
    for i, m in enumerate(metrics):
        for j, f in enumerate(factors):
            ax = axes[i, j]
            for k, pol in enumerate(policies):
                rows = table[(table["metric"] == m) & (table["policy"] == pol)].sort_values(f)
                err = [rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]]
                ax.errorbar(
                    rows[f],
                    rows["mean"],
                    yerr=np.nan_to_num(np.array(err, dtype=float)),
                    fmt="o-" if len(factors) == 1 else "o",
                    ms=3,
                    lw=1,
                    capsize=2,
                    color=POLICY_COLOURS[k % len(POLICY_COLOURS)],
                    label=pol,
                    alpha=0.85,
                )
            if i == len(metrics) - 1:
                ax.set_xlabel(_factor_label(r, f), fontsize=8)
            if j == 0:
                ax.set_ylabel(m, fontsize=9)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("response of each metric to each factor: mean and 95% CI per design point")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _footer(fig, r.label)
    return fig


def factor_heatmap(r: SweepResults, metrics: tuple[str, ...] = ("attacks", "militia_killed")) -> Figure:
    """A full factorial of two factors: each metric's mean on the grid (rows: metrics; columns:
    policies), each panel on its own colour scale so that a factor's effect within a policy shows."""
    f1, f2 = list(r.design.columns)
    table, policies = _means(r, metrics)
    fig, axes = plt.subplots(
        len(metrics),
        len(policies),
        figsize=(4.4 * len(policies) + 0.6, 3.3 * len(metrics) + 0.8),
        squeeze=False,
    )
    for i, m in enumerate(metrics):
        for ax, pol in zip(axes[i], policies, strict=True):
            grid = table[(table["metric"] == m) & (table["policy"] == pol)].pivot_table(
                index=f2, columns=f1, values="mean"
            )
            values = grid.to_numpy()
            im = ax.imshow(values, origin="lower", cmap="viridis", aspect="auto")
            middle = (np.nanmin(values) + np.nanmax(values)) / 2
            ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns], fontsize=7)
            ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index], fontsize=7)
            for (y, x), v in np.ndenumerate(values):
                ax.text(
                    x,
                    y,
                    f"{v:.3g}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v < middle else "black",
                )
            ax.set_xlabel(_factor_label(r, f1), fontsize=7)
            ax.set_ylabel(_factor_label(r, f2), fontsize=7)
            ax.set_title(f"{m}, {pol}", fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.85)
    fig.suptitle(
        "mean over replications at each point of the factorial (each panel its own scale)", fontsize=10
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _footer(fig, r.label)
    return fig


def paired_by_point(r: SweepResults, metrics: tuple[str, ...] = SWEEP_METRICS) -> Figure:
    """Each policy's paired difference from the first (same seeds) at every design point, with its
    95% confidence interval; points in design order, labelled with their factor values."""
    policies = list(dict.fromkeys(r.summary["policy"]))
    rows = []
    for point, group in r.summary.groupby("point", sort=True):
        table = paired(group, metrics)
        table["point"] = point
        rows.append(table[table["policy"] != policies[0]])
    diffs = pd.concat(rows, ignore_index=True)
    points = sorted(r.summary["point"].unique())
    fig, axes = plt.subplots(
        len(metrics),
        1,
        figsize=(max(7.5, 0.35 * len(points) + 3), 2.1 * len(metrics) + 1.2),
        squeeze=False,
        sharex=True,
    )
    for ax, m in zip(axes[:, 0], metrics, strict=True):
        for k, pol in enumerate(policies[1:], start=1):
            d = diffs[(diffs["metric"] == m) & (diffs["policy"] == pol)].set_index("point").reindex(points)
            x = np.arange(len(points)) + (k - len(policies) / 2) * 0.1
            err = np.nan_to_num(
                np.array([d["difference"] - d["ci_low"], d["ci_high"] - d["difference"]], dtype=float)
            )
            ax.errorbar(
                x,
                d["difference"],
                yerr=err,
                fmt="o",
                ms=3,
                capsize=2,
                color=POLICY_COLOURS[k % len(POLICY_COLOURS)],
                label=f"{pol} - {policies[0]}",
            )
        ax.axhline(0, color="grey", lw=1)
        ax.set_ylabel(m, fontsize=9)
    factors = list(r.design.columns)
    labels = [", ".join(f"{r.design.at[p, f]:.3g}" for f in factors) or str(p) for p in points]
    axes[-1, 0].set_xticks(range(len(points)), labels, rotation=60, ha="right", fontsize=7)
    axes[-1, 0].set_xlabel(f"design point ({', '.join(factors)})" if factors else "design point", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        f"paired difference from '{policies[0]}' at each design point (same seeds, 95% CI)", fontsize=10
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    _footer(fig, r.label)
    return fig


def sobol_bars(r: SweepResults) -> Figure:
    """Sobol indices of ``esim sensitivity``: first-order and total index of each factor, per metric
    (and policy), with 95% intervals."""
    s = r.sobol
    assert s is not None, "a sensitivity folder holds sobol.parquet"
    groups = list(dict.fromkeys(zip(s["policy"], s["metric"], strict=True)))
    fig, axes = plt.subplots(
        1, len(groups), figsize=(2.8 * len(groups) + 0.8, 3.6), squeeze=False, sharey=True
    )
    for ax, (pol, m) in zip(axes[0], groups, strict=True):
        rows = s[(s["policy"] == pol) & (s["metric"] == m)]
        x = np.arange(len(rows))
        ax.bar(
            x - 0.18,
            rows["S1"],
            0.36,
            yerr=rows["S1_conf"],
            capsize=2,
            color="#6baed6",
            label="first order S1",
        )
        ax.bar(x + 0.18, rows["ST"], 0.36, yerr=rows["ST_conf"], capsize=2, color="#08519c", label="total ST")
        ax.set_xticks(x, rows["factor"], rotation=40, ha="right", fontsize=7)
        ax.axhline(0, color="grey", lw=0.8)
        noise = rows["noise_share"].iloc[0]
        ax.set_title(
            f"{m}" + (f" ({pol})" if s["policy"].nunique() > 1 else "") + f"\nnoise {noise:.0%}", fontsize=8
        )
    axes[0, 0].set_ylabel("Sobol index")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        "Sobol indices with 95% intervals (noise: share of the variance of point means "
        "that is simulation noise)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _footer(fig, r.label)
    return fig


def sweep_figures(r: SweepResults) -> dict[str, Figure]:
    """Every figure the sweep's folder has data for, by file stem."""
    out: dict[str, Figure] = {}
    if r.summary.empty:
        return out
    factors = list(r.design.columns)
    if r.sobol is not None and len(r.sobol):
        out["sobol_indices"] = sobol_bars(r)
    if factors:
        out["factor_response"] = factor_response(r)
        if len(factors) == 2 and r.manifest.get("design", "factorial") == "factorial":
            out["factor_heatmap"] = factor_heatmap(r)
    if r.summary["policy"].nunique() > 1:
        out["paired_by_point"] = paired_by_point(r)
    return out


def plot_sweep_folder(folder: str | Path) -> list[Path]:
    """Write every figure of a sweep's folder as PNG and SVG into ``folder/plots``."""
    from sim.report.plots import write_figures

    return write_figures(sweep_figures(load_sweep_results(folder)), Path(folder) / "plots")
