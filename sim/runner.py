"""Many replications: of one scenario, serially, into two pandas DataFrames (:func:`run`); and the
batches of a sweep, in-process, on local processes or on Dask (:class:`Backend`, :func:`run_batch`)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import NamedTuple

import numpy as np
import pandas as pd

from sim.batch import SWEEP_COLUMNS, batch_rows, batch_rows_and_events
from sim.defaults import DEFAULT_REPS, DEFAULT_SEED
from sim.metrics import METRIC_COLUMNS
from sim.model import events as ev
from sim.model.events import COLUMNS
from sim.replication import run_replication
from sim.scenario.schema import COUNTRIES, WEAPON_TYPES, Scenario

Progress = Callable[[int, int], None]


class RunResult(NamedTuple):
    """``summary``: one metrics row per replication; ``events``: one row per event."""

    summary: pd.DataFrame
    events: pd.DataFrame


#: Replications per chunk of :func:`run_chunks`: about 130 MB of event rows in memory at once.
CHUNK_REPS = 500


def run(
    scenario: Scenario,
    reps: int = DEFAULT_REPS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
    events: bool = True,
) -> RunResult:
    """Run replications 0..reps-1 of root seed ``seed``, all in memory.

    ``progress(done, total)`` is called after each replication. With ``events=False`` the event
    frame is empty (for large runs where only the summary matters).
    """
    return _replications(scenario, seed, 0, reps, reps, progress, events)


def run_chunks(
    scenario: Scenario,
    reps: int,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
    chunk: int = CHUNK_REPS,
) -> Iterator[RunResult]:
    """The replications of :func:`run` in chunks of ``chunk`` (the same rows, in the same order),
    so that a caller writing each chunk to disk holds at most one chunk's events in memory."""
    if reps < 1:
        raise ValueError("reps must be at least 1")
    for first in range(0, reps, chunk):
        yield _replications(scenario, seed, first, min(first + chunk, reps), reps, progress, True)


def _replications(
    scenario: Scenario, seed: int, first: int, last: int, total: int, progress: Progress | None, events: bool
) -> RunResult:
    if last <= first:
        raise ValueError("reps must be at least 1")
    metrics = []
    rows: list[tuple] = []
    rep_index: list[int] = []
    for rep in range(first, last):
        result = run_replication(scenario, seed, rep)
        metrics.append(result.metrics)
        if events:
            rows.extend(result.events)
            rep_index.extend([rep] * len(result.events))
        if progress is not None:
            progress(rep + 1, total)
    summary = pd.DataFrame(metrics, columns=list(METRIC_COLUMNS))
    return RunResult(summary, events_frame(rows, rep_index, scenario))


def events_frame(rows: Sequence[tuple], rep_index: list[int], scenario: Scenario) -> pd.DataFrame:
    """Event rows as a DataFrame with ``rep`` and a ``timestamp`` (local time, to the second) first.

    Built column by column: text columns become categoricals with fixed categories, the rest int64
    or float64.
    """
    categories = _categories(scenario)
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    data: dict[str, object] = {"rep": np.array(rep_index, dtype=np.int64)}
    for name, values in zip(COLUMNS, columns, strict=True):
        if name in categories:
            data[name] = pd.Categorical(values, categories=categories[name])
        elif name == "detail":
            data[name] = np.array(values, dtype=object)
        elif name in _FLOATS:
            data[name] = np.array(values, dtype=np.float64)
        else:
            data[name] = np.array(values, dtype=np.int64)
    frame = pd.DataFrame(data)
    start = pd.Timestamp(dt.datetime.combine(scenario.meta.start_date, dt.time()))
    offset = pd.to_timedelta(frame["t_hours"], unit="h").dt.round("s")
    frame.insert(1, "timestamp", start + offset)
    return frame


_FLOATS = {"t_hours", "militia_capacity", "wait_hours"}


