"""Walk the docs as a new user: run every command of the README and docs/teaching.md, in order, in a
fresh copy of the repository, and check each exit code, that no traceback or 'nan' is printed, and
that every result folder and report says exactly what ran (scenario, overrides, replications, seed).

    python scripts/walk_docs.py                       # README.md, then docs/teaching.md
    python scripts/walk_docs.py docs/teaching.md      # one file
    WALK_TRANSCRIPT=walk.txt python scripts/walk_docs.py docs/teaching.md   # keep what each printed

The copy holds the repository's files (tracked and new, not ignored ones) and uses this checkout's
.venv, so nothing is installed. Commands that need what a lesson cannot give (a Dask scheduler, a
crash to resume from, the whole test suite, an 8-minute calibration) are listed in SKIP with the
reason and printed, never silently left out. Exit code 0 when every command passed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Commands not run by the walk, by a part of their text, with the reason printed.
SKIP = {
    "make test": "the walk is part of the test suite",
    "esim calibrate": "a calibration takes about 8 minutes (make calibrate; BENCHMARKS.md)",
    "--scheduler tcp://": "needs a running Dask scheduler on another machine",
    "--resume": "resumes a sweep after a crash; tests/test_sweep.py kills and resumes one",
    "sweeps/policies.toml --out results/policies --dask-local": "8,000 replications on a local Dask "
    "cluster (about a minute); "
    "tests/test_sweep.py runs Dask",
}

#: Commands that serve until stopped, by a part of their text, with the address that must answer:
#: the walk starts them, waits for the address (at most a minute), then stops them.
SERVE = {"esim lab": "http://127.0.0.1:8765/api/controls"}

#: Exit codes a command may end with besides 0: `esim check` ends with 1 when a check fails, which
#: is a result, not an error.
EXPECTED = {"esim check": (0, 1)}


def commands(markdown: Path) -> list[str]:
    """The commands of the ``sh`` code blocks of a Markdown file, continuation lines joined."""
    return [cmd for cmds, _ in blocks(markdown) for cmd in cmds]


def blocks(markdown: Path) -> list[tuple[list[str], list[str]]]:
    """Each ``sh`` block's commands, with the lines of the ``text`` blocks that follow it before the
    next ``sh`` block: what the doc says those commands print (``...`` lines left out)."""
    out: list[tuple[list[str], list[str]]] = []
    for kind, body in re.findall(r"```(sh|text)\n(.*?)```", markdown.read_text(encoding="utf-8"), re.S):
        if kind == "sh":
            cmds = []
            for line in body.replace("\\\n", " ").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    cmds.append(line)
            out.append((cmds, []))
        elif out:
            out[-1][1].extend(x for x in body.splitlines() if x.strip() and x.strip() != "...")
    return out


#: What may differ between two runs of one command: wall times and rates.
_VARIES = (
    (re.compile(r"\d[\d,]*(\.\d+)? s\b"), "<T> s"),
    (re.compile(r"\(\d[\d,]*(\.\d+)? reps/s\)"), "(<R> reps/s)"),
    (re.compile(r"\d[\d,]*(\.\d+)?/s\)"), "<R>/s)"),
)


def _normal(text: str) -> str:
    for pattern, repl in _VARIES:
        text = pattern.sub(repl, text)
    return " ".join(text.split())


def missing_quotes(quoted: list[str], printed: str) -> list[str]:
    """The lines a doc quotes that the commands did not print (times and rates aside)."""
    seen = _normal(printed)
    return [q for q in quoted if _normal(q) not in seen]


def _strip_comment(cmd: str) -> str:
    return re.sub(r"\s+#.*$", "", cmd)


def _option(args: list[str], name: str, default=None):
    values = [args[i + 1] for i, a in enumerate(args[:-1]) if a == name]
    return values if name == "--set" else (values[-1] if values else default)


def check_labels(cmd: str, cwd: Path) -> list[str]:
    """What a command wrote must say what ran: the manifest of a run or comparison names the
    scenario, the overrides, the replications and the seed of the command line; a report's page
    opens with that label."""
    sys.path.insert(0, str(cwd))
    from sim.store import default_run_folder, run_label

    problems = []
    args = shlex.split(_strip_comment(cmd))
    if len(args) < 2 or args[0] != "esim":
        return problems
    verb = args[1]
    if verb in ("run", "compare"):
        sets = _option(args, "--set")
        reps = int(_option(args, "--reps", _option(args, "-n", 200 if verb == "run" else 500)))
        seed = int(_option(args, "--seed", 20231017))
        files = [a for a in args[2:] if a.endswith(".toml")]
        out = _option(args, "--out")
        if out is None and verb == "run":
            out = str(default_run_folder(files[0], sets, "--posterior" in args))
        if out is None:
            return problems
        info = json.loads((cwd / out / "manifest.json").read_text(encoding="utf-8"))
        if info.get("reps") != reps or info.get("seed") != seed or info.get("overrides") != sets:
            problems.append(
                f"{out}/manifest.json says reps {info.get('reps')}, seed "
                f"{info.get('seed')}, overrides {info.get('overrides')}"
            )
        names = [e["file"] for e in info.get("scenarios", [])] or [info.get("scenario_file")]
        if names != files:
            problems.append(f"{out}/manifest.json names {names}, the command ran {files}")
    if verb == "report":
        folder, page = cwd / args[2], cwd / _option(args, "--html")
        info_path = folder / "manifest.json"
        if info_path.is_file():
            label = run_label(json.loads(info_path.read_text(encoding="utf-8")))
            import html

            if html.escape(label, quote=True) not in page.read_text(encoding="utf-8"):
                problems.append(f"{page} does not open with what ran ({label})")
    return problems


def walk(files: list[Path], workdir: Path) -> int:
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(workdir),
        "COLUMNS": "120",
    }
    failed = 0
    started = time.perf_counter()
    done: set[str] = set()
    printed: dict[str, str] = {}  # what each command printed, for the lines the docs quote
    for doc in files:
        print(f"== {doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc}", flush=True)
        for cmds, quoted in blocks(doc):
            failed += _walk_block(cmds, workdir, env, done, printed)
            problems = missing_quotes(quoted, "\n".join(printed.get(_strip_comment(c), "") for c in cmds))
            if quoted:
                print(
                    f"{'FAIL' if problems else 'ok  '}  the {len(quoted)} lines the doc quotes after "
                    f"'{cmds[-1][:60]}'" + (f": {len(problems)} not printed" if problems else ""),
                    flush=True,
                )
            for q in problems:
                print(f"      not printed: {q.strip()[:150]}", flush=True)
            failed += bool(problems)
    print(f"{failed} failed; {time.perf_counter() - started:.0f} s in all", flush=True)
    return 1 if failed else 0


def _walk_block(cmds: list[str], workdir: Path, env: dict, done: set[str], printed: dict[str, str]) -> int:
    """Run one block's commands; how many failed."""
    failed = 0
    for cmd in cmds:
        skip = next((why for part, why in SKIP.items() if part in cmd), None)
        if skip is None and _strip_comment(cmd) in done and not cmd.startswith("."):
            skip = "the same command ran above, in this copy: same seeds, same result"
        done.add(_strip_comment(cmd))
        if skip:
            print(f"SKIP  {cmd}\n      ({skip})", flush=True)
            continue
        t0 = time.perf_counter()
        address = next((url for part, url in SERVE.items() if part in cmd), None)
        if address is not None:
            problem = serve_once(cmd, address, workdir, env)
            status = "ok  " if problem is None else "FAIL"
            print(f"{status}  {cmd}  (answered at {address}; {time.perf_counter() - t0:.1f} s)", flush=True)
            if problem:
                print(f"      {problem}", flush=True)
            failed += problem is not None
            continue
        p = subprocess.run(
            ["bash", "-c", cmd], cwd=workdir, env=env, capture_output=True, text=True, timeout=900
        )
        allowed = next((codes for part, codes in EXPECTED.items() if part in cmd), (0,))
        problems = []
        if p.returncode not in allowed:
            problems.append(f"exit code {p.returncode}: {p.stderr.strip()[-400:]}")
        if "Traceback" in p.stderr or "Traceback" in p.stdout:
            problems.append("a traceback")
        if re.search(r"\bnan\b", p.stdout):
            problems.append("'nan' in the output")
        if not problems:
            problems = check_labels(cmd, workdir)
        status = "ok  " if not problems else "FAIL"
        if os.environ.get("WALK_TRANSCRIPT"):  # what the command printed, for refreshing the docs
            with open(os.environ["WALK_TRANSCRIPT"], "a", encoding="utf-8") as f:
                f.write(f"$ {cmd}\n{p.stdout}{p.stderr}\n")
        printed[_strip_comment(cmd)] = p.stdout
        print(f"{status}  {cmd}  ({time.perf_counter() - t0:.1f} s)", flush=True)
        for problem in problems:
            print(f"      {problem}", flush=True)
        failed += bool(problems)
    return failed


