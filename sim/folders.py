"""Result folders written whole or not at all, and checked before they are read.

:class:`FolderWriter` writes every file of a result into a temporary sibling folder
(``.<name>.partial-<id>``), syncs it to disk, records each file's size and SHA-256 in the manifest
(written last), and only then puts the folder in the place of the old one: on Linux in one atomic
step (``renameat2(RENAME_EXCHANGE)``), elsewhere by two renames. A process killed at any moment
leaves either the old folder or the new one at the result's path, never a mix; what it leaves
beside it (a partial or a replaced folder, both hidden) is removed by the next write.

:func:`verify_folder` checks a folder against its manifest's file list before a reader uses it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

MANIFEST = "manifest.json"
_PARTIAL = ".partial-"
_REPLACED = ".replaced-"


#: Fault injection for the tests: ``ESIM_FAULT_POINT=<point>`` kills the process (SIGKILL) when a
#: write reaches that point: ``written`` (files in the temporary folder, no manifest yet),
#: ``manifest`` (all written and synced, not swapped in), ``swapped`` (the new folder in place, the old
#: one not yet removed).
FAULT_POINT = "ESIM_FAULT_POINT"


def _fault(point: str) -> None:
    if os.environ.get(FAULT_POINT) == point:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class FolderError(Exception):
    """A result folder that cannot be written here, or read as it is."""


class SweepStoreError(Exception):
    """A result folder that cannot take this sweep (it holds another, or --resume finds none).
    Raised by :class:`sim.store.SweepStore`; defined here, with the other folder errors, so that the
    command line can catch it without loading the store (pandas, pyarrow)."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder under ``root`` (and ``root``) to disk."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    return False


def is_replaceable(folder: Path, owned: tuple[str, ...]) -> bool:
    """A folder that a new result may take the place of: empty, or holding a manifest of ours
    (``owned`` names the file that marks one: ``manifest.json``, or any of its file kinds)."""
    if not folder.exists():
        return True
    if not folder.is_dir():
        return False
    entries = [p for p in folder.iterdir()]
    if not entries:
        return True
    return any((folder / name).is_file() for name in owned if not name.startswith("*")) or (
        all(p.is_file() and any(p.name.endswith(n[1:]) for n in owned if n.startswith("*")) for p in entries)
    )


class FolderWriter:
    """Write a result folder whole: ``with FolderWriter(out) as tmp:`` write into ``tmp``; on a clean
    exit the folder is synced and swapped in; on an error ``tmp`` is removed and ``out`` is as it was.

    ``owned``: what marks a folder that may be replaced (default: a ``manifest.json``); any other
    non-empty folder is refused, so that ``--out .`` can never delete a user's files.
    ``manifest``: a dict written last as ``manifest.json``, with ``files`` (size and SHA-256 of every
    file written) added.
    """

    def __init__(self, out: str | Path, owned: tuple[str, ...] = (MANIFEST,), manifest: dict | None = None):
        self.out = Path(out)
        self.owned = owned
        self.manifest = manifest
        self.tmp: Path | None = None

    def _siblings(self, marker: str) -> list[Path]:
        parent = self.out.parent if str(self.out.parent) else Path(".")
        return list(parent.glob(f".{self.out.name}{marker}*"))

    def check(self) -> None:
        """Raise :class:`FolderError` now, before any work, if the result cannot go to ``out``."""
        if self.out.exists() and not self.out.is_dir():
            raise FolderError(f"{self.out} exists and is not a folder")
        here = Path.cwd().resolve()
        if self.out.resolve() == here or self.out.resolve() in here.parents:
            raise FolderError(f"{self.out} is the working folder or holds it: name a result folder inside it")
        if not is_replaceable(self.out, self.owned):
            raise FolderError(
                f"{self.out} holds other files (it is not a result folder of esim): choose another folder"
            )
        parent = self.out.parent if str(self.out.parent) else Path(".")
        parent.mkdir(parents=True, exist_ok=True)
        probe = parent / f".{self.out.name}{_PARTIAL}probe-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()

    def __enter__(self) -> Path:
        self.check()
        for stale in self._siblings(_PARTIAL) + self._siblings(_REPLACED):
            shutil.rmtree(stale, ignore_errors=True)  # left by a process killed while writing
        parent = self.out.parent if str(self.out.parent) else Path(".")
        self.tmp = parent / f".{self.out.name}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            _fault("written")
            if self.manifest is not None:
                files = {
                    str(p.relative_to(self.tmp)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                    for p in sorted(self.tmp.rglob("*"))
                    if p.is_file()
                }
                text = json.dumps({**self.manifest, "files": files}, indent=2) + "\n"
                (self.tmp / MANIFEST).write_text(text, encoding="utf-8")
            _fsync_tree(self.tmp)
            _fault("manifest")
            self._swap()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def _swap(self) -> None:
        assert self.tmp is not None
        parent = self.out.parent if str(self.out.parent) else Path(".")
        if not self.out.exists():
            os.rename(self.tmp, self.out)
        elif _exchange(self.tmp, self.out):  # tmp now holds the old result
            _fault("swapped")
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:  # two renames: between them the old result waits under a hidden name
            replaced = parent / f".{self.out.name}{_REPLACED}{uuid.uuid4().hex[:8]}"
            os.rename(self.out, replaced)
            os.rename(self.tmp, self.out)
            shutil.rmtree(replaced, ignore_errors=True)
        _fsync_dir(parent)


def verify_folder(folder: str | Path) -> list[str]:
    """What is wrong with a result folder against its manifest's file list (empty: nothing).
    Files not in the list (plots, reports, exports made later) are not checked."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        return [f"{folder}: no {MANIFEST}"]
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{path}: unreadable ({type(exc).__name__})"]
    problems = []
    for name, want in info.get("files", {}).items():
        p = folder / name
        if not p.is_file():
            problems.append(f"{name} is missing")
        elif p.stat().st_size != want["bytes"] or sha256_file(p) != want["sha256"]:
            problems.append(f"{name} is not the file its manifest lists")
    return problems
