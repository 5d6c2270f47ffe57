"""What the record informs: each fitted parameter's posterior against its prior, and the parameters
that trade off.

For each parameter: the prior, the weighted posterior median and 90% interval, and the interval's
share of the prior's width (on the prior's own scale: log for a log-uniform prior). A parameter whose
90% interval keeps :data:`NOT_INFORMED` (80%) or more of its prior's width is reported as not
informed by the record *through this calibration* (its distance, kernel scale and budget: a sharper
inference could narrow it). Pairs of parameters whose weighted posterior correlation (on the prior's
scale) exceeds :data:`CORRELATED` (0.5) in absolute value are listed: the record pins a combination of
them, not each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.calibrate.priors import Prior, PriorsFile
from sim.posterior import weighted_quantile

#: A 90% interval keeping this share of the prior's width or more: not informed.
NOT_INFORMED = 0.8
#: Posterior correlations above this in absolute value are listed.
CORRELATED = 0.5


@dataclass(frozen=True)
class Informed:
    """One parameter's posterior against its prior."""

    name: str
    key: str
    prior: str  # e.g. "uniform(0.3, 2.5)"
    median: float
    p5: float
    p95: float
    width_share: float  # (p95 - p5) on the prior's scale over the prior's width
    informed: bool

    def as_dict(self) -> dict:
        return {
            "parameter": self.name,
            "key": self.key,
            "prior": self.prior,
            "median": self.median,
            "p5": self.p5,
            "p95": self.p95,
            "width_share": self.width_share,
            "informed": self.informed,
        }


def prior_scale(p: Prior, x: np.ndarray) -> np.ndarray:
    """Values as positions in the prior's range, 0-1 (on the log scale for a log-uniform prior)."""
    x = np.asarray(x, dtype=float)
    if p.distribution == "loguniform":
        return (np.log(x) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
    return (x - p.low) / (p.high - p.low)


def informed(values: dict[str, np.ndarray], weights: np.ndarray, priors: PriorsFile) -> list[Informed]:
    """Per parameter of ``priors`` (values by key path): median, 90% interval, width share."""
    out = []
    for name, p in priors.parameters.items():
        x = np.asarray(values[p.key], dtype=float)
        p5, med, p95 = (weighted_quantile(x, weights, q) for q in (0.05, 0.5, 0.95))
        u5, u95 = prior_scale(p, np.array([p5, p95]))
        share = float(u95 - u5)
        out.append(
            Informed(
                name,
                p.key,
                f"{p.distribution}({p.low:g}, {p.high:g})",
                med,
                p5,
                p95,
                share,
                share < NOT_INFORMED,
            )
        )
    return out


def correlations(
    values: dict[str, np.ndarray], weights: np.ndarray, priors: PriorsFile, threshold: float = CORRELATED
) -> list[tuple[str, str, float]]:
    """Pairs of parameters whose weighted posterior correlation on the prior's scale exceeds
    ``threshold`` in absolute value, strongest first."""
    names = list(priors.parameters)
    u = np.column_stack([prior_scale(priors.parameters[n], values[priors.parameters[n].key]) for n in names])
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    mean = w @ u
    c = u - mean
    cov = (c * w[:, None]).T @ c
    sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    r = cov / np.outer(sd, sd)
    pairs = [
        (names[i], names[j], float(r[i, j]))
        for i in range(len(names))
        for j in range(i + 1, len(names))
        if abs(r[i, j]) > threshold
    ]
    return sorted(pairs, key=lambda t: -abs(t[2]))


@dataclass(frozen=True)
class Agreement:
    """Two posteriors' medians of one key, against a quarter of their 90% intervals' width."""

    key: str
    median_a: float
    median_b: float
    width: float  # the mean of the two 90% intervals' widths
    agree: bool


def agreement(a, b) -> list[Agreement]:
    """Per key the two posteriors (:class:`sim.posterior.Posterior`) share: whether their medians
    lie within a quarter of the (mean) width of their 90% intervals of each other."""
    out = []
    for key in [k for k in a.keys if k in b.keys]:
        qa = [weighted_quantile(a.column(key), a.weights, q) for q in (0.05, 0.5, 0.95)]
        qb = [weighted_quantile(b.column(key), b.weights, q) for q in (0.05, 0.5, 0.95)]
        width = 0.5 * ((qa[2] - qa[0]) + (qb[2] - qb[0]))
        out.append(Agreement(key, qa[1], qb[1], width, abs(qa[1] - qb[1]) <= 0.25 * width))
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m sim.calibrate.identification A.parquet B.parquet``: do two calibrations agree?"""
    import sys

    from sim.posterior import load_posterior

    args = sys.argv[1:] if argv is None else argv
    a, b = load_posterior(args[0]), load_posterior(args[1])
    rows = agreement(a, b)
    for r in rows:
        print(
            f"{r.key:50s} {r.median_a:10.4g} {r.median_b:10.4g}  |diff| / width "
            f"{abs(r.median_a - r.median_b) / r.width:.3f}  {'agree' if r.agree else 'DIFFER'}"
        )
    print(f"{sum(r.agree for r in rows)} of {len(rows)} medians within a quarter of the 90% interval's width")


if __name__ == "__main__":
    main()
