"""The calibration's posterior as runs use it: a file of parameter draws, and which replication runs
which draw.

``calibration/posterior.parquet`` (written by ``esim calibrate``) holds one column per fitted
scenario key, by its full key path (``militia.background_rate_per_day``), a ``weight`` column when
its draws are weighted, and in its Parquet metadata (key ``escalation_sim``) the calibration's
manifest: the SHA-256 of the record files, targets and priors it was fitted to, seed, simulations,
wall time, versions.

**The design of a run over the posterior**: D draws x R replications a draw. Replications are
taken in groups of R consecutive indices (``reps_per_draw``, default 10): group g holds replications
gR .. gR + R - 1, and its parameter vector is drawn (by weight) with one uniform from the
``parameters`` stream of its first replication, gR (:mod:`sim.rng`). Every replication of a group
runs the same parameter vector, so per-draw means exist; a replication's draw depends only on the
root seed and its index, so two policies compared on the same seed share parameters and dice in
every replication (common random numbers), and a policy compared with itself is exactly 0.

A draw replaces only the keys the scenario takes from its fitted file: a key the scenario's own
files set, a ``--set`` override or a sweep's factor keeps its value.
"""

from __future__ import annotations

import hashlib
import json
import math
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.defaults import DEFAULT_REPS_PER_DRAW
from sim.scenario.loader import ScenarioError
from sim.scenario.schema import Scenario

#: The file name of a posterior beside its ``fitted.toml``.
POSTERIOR_FILE = "posterior.parquet"
#: The key of the calibration's manifest in the Parquet file's metadata.
METADATA_KEY = b"escalation_sim"

#: The largest posterior file read (the shipped one is under 2 MB).
MAX_BYTES = 64 * 2**20
#: The option that names a posterior, as errors name it.
OPTION = "--posterior"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Posterior:
    """A posterior file, read and checked: ``values`` (draws x keys), normalised weights and
    their cumulative sums, the calibration's ``manifest``."""

    path: Path
    sha256: str
    keys: tuple[str, ...]
    values: np.ndarray
    weights: np.ndarray
    manifest: dict
    weighted: bool

    @property
    def draws(self) -> int:
        return len(self.weights)

    @property
    def ess(self) -> float:
        """Kish's effective sample size of the weights (the number of draws when unweighted)."""
        return float(1.0 / np.sum(self.weights**2))

    @property
    def cumulative(self) -> np.ndarray:
        c = np.cumsum(self.weights)
        c[-1] = 1.0
        return c

    def label(self) -> str:
        return (
            f"posterior {_shown(self.path)} (sha256 {self.sha256[:12]}, {self.draws:,} "
            f"{'weighted ' if self.weighted else ''}draws, ESS {self.ess:,.0f})"
        )

    def column(self, key: str) -> np.ndarray:
        return self.values[:, self.keys.index(key)]


def _shown(path: Path) -> str:
    cwd = Path.cwd().resolve()
    p = path.resolve()
    return str(p.relative_to(cwd)) if p.is_relative_to(cwd) else str(p)


