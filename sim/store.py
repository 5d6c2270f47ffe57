"""Write results: a run's or a comparison's folder whole (:class:`sim.folders.FolderWriter`: a
temporary sibling folder swapped in, with a manifest of every file's size and checksum), single
files through a temporary name and a rename (:func:`atomic_write`), and a sweep's batch store."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import simpy

from sim.folders import SweepStoreError
from sim.runner import RunResult
from sim.scenario import Scenario, resolved_toml, scenario_hash
from sim.version import __version__

SUMMARY = "summary.parquet"
EVENTS = "events.parquet"
RESOLVED = "scenario.resolved.toml"
SOURCES = "scenario.sources.json"
MANIFEST = "manifest.json"


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are for sharing
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the bytes are on disk before the name says the file is whole
        finally:
            os.close(fd)
        os.replace(tmp, path)
        from sim.folders import _fsync_dir

        _fsync_dir(path.parent)  # and the rename itself
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(out: Path) -> None:
    """Raise OSError now, before a long run, if result files cannot be written into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".write-check.", dir=out)
    os.close(fd)
    os.unlink(tmp)


def manifest(
    scenario: Scenario,
    source: str,
    seed: int,
    reps: int,
    wall_s: float,
    argv: list[str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    parameters=None,
    keys_drawn: list[str] | None = None,
) -> dict:
    """What ran: the scenario (name, file, ``--set`` overrides, policy, whether it uses a fitted
    calibration), where its parameters came from (``parameters``: the fitted point, or a posterior
    file with its hash and the keys drawn), seed, replications, versions, wall time and the command
    line."""
    from sim.posterior import Parameters
    from sim.scenario.sources import uses_fitted

    return {
        "escalation_sim_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "simpy": simpy.__version__,
        "pandas": pd.__version__,
        "scenario": scenario.meta.name,
        "scenario_file": source,
        "scenario_file_absolute": str(Path(source).resolve()),
        "overrides": list(overrides),
        "policy": scenario.command.policy,
        "calibration": uses_fitted(source),
        "parameters": (parameters or Parameters()).manifest(keys_drawn),
        "scenario_sha256": scenario_hash(scenario),
        "seed": seed,
        "reps": reps,
        "wall_seconds": round(wall_s, 3),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": argv or [],
    }


def run_label(info: dict) -> str:
    """One line that says exactly what a result folder holds, from its manifest: the scenario (or
    the scenarios compared), the policy, every ``--set`` override, the calibration used, the
    replications and the seed."""
    if info.get("scenarios"):  # a comparison
        names = ", ".join(s["name"] for s in info["scenarios"])
        what = f"comparison of {names} on the same seeds"
        sets = sorted({o for s in info["scenarios"] for o in s.get("overrides", [])})
        cal = {s.get("calibration", "") for s in info["scenarios"]} - {""}
    else:
        what = f"{info.get('scenario', '?')} (policy {info.get('policy', '?')})"
        sets = info.get("overrides", [])
        cal = {info.get("calibration", "")} - {""}
    parts = [what]
    if sets:
        parts.append("--set " + " ".join(sets))
    params = info.get("parameters") or {"mode": "point"}
    if params.get("mode") == "posterior":
        r = params.get("reps_per_draw", 1)
        parts.append(
            f"posterior {params.get('file')} (sha256 {str(params.get('sha256', ''))[:12]}, "
            f"{params.get('draws', 0):,} draws, ESS {params.get('ess', 0):,.0f}; "
            f"{r} replication{'s' if r != 1 else ''} a draw)"
        )
    else:
        note = f" ({params['note']})" if params.get("note") else ""
        parts.append("fitted point: " + ", ".join(sorted(cal)) + note if cal else "no fitted calibration")
    reps = info.get("reps")
    parts.append(
        f"{reps:,} replications{' each' if info.get('scenarios') else ''}, seed {info.get('seed')}"
        if reps is not None
        else "replications unknown"
    )
    return "; ".join(parts)


def default_run_folder(
    scenario_file: str | Path, overrides: list[str] | tuple[str, ...] = (), posterior: bool = False
) -> Path:
    """``results/<file stem>``, and with overrides ``results/<stem>+<key>=<value>+...`` so that a
    variant never overwrites the plain run (a name too long for a folder ends in a short hash); a
    run over a posterior adds ``+posterior``, so that it never overwrites the run at the point."""
    import hashlib
    import re

    stem = Path(scenario_file).stem + ("+posterior" if posterior else "")
    if not overrides:
        return Path("results") / stem
    slug = "+".join(re.sub(r"[^A-Za-z0-9_.=-]+", "_", o.replace(" ", "")) for o in overrides)
    if len(slug) > 80:
        slug = slug[:60] + "-" + hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:10]
    return Path("results") / f"{stem}+{slug}"


