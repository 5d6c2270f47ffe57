"""Where the batches of a sweep or comparison run: in this process, on a pool of spawned local
processes, or on Dask distributed (:class:`Backend`), through one windowed loop (:func:`windowed`).

Nothing here imports pandas or the model: a command can start its worker processes before it loads
them, so that the workers' start-up overlaps its own (:meth:`Backend.start`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait

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
    runs); ``workers`` is then its size. Without it, each run starts and ends its own pool, unless
    :meth:`start` started one ahead."""

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
        self._own: Executor | None = None  # a local pool started by start(), closed by close()

    def start(self, wait: bool = False) -> Backend:
        """Start a local pool now (``workers`` > 1, no Dask, no executor given) and have each worker
        import what a batch needs while the caller goes on (with ``wait``, until they have);
        :meth:`map` then runs on it until :meth:`close`. Nothing to do for the other backends.
        Returns the backend (``with Backend(2).start() as backend: ...``)."""
        if self.executor is None and self._own is None and not (self.scheduler or self.dask_local):
            if self.workers > 1:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                self._own = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
                warming = [self._own.submit(warm) for _ in range(self.workers)]
                if wait:
                    for f in warming:
                        f.result()
        return self

    def close(self) -> None:
        """Stop the pool that :meth:`start` started (its workers end once their batch is done)."""
        if self._own is not None:
            self._own.shutdown(wait=True, cancel_futures=True)
            self._own = None

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
        pool = self.executor or self._own
        if pool is not None:
            yield from windowed(pool, fn, calls, 4 * self.workers)
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


def warm() -> bool:
    """A worker's first task: import what a batch of replications needs (:mod:`sim.batch`)."""
    import sim.batch  # noqa: F401  (the import is the warm-up)

    return True