def load_posterior(path: str | Path) -> Posterior:
    """Read and check a posterior file. Every problem is a :class:`ScenarioError` naming the file
    and the reason: missing, not a regular file, too large, not Parquet or truncated, no manifest,
    a column that is not a number, a non-finite value, a negative, non-finite or all-zero weight,
    or record files that changed since the calibration (fitted to other targets)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ScenarioError(path, OPTION, "file not found") from None
    except OSError as exc:
        raise ScenarioError(path, OPTION, f"cannot read the file ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ScenarioError(path, OPTION, "not a regular file")
    if st.st_size > MAX_BYTES:
        raise ScenarioError(path, OPTION, f"{st.st_size:,} bytes; a posterior file has at most {MAX_BYTES:,}")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        text = str(exc)
        reason = (
            "no Parquet footer" if "magic bytes" in text else (text.splitlines()[0][:120] if text else "")
        )
        raise ScenarioError(
            path, OPTION, f"not a readable Parquet file (truncated?){': ' + reason if reason else ''}"
        ) from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ScenarioError(
            path, OPTION, "no calibration manifest in its metadata (not written by esim calibrate)"
        )
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ScenarioError(path, OPTION, "its calibration manifest is not JSON") from None
    if not isinstance(manifest, dict):
        raise ScenarioError(path, OPTION, "its calibration manifest is not a table")
    names = [n for n in table.column_names if n != "weight"]
    if not names:
        raise ScenarioError(path, OPTION, "no parameter columns")
    if table.num_rows < 1:
        raise ScenarioError(path, OPTION, "no draws")
    cols = []
    for n in names:
        col = table.column(n)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            raise ScenarioError(path, n, f"the column is {col.type}, not a number")
        x = col.to_numpy(zero_copy_only=False).astype(float)
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            raise ScenarioError(path, n, f"not a finite number in row {int(bad[0])} ({x[bad[0]]})")
        cols.append(x)
    values = np.column_stack(cols)
    weighted = "weight" in table.column_names
    if weighted:
        w = table.column("weight").to_numpy(zero_copy_only=False).astype(float)
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if bad.size:
            raise ScenarioError(
                path, "weight", f"weights must be finite and non-negative (row {int(bad[0])}: {w[bad[0]]})"
            )
        if not w.sum() > 0:
            raise ScenarioError(path, "weight", "every weight is 0")
        w = w / w.sum()
    else:
        w = np.full(len(values), 1.0 / len(values))
    _check_record(path, manifest)
    return Posterior(path, sha256_of(path), tuple(names), values, w, manifest, weighted)


def _check_record(path: Path, manifest: dict) -> None:
    """Refuse a posterior fitted to other targets: every record file its manifest names (relative
    to the posterior's folder) must still have the SHA-256 it had."""
    record = manifest.get("record")
    if not isinstance(record, dict) or not record:
        raise ScenarioError(
            path, OPTION, "its manifest names no record files (cannot tell what it was fitted to)"
        )
    for rel, digest in record.items():
        where = path.parent / str(rel)
        if not where.is_file():
            raise ScenarioError(
                path,
                OPTION,
                f"it was fitted to {rel}, which is not beside it ({where}): cannot check the targets",
            )
        if sha256_of(where) != digest:
            raise ScenarioError(
                path,
                OPTION,
                f"fitted to other targets: {rel} changed since the calibration (sha256 "
                f"{str(digest)[:12]} then, {sha256_of(where)[:12]} now); rerun esim calibrate",
            )


def write_posterior(
    path: Path, keys: list[str], values: np.ndarray, weights: np.ndarray | None, manifest: dict
) -> None:
    """Write a posterior file (the caller makes the write atomic)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {k: pa.array(values[:, j], type=pa.float64()) for j, k in enumerate(keys)}
    if weights is not None:
        data["weight"] = pa.array(weights, type=pa.float64())
    table = pa.table(data)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(manifest, sort_keys=True).encode()})
    pq.write_table(table, path, compression="zstd")


# --- which keys a scenario takes from the posterior -------------------------------------------------


def fitted_keys(scenario_file: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """The keys a scenario takes from a calibration's fitted file (key -> that file's path): set
    there and by no later file of its ``extends`` chain nor a ``--set`` override."""
    from sim.scenario.loader import key_origins
    from sim.scenario.sources import FITTED_FILE

    return {k: v for k, v in key_origins(scenario_file, overrides).items() if Path(v).name == FITTED_FILE}


def default_posterior(scenario_file: str | Path) -> Path | None:
    """The posterior beside the fitted file the scenario extends, or None (no fitted file)."""
    from sim.scenario.loader import extends_chain
    from sim.scenario.sources import FITTED_FILE

    for f in extends_chain(scenario_file):
        if f.name == FITTED_FILE:
            return (f.parent / POSTERIOR_FILE).resolve()
    return None


@dataclass(frozen=True)
class Parameters:
    """Where a run's parameters come from: the scenario as it stands (the fitted point), or draws
    of a posterior, ``reps_per_draw`` replications a draw."""

    posterior: Posterior | None = None
    reps_per_draw: int = DEFAULT_REPS_PER_DRAW
    why_point: str = ""  # when the posterior was asked for by default and could not be used

    @property
    def is_point(self) -> bool:
        return self.posterior is None

    def label(self, reps: int | None = None) -> str:
        """In words; with ``reps``, how many draws those replications run."""
        if self.posterior is None:
            return "the fitted point" + (f" ({self.why_point})" if self.why_point else "")
        r = self.reps_per_draw
        groups = "" if reps is None else f"{-(-reps // r):,} draw{'s' if reps > r else ''}, "
        return f"{self.posterior.label()}, {groups}{r} replication{'s' if r > 1 else ''} a draw"

    def manifest(self, keys: list[str] | None = None) -> dict:
        if self.posterior is None:
            return {"mode": "point", **({"note": self.why_point} if self.why_point else {})}
        p = self.posterior
        return {
            "mode": "posterior",
            "file": _shown(p.path),
            "sha256": p.sha256,
            "draws": p.draws,
            "weighted": p.weighted,
            "ess": round(p.ess, 1),
            "reps_per_draw": self.reps_per_draw,
            "keys_drawn": keys if keys is not None else list(p.keys),
        }


def resolve(
    mode: str, file: str | Path | None, scenario_file: str | Path, reps_per_draw: int = DEFAULT_REPS_PER_DRAW
) -> Parameters:
    """The parameters of a run: ``mode`` is ``point``, ``posterior`` (``file``, or the posterior
    beside the scenario's fitted file, which must exist) or ``default-posterior`` (that posterior
    when there is one, else the point, saying why)."""
    if reps_per_draw < 1:
        raise ScenarioError("--reps-per-draw", "", "must be at least 1")
    if mode == "point":
        return Parameters(None, reps_per_draw)
    if file is None:
        where = default_posterior(scenario_file)
        if where is None:
            if mode == "default-posterior":
                return Parameters(None, reps_per_draw, "the scenario extends no fitted file")
            raise ScenarioError(
                scenario_file, OPTION, "the scenario extends no fitted.toml, so it has no posterior: name one"
            )
        if not where.exists() and mode == "default-posterior":
            return Parameters(
                None, reps_per_draw, f"no {POSTERIOR_FILE} beside {_shown(where.parent / 'fitted.toml')}"
            )
        file = where
    return Parameters(load_posterior(file), reps_per_draw)


def keys_to_draw(
    params: Parameters,
    scenario: Scenario,
    scenario_file: str | Path,
    overrides=(),
    fixed: tuple[str, ...] = (),
) -> list[str]:
    """The posterior's keys this scenario takes from its fitted file (less ``fixed``: a sweep's
    factors), each checked against the schema at the column's smallest and largest value."""
    from sim.scenario.values import key_problem, value_problem

    if params.posterior is None:
        return []
    p = params.posterior
    for key in p.keys:
        problem = key_problem(scenario, key)
        if problem:
            raise ScenarioError(p.path, key, f"unknown key ({problem})")
    from_fitted = fitted_keys(scenario_file, list(overrides))
    keys = [k for k in p.keys if k in from_fitted and k not in fixed]
    for key in keys:
        col = p.column(key)
        for v in (float(col.min()), float(col.max())):
            problem = value_problem(scenario, key, v)
            if problem:
                raise ScenarioError(p.path, key, f"{v:g} is out of range: {problem}")
    return keys