def as_ran(resolved: str, sources: list[dict], info: dict) -> tuple[str, list[dict]]:
    """The resolved scenario and its sources as a run over a posterior ran them: the keys drawn
    took each draw's value, not the one written (the story point's); both files say so."""
    p = info.get("parameters") or {}
    keys = p.get("keys_drawn") or []
    if p.get("mode") != "posterior" or not keys:
        return resolved, sources
    said = (
        f"drawn from the posterior {p.get('file')} (sha256 {str(p.get('sha256'))[:12]}): each group of "
        f"{p.get('reps_per_draw')} replications ran one draw's value; the value written is the story point's"
    )
    head = f"# Run over the posterior: these keys were {said}:\n" + "".join(f"#   {k}\n" for k in keys)
    marked = [{**x, "drawn": said} if x.get("key") in keys else x for x in sources]
    return head + resolved, marked


def write_run(
    out: Path,
    chunks: Iterable[RunResult],
    scenario: Scenario,
    info: dict,
    sources: list[dict] | None = None,
) -> pd.DataFrame:
    """Write summary, events, resolved scenario, its sources and the manifest as the folder ``out``,
    whole (the old folder stays until the new one is complete); return the summary.

    ``chunks``: the replications in chunks (:func:`sim.runner.run_chunks`; one chunk for a run held
    in memory): each chunk's events are appended to ``events.parquet`` as a row group as it comes,
    so memory holds one chunk's events at a time.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim.folders import FolderWriter

    summaries = []
    with FolderWriter(Path(out), manifest=info) as tmp:
        writer = None
        try:
            for chunk in chunks:
                table = pa.Table.from_pandas(chunk.events, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp / EVENTS, table.schema)
                writer.write_table(table)
                summaries.append(chunk.summary)
        finally:
            if writer is not None:
                writer.close()
        summary = pd.concat(summaries, ignore_index=True)
        summary.to_parquet(tmp / SUMMARY, index=False)
        text, sources = as_ran(resolved_toml(scenario), sources or [], info)
        (tmp / RESOLVED).write_text(text, encoding="utf-8")
        (tmp / SOURCES).write_text(json.dumps(sources, indent=1) + "\n", encoding="utf-8")
    return summary


def comparison_manifest(comp, argv: list[str] | None = None) -> dict:
    """What a comparison (:class:`sim.compare.Comparison`) ran: the reference's manifest, and each
    scenario's name, file, policy, overrides, calibration and hash."""
    from sim.scenario.sources import uses_fitted

    info = manifest(
        comp.scenarios[0],
        comp.files[0],
        comp.seed,
        comp.reps,
        comp.seconds,
        argv=argv,
        overrides=comp.overrides,
        parameters=comp.parameters,
        keys_drawn=sorted({k for ks in (comp.draw_keys or {}).values() for k in ks}),
    )
    info["scenario"] = "comparison"
    info["scenarios"] = [
        {
            "name": n,
            "file": f,
            "scenario": sc.meta.name,
            "policy": sc.command.policy,
            "overrides": comp.overrides_of(i),
            "calibration": uses_fitted(f),
            "keys_drawn": (comp.draw_keys or {}).get(n, []),
            "scenario_sha256": scenario_hash(sc),
        }
        for i, (n, f, sc) in enumerate(zip(comp.names, comp.files, comp.scenarios, strict=True))
    ]
    return info


