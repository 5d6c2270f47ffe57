"""The scenario-key reference, generated from the pydantic schema: every key with its type, bounds,
unit, default and description, and the value and source comment of the shipped baseline.

    python -m sim.scenario.reference > docs/scenario-keys.md      # or: make docs

A test regenerates it and compares it with the committed file, so the reference stays current.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sim.scenario.schema import Scenario

#: A key's unit, from the end of its name (the project's convention).
UNITS = (
    ("_per_day", "per day"),
    ("_hours", "hours"),
    ("_days", "days"),
    ("_miles", "miles"),
    ("_m", "metres"),
    ("_date", "ISO date"),
    ("_probability", "probability (0-1)"),
    ("_share", "share (0-1)"),
)

#: The name shown for the keys of a table whose keys the user chooses.
PLACEHOLDERS = {
    "drivers": "<driver>",
    "weapons": "<weapon>",
    "bases": "<base>",
    "scripted_attacks": "<attack>",
    "packages": "<severity>",
    "munitions": "<munition>",
    "types": "<type>",
    "facilities": "<facility>",
    "intercept_probability": "<weapon>",
    "weapons_per_aircraft": "<munition>",
}


def _unit(name: str, bounds: str) -> str:
    for suffix, unit in UNITS:
        if name.endswith(suffix) or name == suffix.lstrip("_"):
            return unit
    if "probability" in name or name in ("share", "capacity_loss") or bounds == "0 to 1":
        return "probability or share (0-1)"
    if name in ("time",):
        return "ISO date and time (local)"
    return ""


def _num(x: Any) -> str:
    return f"{x:,.10g}"


def _bounds(info) -> str:
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, at.Ge):
            lo = _num(m.ge)
        elif isinstance(m, at.Gt):
            lo = f"above {_num(m.gt)}"
        elif isinstance(m, at.Le):
            hi = _num(m.le)
        elif isinstance(m, at.Lt):
            hi = f"below {_num(m.lt)}"
    if lo is not None and hi is not None:
        return f"{lo} to {hi}"
    if lo is not None:
        return f">= {lo}" if not lo.startswith("above") else lo
    if hi is not None:
        return f"<= {hi}" if not hi.startswith("below") else hi
    return ""


def _type(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " / ".join(f"`{a}`" for a in get_args(annotation))
    if get_origin(annotation) is typing.Annotated:
        return _type(get_args(annotation)[0])
    name = getattr(annotation, "__name__", str(annotation))
    return {
        "float": "number",
        "int": "integer",
        "bool": "true / false",
        "str": "text",
        "date": "date",
        "datetime": "date and time",
    }.get(name, name)


def _default(info) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.default if info.default_factory is None else info.default_factory()
    if isinstance(value, BaseModel):
        return ", ".join(f"{k} = {v}" for k, v in value.model_dump().items())
    if value in ({}, []):
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value}"


def _rows(model: type[BaseModel], prefix: str, concrete: str) -> list[dict]:
    """One row per leaf key under ``model``; ``concrete`` is the same path with the baseline's own
    table keys in place of placeholders (to look up its value and source)."""
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        path, here = f"{prefix}{name}", f"{concrete}{name}"
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(_rows(ann, f"{path}.", f"{here}."))
            continue
        if get_origin(ann) is dict:
            key_type, value = get_args(ann)
            holder = PLACEHOLDERS.get(name, "<key>")
            one_of = (
                f" `{holder}` is one of: {', '.join(get_args(key_type))}."
                if get_origin(key_type) is Literal
                else ""
            )
            if isinstance(value, type) and issubclass(value, BaseModel):
                out.append(
                    {
                        "key": f"{path}.{holder}",
                        "kind": "table",
                        "model": value,
                        "concrete": here,
                        "info": info,
                        "one_of": one_of,
                    }
                )
                out.extend(_rows(value, f"{path}.{holder}.", f"{here}.*."))
                continue
            bounds = _bounds(typing.get_args(value)[1]) if get_origin(value) is typing.Annotated else ""
            out.append(
                {
                    "key": f"{path}.{holder}",
                    "kind": "leaf",
                    "type": _type(value),
                    "bounds": bounds,
                    "unit": _unit(name, bounds),
                    "default": _default(info),
                    "description": (info.description or "") + one_of,
                    "concrete": here,
                }
            )
            continue
        if get_origin(ann) is typing.Annotated:
            inner = get_args(ann)
            bounds = _bounds(inner[1]) if len(inner) > 1 else _bounds(info)
        else:
            bounds = _bounds(info)
        out.append(
            {
                "key": path,
                "kind": "leaf",
                "type": _type(ann),
                "bounds": bounds,
                "unit": _unit(name, bounds),
                "default": _default(info),
                "description": info.description or "",
                "concrete": here,
            }
        )
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(baseline: str | Path = "scenarios/baseline.toml") -> str:
    """The reference as Markdown."""
    from sim.scenario.sources import scenario_sources

    sources = {r["key"]: r for r in scenario_sources(baseline)} if Path(baseline).is_file() else {}
    lines = [
        "# Scenario keys",
        "",
        "Generated from the scenario schema (`sim/scenario/schema.py`) by "
        "`python -m sim.scenario.reference` (`make docs`); a test checks that this file is current.",
        "Every key of a scenario file: its type and bounds (a value outside them is refused with one "
        'line naming the file, the key and the reason), its unit, its default ("required": the '
        "file must set it), what it means, and the value and source comment of "
        "`scenarios/baseline.toml` (article, record, facts §N: docs/sources.md; fitted: "
        "calibration/fitted.toml; assumption: ours). `<...>` stands for a key you choose (a base, a "
        "facility, a munition) or one of the values listed.",
        "",
    ]
    section = None
    for row in _rows(Scenario, "", ""):
        top = row["key"].split(".")[0]
        if top != section:
            section = top
            doc = Scenario.model_fields[top].annotation.__doc__ or ""
            model = Scenario.model_fields[top].annotation
            if get_origin(model) is dict:
                doc = get_args(model)[1].__doc__ or ""
            lines += ["", f"## `[{top}]`", ""]
            if doc.strip():
                lines += [" ".join(doc.strip().split()), ""]
            lines += [
                "| key | type | bounds | unit | default | meaning | baseline value and source |",
                "|---|---|---|---|---|---|---|",
            ]
        if row["kind"] == "table":
            doc = " ".join((row["model"].__doc__ or "").split()) + row["one_of"]
            lines.append(f"| `{row['key']}` | table | | | {_default(row['info'])} | {_cell(doc)} | |")
            continue
        base = ""
        concrete = row["concrete"]
        if "*" in concrete:
            head, tail = concrete.split(".*.", 1)
            hits = [
                k
                for k in sources
                if k.startswith(f"{head}.") and k.endswith(f".{tail}") and k.count(".") == concrete.count(".")
            ]
            if hits:
                base = f"per entry ({len(hits)} in the baseline)"
        elif concrete in sources:
            r = sources[concrete]
            base = f"{r['value']}" + (f" — {r['source']}" if r["source"] else "")
        lines.append(
            f"| `{row['key']}` | {row['type']} | {row['bounds']} | {row['unit']} | "
            f"{_cell(row['default'])} | {_cell(row['description'])} | {_cell(base)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown(sys.argv[1] if len(sys.argv) > 1 else "scenarios/baseline.toml"))
