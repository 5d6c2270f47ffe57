"""Figures for a notebook: every function returns a ``matplotlib.figure.Figure``.

    import sim.plot
    r = sim.plot.load_results("results/baseline")
    sim.plot.cumulative_attacks(r.events, r.scenario, sim.plot.documented_points(r.scenario))
    sim.plot.ladder_over_time(r.events, r.scenario)

The implementation lives in :mod:`sim.report.plots`, which ``esim plot`` and ``esim report`` use.
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

__all__ = [
    "Results", "cumulative_attacks", "documented_points", "figures", "forest", "ladder_over_time",
    "load_results", "outcomes", "plot_folder", "sortie_timeline", "weekly_attacks_and_strikes",
]
