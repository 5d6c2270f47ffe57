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
    """Two posteriors of one key: their medians against a quarter of their 90% intervals' width,
    and the widths against each other."""

    key: str
    median_a: float
    median_b: float
    width: float  # the mean of the two 90% intervals' widths
    width_a: float
    width_b: float

    @property
    def medians_agree(self) -> bool:
        return abs(self.median_a - self.median_b) <= MEDIANS * self.width

    @property
    def widths_agree(self) -> bool:
        lo, hi = sorted((self.width_a, self.width_b))
        return hi <= WIDTHS * lo

    @property
    def agree(self) -> bool:
        return self.medians_agree and self.widths_agree


#: Two calibrations agree on a key when their medians lie within this share of the 90% intervals'
#: mean width of each other (issue 22) ...
MEDIANS = 0.25
#: ... and neither 90% interval is more than this many times as wide as the other: medians alone
#: cannot tell a fit from the prior, whose median is the prior's.
WIDTHS = 1.25


def agreement(a, b) -> list[Agreement]:
    """Per key the two posteriors (:class:`sim.posterior.Posterior`) share: medians and 90%
    interval widths (:class:`Agreement`)."""
    out = []
    for key in [k for k in a.keys if k in b.keys]:
        qa = [weighted_quantile(a.column(key), a.weights, q) for q in (0.05, 0.5, 0.95)]
        qb = [weighted_quantile(b.column(key), b.weights, q) for q in (0.05, 0.5, 0.95)]
        wa, wb = qa[2] - qa[0], qb[2] - qb[0]
        out.append(Agreement(key, qa[1], qb[1], 0.5 * (wa + wb), wa, wb))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.calibrate.identification A.parquet B.parquet``: do two calibrations agree?
    Exit code 0 when they agree on every key, 1 when not, 2 on bad input."""
    import sys

    from sim.posterior import load_posterior
    from sim.scenario import ScenarioError

    args = sys.argv[1:] if argv is None else argv
    try:
        if len(args) != 2:
            raise ScenarioError("usage", "", "python -m sim.calibrate.identification A.parquet B.parquet")
        a, b = load_posterior(args[0]), load_posterior(args[1])
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = agreement(a, b)
    if not rows:
        print("error: the two posteriors share no key", file=sys.stderr)
        return 2
    for r in rows:  # a key a line, its figures below it: readable at 80 columns
        ratio = r.width_b / r.width_a if r.width_a else math.inf
        print(
            f"{r.key}\n  medians {r.median_a:.4g} and {r.median_b:.4g}, |diff| / width "
            f"{abs(r.median_a - r.median_b) / r.width:.3f}; width B / A {ratio:.2f}: "
            f"{'agree' if r.agree else 'DIFFER'}"
        )
    both = sum(r.agree for r in rows)
    print(
        f"{both} of {len(rows)} keys agree (medians within {MEDIANS:g} of the 90% width, "
        f"widths within {WIDTHS:g}x)"
    )
    return 0 if both == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