def write_comparison(out: Path, comp, info: dict) -> list[Path]:
    """Write a comparison (:class:`sim.compare.Comparison`): the replications of every scenario
    (``summary.parquet``, with ``policy`` naming the scenario), the paired table
    (``comparison.parquet``), the events (``events.parquet``), each scenario as it ran with its
    sources (``scenarios/<name>.resolved.toml``, ``scenarios/<name>.sources.json``), the reference's
    copy at the top (``scenario.resolved.toml``) and the manifest last."""
    from sim.folders import FolderWriter
    from sim.scenario.sources import scenario_sources

    out = Path(out)
    with FolderWriter(out, manifest=info) as tmp:
        comp.summary.to_parquet(tmp / SUMMARY, index=False)
        comp.table.to_parquet(tmp / "comparison.parquet", index=False)
        if comp.events is not None:
            comp.events.to_parquet(tmp / EVENTS, index=False)
        (tmp / "scenarios").mkdir()
        for i, (name, file, sc) in enumerate(zip(comp.names, comp.files, comp.scenarios, strict=True)):
            stem = name.replace(":", "-")
            text, listed = as_ran(resolved_toml(sc), scenario_sources(file, comp.overrides_of(i), sc), info)
            sources = json.dumps(listed, indent=1) + "\n"
            (tmp / "scenarios" / f"{stem}.resolved.toml").write_text(text, encoding="utf-8")
            (tmp / "scenarios" / f"{stem}.sources.json").write_text(sources, encoding="utf-8")
            if i == 0:
                (tmp / RESOLVED).write_text(text, encoding="utf-8")
                (tmp / SOURCES).write_text(sources, encoding="utf-8")
    return sorted(p for p in out.rglob("*") if p.is_file())


# --- sweeps: one Parquet file per finished batch ---------------------------------------------------

SWEEP_MANIFEST = "sweep.json"
DESIGN = "design.parquet"
BATCHES = "batches"
EVENT_BATCHES = "events"


def _holds(path: Path, task: tuple[int, str, int, int] | None) -> bool:
    """Whether a batch file reads back whole with the rows of ``task`` (point, policy, first, last):
    one row per replication first..last-1, in order."""
    import pyarrow.parquet as pq

    if task is None:
        return False
    point, policy, first, last = task
    try:
        cols = pq.read_table(path, columns=["point", "policy", "rep"]).to_pydict()
    except Exception:  # noqa: BLE001 - truncated, empty or foreign: not a finished batch
        return False
    return (
        cols["rep"] == list(range(first, last))
        and set(cols["point"]) == {point}
        and set(cols["policy"]) == {policy}
    )


def sorted_summary(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Batches' summary frames as one, in (point, policy, rep) order."""
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["point", "policy", "rep"], kind="stable").reset_index(drop=True)


class MemoryStore:
    """Where a sweep's batches go when nothing is to be resumed: in memory (a comparison without a
    folder: ``esim compare`` without ``--out``, the lab). The same frames as :class:`SweepStore`
    gives back from its files, without writing, syncing and reading a Parquet file per batch."""

    def __init__(self) -> None:
        self._frames: dict[str, pd.DataFrame] = {}
        self._events: dict[str, pd.DataFrame] = {}

    def open(
        self,
        fingerprint: str,
        info: dict,
        design: pd.DataFrame,
        resume: bool,
        expected: dict[str, tuple[int, str, int, int]] | None = None,
    ) -> set[str]:
        """Nothing is finished in a new memory store."""
        return set()

    def write_batch(self, name: str, frame: pd.DataFrame, events: pd.DataFrame | None = None) -> None:
        self._frames[name] = frame
        if events is not None:
            self._events[name] = events

    def summary(self) -> pd.DataFrame:
        """Every row, in (point, policy, rep) order (as :meth:`SweepStore.summary`)."""
        return sorted_summary([self._frames[k] for k in sorted(self._frames)])

    def event_batches(self) -> list[pd.DataFrame]:
        """The batches' event frames, in the order of their names (as the files sort)."""
        return [self._events[k] for k in sorted(self._events)]