def parameters_of(manifest: dict) -> Parameters:
    """The parameters a result folder ran with, from its manifest: the posterior file it names,
    which must still have the hash it had (:class:`ScenarioError` otherwise)."""
    info = manifest.get("parameters") or {"mode": "point"}
    if info.get("mode") != "posterior":
        return Parameters()
    posterior = load_posterior(info.get("file", ""))
    if posterior.sha256 != info.get("sha256"):
        raise ScenarioError(
            posterior.path, OPTION, "is not the posterior the run used (its sha256 changed since)"
        )
    return Parameters(posterior, int(info.get("reps_per_draw", DEFAULT_REPS_PER_DRAW)))


# --- which draw each replication runs ------------------------------------------------------------------


def draw_of_group(posterior: Posterior, seed: int, first_rep: int) -> int:
    """The draw index of the group whose first replication is ``first_rep``: one uniform from that
    replication's ``parameters`` stream, against the cumulative weights."""
    from sim.rng import Streams

    u = float(Streams(seed, first_rep)["parameters"].random())
    return min(int(np.searchsorted(posterior.cumulative, u, side="right")), posterior.draws - 1)


@dataclass(frozen=True)
class BatchDraws:
    """What a batch of replications needs of the posterior: the keys drawn, replications a draw,
    and per group (its first replication) the draw index and its values. Small enough to send
    with every task."""

    keys: tuple[str, ...]
    reps_per_draw: int
    groups: dict[int, tuple[int, tuple[float, ...]]]

    def draw(self, rep: int) -> tuple[int, dict[str, float]]:
        first = rep - rep % self.reps_per_draw
        index, values = self.groups[first]
        return index, dict(zip(self.keys, values, strict=True))


def batch_draws(params: Parameters, keys: list[str], seed: int, first: int, last: int) -> BatchDraws | None:
    """The draws of replications ``first``..``last - 1`` (None under the point or with no key to
    draw)."""
    p = params.posterior
    if p is None or not keys:
        return None
    r = params.reps_per_draw
    cols = [p.keys.index(k) for k in keys]
    groups = {}
    for g in range(first - first % r, last, r):
        i = draw_of_group(p, seed, g)
        groups[g] = (i, tuple(float(p.values[i, c]) for c in cols))
    return BatchDraws(tuple(keys), r, groups)


#: The scenario of the last group of replications built, so that the replications of one draw run
#: one Scenario object and share the tables the model derives from it (a worker runs a batch's
#: replications in order).
_LAST_GROUP: dict[tuple[int, int, int], tuple[Scenario, Scenario, BatchDraws]] = {}


def scenario_of(scenario: Scenario, draws: BatchDraws | None, rep: int) -> tuple[Scenario, int]:
    """The scenario replication ``rep`` runs and its draw index (-1 under the point)."""
    if draws is None:
        return scenario, -1
    from sim.scenario.values import with_values

    index, values = draws.draw(rep)
    first = rep - rep % draws.reps_per_draw
    key = (id(scenario), id(draws), first)
    hit = _LAST_GROUP.get(key)
    if hit is not None and hit[1] is scenario and hit[2] is draws:  # ids of live objects only
        return hit[0], index
    built = with_values(scenario, values)
    _LAST_GROUP.clear()
    _LAST_GROUP[key] = (built, scenario, draws)
    return built, index


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """Quantile ``q`` of a weighted sample (inverse of the weighted empirical CDF)."""
    o = np.argsort(x)
    c = np.cumsum(w[o]) / np.sum(w)
    return float(x[o][min(int(np.searchsorted(c, q)), len(x) - 1)])


def is_finite_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(float(x))
