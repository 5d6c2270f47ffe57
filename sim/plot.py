"""Figures for a notebook: every function returns a ``matplotlib.figure.Figure``.

    import sim.plot
    r = sim.plot.load_results("results/baseline")
    sim.plot.cumulative_attacks(r.events, r.scenario, sim.plot.documented_points(r.scenario))
    sim.plot.ladder_over_time(r.events, r.scenario)

    s = sim.plot.load_sweep_results("results/bomber_lag")          # a sweep's folder
    sim.plot.factor_response(s)

The implementation lives in :mod:`sim.report.plots` and :mod:`sim.report.sweep_figures`, which
``esim plot`` and ``esim report`` use.
"""

from sim.report.plots import (
    Results,
    cumulative_attacks,
    documented_points,
    figures,
    forest,
    ladder_over_time,
    load_results,
    outcomes,
    plot_folder,
    sortie_timeline,
    weekly_attacks_and_strikes,
)
from sim.report.sweep_figures import (
    SweepResults,
    factor_heatmap,
    factor_response,
    load_sweep_results,
    paired_by_point,
    sobol_bars,
    sweep_figures,
)

__all__ = [
    "Results",
    "SweepResults",
    "cumulative_attacks",
    "documented_points",
    "factor_heatmap",
    "factor_response",
    "figures",
    "forest",
    "ladder_over_time",
    "load_results",
    "load_sweep_results",
    "outcomes",
    "paired_by_point",
    "plot_folder",
    "sobol_bars",
    "sortie_timeline",
    "sweep_figures",
    "weekly_attacks_and_strikes",
]