def _categories(s: Scenario) -> dict[str, list[str]]:
    """Fixed categories of the text columns: the same dtype whatever the events of a run."""
    places = [b.name for b in s.bases.values()] + [f.name for f in s.targets.facilities.values()]
    return {
        "event": list(ev.EVENT_NAMES),
        "actor": list(ev.ACTORS),
        "country": ["", *COUNTRIES],
        "location": ["", *dict.fromkeys(places)],
        "asset": list(ev.ASSETS),
        "weapon": ["", *WEAPON_TYPES],
        "scripted": ["", *s.scripted_attacks],
    }


# --- sweeps: batches of replications on one of three backends ------------------------------------


def run_batch(scenario: Scenario, seed: int, point: int, policy: str, first: int, last: int) -> pd.DataFrame:
    """Replications ``first``..``last - 1`` of one scenario as a typed summary frame
    (:func:`sim.batch.batch_rows`; a replication that raises is a row with its error)."""
    return summary_frame(batch_rows(scenario, seed, point, policy, first, last))


def run_batch_with_events(
    scenario: Scenario, seed: int, point: int, policy: str, first: int, last: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`run_batch`, and the batch's event rows (with ``point`` and ``policy`` first)."""
    rows, events, rep_index = batch_rows_and_events(scenario, seed, point, policy, first, last, True)
    log = events_frame(events, rep_index, scenario)
    log.insert(0, "policy", policy)
    log.insert(0, "point", point)
    return summary_frame(rows), log


_TEXT = ("policy", "outcome", "error")
_WHOLE = ("point", "rep", "seed")


def summary_frame(rows: list[dict]) -> pd.DataFrame:
    """A batch's summary rows (:func:`sim.batch.batch_rows`) as a frame of fixed dtypes, so that
    every batch file has the same schema whatever failed in it: text columns str ('' when missing),
    ``point``, ``rep`` and ``seed`` int64, every metric float64 (NaN for a failed replication)."""
    data: dict[str, object] = {}
    for name in SWEEP_COLUMNS:
        values = [r.get(name) for r in rows]
        if name in _TEXT:
            data[name] = np.array(["" if v is None else str(v) for v in values], dtype=object)
        elif name in _WHOLE:
            data[name] = np.array(values, dtype=np.int64)
        else:
            data[name] = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return pd.DataFrame(data, index=pd.RangeIndex(len(rows)))


#: Seconds between looks at a Dask cluster while no batch finishes, and how long a cluster may have
#: no worker at all before the sweep ends with a line that says how to resume.
DASK_POLL_S = 5.0
#: How long a sweep waits for a Dask cluster with no worker before it ends (seconds); the
#: environment variable ``ESIM_DASK_NO_WORKER_S`` sets another (a cluster whose workers restart slowly).
DASK_NO_WORKER_S = 60.0


def scheduler_problem(address: str, timeout_s: float = 5.0) -> str | None:
    """Why ``address`` is not a Dask scheduler this machine can reach, or None: checked before a
    sweep writes anything."""
    import re
    import socket

    m = re.fullmatch(r"(tcp|tls)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})", address)
    if m is None:
        return f"'{address}' is not a scheduler address (tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786)"
    host, port = m.group(2).strip("[]"), int(m.group(3))
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        return f"nothing answers at {address} ({exc.strerror or type(exc).__name__})"
    return None


class InlineExecutor(Executor):
    """An executor that runs each call when it is submitted, in this process."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller by future.result()
            future.set_exception(exc)
        return future


def windowed(
    executor: Executor,
    fn: Callable[..., object],
    calls: list[tuple],
    window: int,
    poll_s: float | None = None,
    on_idle: Callable[[], None] | None = None,
):
    """Yield ``(index, fn(*calls[index]))`` as each call finishes, keeping at most ``window`` calls
    submitted at once (memory stays flat however many calls). ``on_idle`` is called whenever
    ``poll_s`` seconds pass with nothing finished (it may raise to end the loop)."""
    pending: dict[Future, int] = {}
    it = iter(enumerate(calls))
    for i, args in itertools.islice(it, window):
        pending[executor.submit(fn, *args)] = i
    while pending:
        done, _ = wait(pending, timeout=poll_s, return_when=FIRST_COMPLETED)
        if not done:
            if on_idle is not None:
                on_idle()
            continue
        for fut in done:
            yield pending.pop(fut), fut.result()
        for i, args in itertools.islice(it, len(done)):
            pending[executor.submit(fn, *args)] = i


class Backend:
    """Where batches run: ``in-process``, a local pool of spawned processes, or Dask distributed.

    ``executor``: a pool that outlives one run (the lab keeps its worker processes warm between
    runs); ``workers`` is then its size. Without it, each run starts and ends its own pool."""

    def __init__(
        self,
        workers: int = 1,
        scheduler: str | None = None,
        dask_local: int = 0,
        executor: Executor | None = None,
    ):
        self.workers = max(1, workers)
        self.scheduler = scheduler
        self.dask_local = dask_local
        self.executor = executor

    @property
    def label(self) -> str:
        if self.scheduler:
            return f"Dask scheduler {self.scheduler}"
        if self.dask_local:
            return f"local Dask cluster of {self.dask_local} workers"
        if self.workers > 1:
            return f"{self.workers} local processes"
        return "in-process"

    def map(self, fn: Callable[..., object], calls: list[tuple]):
        """Yield ``(index, result)`` of ``fn(*calls[index])`` as each finishes (any order)."""
        if self.executor is not None:
            yield from windowed(self.executor, fn, calls, 4 * self.workers)
        elif self.scheduler or self.dask_local:
            yield from self._dask(fn, calls)
        elif self.workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn")) as pool:
                yield from windowed(pool, fn, calls, 4 * self.workers)
        else:
            yield from windowed(InlineExecutor(), fn, calls, 1)

    def _dask(self, fn, calls):
        import logging
        import time
        from concurrent.futures import CancelledError

        from dask.distributed import Client, LocalCluster
        from distributed.scheduler import KilledWorker

        # a lost scheduler or worker is said in one line below; distributed's own log would print
        # its reconnection attempts and tracebacks on stderr
        for name in [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "distributed"]:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        cluster = None
        if self.scheduler:
            try:
                client = Client(self.scheduler, timeout="15s")
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(
                    f"cannot reach the Dask scheduler at {self.scheduler} ({type(exc).__name__})"
                ) from None
        else:
            cluster = LocalCluster(
                n_workers=self.dask_local, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        lost = "the finished batches are saved: run the same command with --resume once the cluster is back"
        no_worker_s = float(os.environ.get("ESIM_DASK_NO_WORKER_S", DASK_NO_WORKER_S))
        idle_since: list[float] = []

        def anyone_working() -> None:
            """Nothing finished for a while: end the sweep if the cluster has had no worker for
            ``no_worker_s`` (the scheduler's answer; an error if the scheduler is gone)."""
            if client.scheduler_info().get("workers"):
                idle_since.clear()
            elif not idle_since:
                idle_since.append(time.monotonic())
            elif time.monotonic() - idle_since[0] > no_worker_s:
                raise ConnectionError(f"no Dask worker for {no_worker_s:g} s; {lost}")

        try:
            window = 4 * max(1, len(client.scheduler_info().get("workers", {})) or self.dask_local or 1)
            yield from windowed(
                client.get_executor(pure=False),
                fn,
                calls,
                window,
                poll_s=min(DASK_POLL_S, no_worker_s / 2),
                on_idle=anyone_working,
            )
        except ConnectionError:  # said above (no worker)
            raise
        except (CancelledError, OSError, TimeoutError, KilledWorker) as exc:
            raise ConnectionError(f"lost the Dask cluster ({type(exc).__name__}); {lost}") from None
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
