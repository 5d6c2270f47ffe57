"""Read scenario files: TOML, ``extends`` chains, ``--set`` overrides, validation, resolved output.

Every error is a :class:`ScenarioError` naming the file that holds the offending key, the key path
and the reason, so that the CLI can print it on one line.
"""

from __future__ import annotations

import difflib
import hashlib
import tomllib
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import tomli_w
from pydantic import BaseModel, ValidationError

from sim.scenario.schema import Scenario, check_references

SET_SOURCE = "--set"
M = TypeVar("M", bound=BaseModel)


class ScenarioError(Exception):
    """A scenario that cannot be used: ``file: key.path: reason``."""

    def __init__(self, file: str | Path, key_path: str, reason: str):
        self.file = str(file)
        self.key_path = key_path
        self.reason = reason
        where = f"{self.file}: {key_path}" if key_path else self.file
        super().__init__(f"{where}: {reason}")


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable or malformed file is a :class:`ScenarioError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(path, "", "file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, "", f"cannot read file ({exc.__class__.__name__})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, "", f"invalid TOML: {exc}") from None


def _merge(base: dict, top: Mapping, origin: dict, source: str, prefix: tuple = ()) -> None:
    """Merge ``top`` into ``base`` in place: tables merge key by key, anything else replaces.

    ``origin`` maps each key path (a tuple) to the file that set it.
    """
    for key, value in top.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origin, source, path)
        else:
            base[key] = _copy(value)
            for known in [p for p in origin if p[: len(path)] == path]:
                del origin[known]
            _mark(value, origin, source, path)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _mark(value: Any, origin: dict, source: str, path: tuple) -> None:
    origin[path] = source
    if isinstance(value, Mapping):
        for k, v in value.items():
            _mark(v, origin, source, (*path, k))


def _load_chain(path: Path, origin: dict, seen: tuple[Path, ...]) -> dict[str, Any]:
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ScenarioError(path, "extends", f"extends itself in a loop ({chain})")
    data = read_toml(path)
    parent = data.pop("extends", None)
    merged: dict[str, Any] = {}
    if parent is not None:
        if not isinstance(parent, str):
            raise ScenarioError(path, "extends", "must be a path to another scenario file")
        parent_path = path.parent / parent
        if not parent_path.is_file():
            raise ScenarioError(path, "extends", f"'{parent}' points to no file ({parent_path})")
        merged = _load_chain(parent_path, origin, (*seen, resolved))
    _merge(merged, data, origin, str(path))
    return merged


def extends_chain(path: str | Path) -> list[Path]:
    """The files of a scenario's ``extends`` chain, the scenario first, as far as they exist."""
    out: list[Path] = []
    path = Path(path)
    while path.is_file() and path.resolve() not in [p.resolve() for p in out]:
        out.append(path)
        parent = read_toml(path).get("extends")
        if not isinstance(parent, str):
            break
        path = path.parent / parent
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``key.path=value``; the value is read as TOML and falls back to a plain string."""
    if "=" not in text:
        raise ScenarioError(SET_SOURCE, text, "expected key.path=value")
    key, raw = text.split("=", 1)
    keys = [k.strip() for k in key.strip().split(".")]
    if not all(keys):
        raise ScenarioError(SET_SOURCE, key, "empty key in key path")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return keys, value


def _apply_overrides(data: dict, overrides: Iterable[str], origin: dict) -> None:
    for text in overrides:
        keys, value = parse_override(text)
        patch: dict[str, Any] = {keys[-1]: value}
        for k in reversed(keys[:-1]):
            patch = {k: patch}
        node = data
        for depth, k in enumerate(keys[:-1]):
            child = node.get(k)
            if child is not None and not isinstance(child, dict):
                raise ScenarioError(SET_SOURCE, ".".join(keys[: depth + 1]), "is not a table")
            node = child if child is not None else {}
        _merge(data, patch, origin, SET_SOURCE)


def _source_of(loc: tuple, origin: dict, default: str) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in origin:
            return origin[loc[:n]]
    return default


def _allowed_keys(loc: tuple, root: type[BaseModel]) -> list[str]:
    """The keys allowed in the table at ``loc`` (for 'did you mean')."""
    model: Any = root
    for key in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(key))
            if field is None:
                return []
            model = field.annotation
        elif typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]
        else:
            return []
    if typing.get_origin(model) is dict:
        return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


#: Keys that moved, by their old key path: what an older scenario file gets told.
MOVED = {("militia", "dormancy"): "the halt is now the patron's decision: see [patron] (sim/model/patron.py)"}


def _describe(error: Mapping[str, Any], root: type[BaseModel]) -> tuple[tuple, str]:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        if loc in MOVED:
            return loc, f"unknown key ({MOVED[loc]})"
        allowed = _allowed_keys(loc[:-1], root)
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        reason = "unknown key" + (f" (did you mean '{hint[0]}'?)" if hint else "")
        return loc, reason
    if error["type"] == "missing":
        return loc, "required key is missing"
    reason = error["msg"]
    if error["type"] == "value_error":  # raised by a model validator: "Value error, <why>"
        reason = reason.removeprefix("Value error, ")
        key, sep, rest = reason.partition(": ")
        if sep and key.replace(".", "").replace("_", "").isalnum():  # it named the key path
            return (*loc, *key.split(".")), rest
        return loc, reason
    if "input" in error and not isinstance(error["input"], dict | list):
        reason += f" (got {error['input']!r})"
    return loc, reason


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> tuple[str, str]:
    """The first problem of a pydantic error as (dotted key path, reason), with a count of the rest."""
    errors = exc.errors()
    loc, reason = _describe(errors[0], root)
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ".".join(str(p) for p in loc), reason


def validate(data: dict[str, Any], origin: dict, default_source: str) -> Scenario:
    """Validate a merged scenario dict, raising :class:`ScenarioError` for the first problem."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        key, reason = describe_validation_error(exc, Scenario)
        loc = tuple(exc.errors()[0]["loc"])
        raise ScenarioError(_source_of(loc, origin, default_source), key, reason) from None
    broken = check_references(scenario)
    if broken is not None:
        key, reason = broken
        loc = tuple(key.split("."))
        raise ScenarioError(_source_of(loc, origin, default_source), key, reason)
    return scenario


def load_model(path: str | Path, model: type[M]) -> M:
    """Read a TOML input file other than a scenario (targets, priors, sweep) into its pydantic
    model; every problem is a :class:`ScenarioError` naming the file, key path and reason."""
    path = Path(path)
    data = read_toml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        key, reason = describe_validation_error(exc, model)
        raise ScenarioError(path, key, reason) from None


def load_scenario(path: str | Path, overrides: Iterable[str] = ()) -> Scenario:
    """Load, merge (``extends``), override (``key.path=value``) and validate a scenario file."""
    path = Path(path)
    origin: dict[tuple, str] = {}
    data = _load_chain(path, origin, ())
    _apply_overrides(data, overrides, origin)
    return validate(data, origin, str(path))


def key_origins(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, str]:
    """Which file set each key of a scenario (dotted key path -> the file's path as the
    ``extends`` chain reaches it, or ``--set``); keys left at their defaults are absent."""
    path = Path(path)
    origin: dict[tuple, str] = {}
    data = _load_chain(path, origin, ())
    _apply_overrides(data, overrides, origin)
    return {".".join(map(str, k)): v for k, v in origin.items()}


def resolved_toml(scenario: Scenario) -> str:
    """The fully resolved scenario as TOML text: every key, defaults included."""
    return tomli_w.dumps(scenario.model_dump(mode="python", exclude_none=True))


def scenario_hash(scenario: Scenario) -> str:
    """SHA-256 of the resolved TOML: two runs with equal hashes ran the same assumptions."""
    return hashlib.sha256(resolved_toml(scenario).encode()).hexdigest()
