"""Where each value of a scenario comes from: the file (or ``--set``) that set it and the comment that
names its source, beside the resolved value that ran.

Scenario files carry their sources as comments (``key = value  # facts §3: ...``); keys that a
calibration sets are written as commented placeholders (``# key  # fitted: calibration/fitted.toml``)
and get their values from the file the scenario extends. :func:`scenario_sources` reads those
comments along the ``extends`` chain and pairs each with the value of the resolved scenario, so a
report shows what ran, not what a file says today.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sim.scenario.loader import SET_SOURCE, extends_chain, load_scenario, parse_override
from sim.scenario.schema import Scenario

_KEY = r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*"
#: ``key = value  # source`` (a value line) or ``# key  # source`` (a placeholder for a fitted key)
_LINE = re.compile(rf"^\s*(?P<hash>#\s*)?(?P<key>{_KEY})\s*(?:=\s*(?P<value>.+?))?\s+#\s*(?P<source>.+)$")
_BARE = re.compile(rf"^\s*(?P<key>{_KEY})\s*=")
_TABLE = re.compile(rf"^\s*\[(?P<table>{_KEY})\]\s*(?:#\s*(?P<source>.+))?$")
_CONTINUATION = re.compile(r"^\s+#\s*(?P<text>.+)$")

#: the name of the file that a calibration writes and a scenario extends to use its fitted point
FITTED_FILE = "fitted.toml"


def _lookup(tree: Any, path: list[str]) -> tuple[bool, Any]:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return False, None
        tree = tree[part]
    return True, tree


def format_value(value: Any) -> str:
    """A resolved value as one short line: numbers and text as they are, tables as inline JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "), default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _comments(path: Path, known: dict) -> dict[str, tuple[str, str]]:
    """``{key path: (source comment, file name)}`` of one file (keys the resolved scenario has);
    the file name is empty for a commented placeholder, which names a source but sets nothing."""
    out: dict[str, tuple[str, str]] = {}
    table = ""
    last: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _TABLE.match(line)
        if m:
            table = m.group("table")
            last = None
            if m.group("source"):
                out[table] = (m.group("source").strip(), path.name)
                last = table
            continue
        m = _LINE.match(line)
        if m and not (m.group("hash") and m.group("value")):
            key = f"{table}.{m.group('key')}" if table else m.group("key")
            if _lookup(known, key.split("."))[0]:
                out[key] = (m.group("source").strip(), "" if m.group("hash") else path.name)
                last = key
                continue
        m = _CONTINUATION.match(line)
        if (
            m and last is not None and line.lstrip().startswith("#") and len(line) - len(line.lstrip()) > 20
        ):  # an indented comment that goes on from the line above
            text, file = out[last]
            out[last] = (f"{text} {m.group('text').strip()}", file)
            continue
        m = _BARE.match(line)
        if m:
            key = f"{table}.{m.group('key')}" if table else m.group("key")
            if _lookup(known, key.split("."))[0] and key not in out:
                out[key] = ("", path.name)
            last = None
        elif not line.strip():
            last = None
    return out


def scenario_sources(
    path: str | Path, overrides: Iterable[str] = (), scenario: Scenario | None = None
) -> list[dict]:
    """One row per key written in the scenario's files (or set with ``--set``), in file order:
    ``key``, ``value`` (the resolved value that ran), ``source`` (the comment that names where it
    comes from, the nearest one along the ``extends`` chain), ``file`` (the file that set it, or
    ``--set``), ``override`` (``True`` for a ``--set`` key) and ``file_value`` (what the files say,
    for an overridden key; empty when only a default stood there)."""
    overrides = list(overrides)
    scenario = scenario or load_scenario(path, overrides)
    resolved = scenario.model_dump(mode="json", exclude_none=True)
    plain = load_scenario(path).model_dump(mode="json", exclude_none=True) if overrides else resolved
    rows: dict[str, dict] = {}
    for file in reversed(extends_chain(path)):  # the base first; a derived file's comment wins
        for key, (source, name) in _comments(file, resolved).items():
            row = rows.setdefault(key, {"key": key, "source": "", "file": name})
            if name:
                row["file"] = name
                if source:
                    row["source"] = source
            elif source:  # a placeholder: its source first, then what the setting file said
                row["source"] = f"{source}; {row['source']}" if row["source"] else source
    for text in overrides:
        keys, _ = parse_override(text)
        key = ".".join(keys)
        found, before = _lookup(plain, keys)
        row = rows.setdefault(key, {"key": key, "source": "", "file": SET_SOURCE})
        row.update(file=SET_SOURCE, override=True, file_value=format_value(before) if found else "")
    out = []
    for key, row in rows.items():
        found, value = _lookup(resolved, key.split("."))
        if (
            isinstance(value, dict)
            and not row.get("override")
            and row["source"]
            and any(k.startswith(f"{key}.") for k in rows)
        ):
            out.append({**row, "value": "", "override": False, "file_value": ""})  # a table's source
            continue
        out.append(
            {"override": False, "file_value": "", **row, "value": format_value(value) if found else ""}
        )
    return out


def uses_fitted(path: str | Path) -> str:
    """The fitted file that a scenario's ``extends`` chain includes (relative to the scenario's own
    folder's parent, as written), or '' when it uses no calibration."""
    for file in extends_chain(path):
        if file.name == FITTED_FILE:
            return (
                str(file.resolve().relative_to(Path.cwd().resolve()))
                if file.resolve().is_relative_to(Path.cwd().resolve())
                else str(file.resolve())
            )
    return ""