class SweepStore:
    """A sweep's result folder: ``sweep.json`` (what the sweep is), ``design.parquet`` (its
    points) and ``batches/<task>.parquet``, one per finished batch, each written to a temporary
    name and renamed, so a batch file is whole or absent: after a crash, ``--resume`` runs exactly
    the batches that have no file."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.batches = self.out / BATCHES

    def open(
        self,
        fingerprint: str,
        info: dict,
        design: pd.DataFrame,
        resume: bool,
        expected: dict[str, tuple[int, str, int, int]] | None = None,
    ) -> set[str]:
        """Prepare the folder; return the names of the batches already finished: those whose file
        reads back with exactly the rows ``expected`` of it (by batch name: point, policy, first
        and last replication). Any other batch file (cut short by a full disk, truncated, not a
        Parquet file, holding other rows, of no task of this sweep) is removed, with its events,
        so that it runs again."""
        manifest_path = self.out / SWEEP_MANIFEST
        if manifest_path.is_file():
            held = self.manifest()
            if held.get("fingerprint") != fingerprint:
                raise SweepStoreError(
                    f"{self.out} holds results of another sweep (or of this one "
                    "before its files changed); use another --out"
                )
            if not resume:
                raise SweepStoreError(
                    f"{self.out} already holds this sweep: add --resume to finish it, or use another --out"
                )
            if bool(held.get("events")) != bool(info.get("events")):
                raise SweepStoreError(
                    f"{self.out} was started {'with' if held.get('events') else 'without'}"
                    " --events: resume it the same way"
                )
        elif resume and self.batches.is_dir() and any(self.batches.iterdir()):
            raise SweepStoreError(f"{self.out} has batch files but no {SWEEP_MANIFEST}")
        self.batches.mkdir(parents=True, exist_ok=True)
        for stale in [*self.batches.glob(".*.tmp"), *(self.out / EVENT_BATCHES).glob(".*.tmp")]:
            stale.unlink()  # a batch being written when the sweep died
        text = json.dumps({**info, "fingerprint": fingerprint}, indent=2) + "\n"
        atomic_write(manifest_path, lambda p: p.write_text(text, encoding="utf-8"))
        atomic_write(self.out / DESIGN, lambda p: design.to_parquet(p))
        finished = set()
        for path in self.batches.glob("*.parquet"):
            if expected is None or _holds(path, expected.get(path.stem)):
                finished.add(path.stem)
            else:
                path.unlink()
                (self.out / EVENT_BATCHES / path.name).unlink(missing_ok=True)
        return finished

    def write_batch(self, name: str, frame: pd.DataFrame, events: pd.DataFrame | None = None) -> None:
        """Write a finished batch; its event rows (if kept) go first, so that a batch whose
        summary file exists always has its events."""
        if events is not None:
            folder = self.out / EVENT_BATCHES
            atomic_write(folder / f"{name}.parquet", lambda p: events.to_parquet(p, index=False))
        atomic_write(self.batches / f"{name}.parquet", lambda p: frame.to_parquet(p, index=False))

    def summary(self) -> pd.DataFrame:
        """Every finished row, in (point, policy, rep) order. A batch file that cannot be read is a
        :class:`SweepStoreError` naming it (``--resume`` reruns it)."""
        files = sorted(self.batches.glob("*.parquet"))
        frames = []
        for f in files:
            try:
                frames.append(pd.read_parquet(f))
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
                raise SweepStoreError(
                    f"{f}: unreadable batch file ({type(exc).__name__}); "
                    "run the sweep again with --resume to redo it"
                ) from None
        return sorted_summary(frames)

    def design(self) -> pd.DataFrame:
        try:
            return pd.read_parquet(self.out / DESIGN)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise SweepStoreError(
                f"{self.out / DESIGN}: unreadable ({type(exc).__name__}); --resume writes it again"
            ) from None

    def manifest(self) -> dict:
        """The sweep's ``sweep.json``; an unreadable one is a :class:`SweepStoreError`."""
        path = self.out / SWEEP_MANIFEST
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SweepStoreError(
                f"{path}: unreadable ({type(exc).__name__}); the batches are "
                "untouched: restore the file or start the sweep in another "
                "--out"
            ) from None
        if not isinstance(info, dict):
            raise SweepStoreError(f"{path}: not a sweep's manifest")
        return info