def serve_once(cmd: str, address: str, workdir: Path, env: dict) -> str | None:
    """Start a serving command, wait until ``address`` answers, stop it: None, or what went wrong."""
    import urllib.request

    proc = subprocess.Popen(
        ["bash", "-c", f"exec {cmd}"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return (
                    f"ended before serving (exit code {proc.returncode}): {proc.stderr.read().strip()[-400:]}"
                )
            try:
                with urllib.request.urlopen(address, timeout=2) as answer:
                    return None if answer.status == 200 else f"{address} answered {answer.status}"
            except OSError:
                time.sleep(0.3)
        return f"{address} did not answer within a minute"
    finally:
        proc.terminate()
        proc.wait(10)


def copy_repository(dest: Path) -> None:
    """The repository's own files (tracked, and new files git does not ignore), and this
    checkout's .venv/bin linked in."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    venv = dest / ".venv"  # this checkout's environment, marked installed for `make`
    venv.mkdir()
    (venv / "bin").symlink_to(ROOT / ".venv" / "bin")
    (venv / ".installed").touch()


def main(argv: list[str]) -> int:
    files = [ROOT / a for a in argv] or [ROOT / "README.md", ROOT / "docs/teaching.md"]
    with tempfile.TemporaryDirectory(prefix="esim-walk-") as tmp:
        copy_repository(Path(tmp))
        return walk(files, Path(tmp))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
