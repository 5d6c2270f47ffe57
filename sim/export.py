"""Tables of a result folder in a format a spreadsheet opens: CSV, JSON or Parquet.

:func:`folder_tables` reads what a folder holds (a run, a comparison, a sweep or sensitivity, a saved
predictive check) as named tables; :func:`export_folder` writes each one as ``<name>.<format>`` into
an export folder, beside a ``manifest.json`` that says what ran. :func:`check_tables` turns a
predictive check into tables (one row per target, one per dated series, the story).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

FORMATS = ("csv", "json", "parquet")


def check_tables(result) -> dict[str, pd.DataFrame]:
    """A :class:`sim.calibrate.check.CheckResult` as tables: ``check_targets``, ``check_series``
    and ``check_story``."""
    targets = pd.DataFrame([{**dataclasses.asdict(r), "status": r.status} for r in result.rows])
    series = pd.DataFrame(
        [
            {
                "name": c.name,
                "points": c.points,
                "covered": c.covered,
                "relative_width": c.relative_width,
                "crps_model": c.model.cumulative,
                "crps_constant_rate": c.constant.cumulative,
                "crps_persistence": c.persistence.cumulative,
                "crps_increments_model": c.model.increments,
                "crps_increments_constant_rate": c.constant.increments,
                "energy_model": c.energy_model,
                "energy_constant_rate": c.energy_constant,
                "path_share": c.path_share,
                "passed": c.passed,
                "why": c.why,
            }
            for c in result.series
        ]
    )
    story = pd.DataFrame(
        [
            {
                "targets": ", ".join(result.story.targets),
                "share": result.story.share,
                "min_share": result.story.min_share,
                "passed": result.story.passed,
            }
        ]
        if result.story is not None
        else []
    )
    return {"check_targets": targets, "check_series": series, "check_story": story}


def folder_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of a result folder, by name (the file stem)."""
    from sim.store import SWEEP_MANIFEST, SweepStore

    folder = Path(folder)
    tables: dict[str, pd.DataFrame] = {}
    if (folder / SWEEP_MANIFEST).is_file():
        store = SweepStore(folder)
        tables["summary"] = store.summary()
        tables["design"] = store.design().reset_index()
        if (folder / "sobol.parquet").is_file():
            tables["sobol"] = pd.read_parquet(folder / "sobol.parquet")
        return tables
    from sim.folders import FolderError, verify_folder

    if (folder / "manifest.json").is_file():
        problems = verify_folder(folder)
        if problems:
            raise FolderError(
                f"{folder}: {problems[0]}: the folder was changed after it was written; run it again"
            )
    for path in sorted(folder.glob("*.parquet")):
        tables[path.stem] = pd.read_parquet(path)
    return tables


def _json_ready(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.CategoricalDtype):
            out[name] = out[name].astype(str)
    return out


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    """One table as CSV (dates ISO, empty cells for missing values), JSON (a list of records, dates
    ISO, null for missing values) or Parquet."""
    if fmt == "csv":
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv

        table = pa.Table.from_pandas(frame, preserve_index=False)
        for i, column in enumerate(table.schema):
            if pa.types.is_timestamp(column.type):
                seconds = pc.cast(table.column(i), pa.timestamp("s", column.type.tz), safe=False)
                table = table.set_column(i, column.name, pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S"))
            elif pa.types.is_dictionary(column.type):
                table = table.set_column(i, column.name, table.column(i).cast(pa.string()))
        pcsv.write_csv(table, path)
    elif fmt == "json":
        text = _json_ready(frame).to_json(orient="records", date_format="iso", indent=1)
        path.write_text(text + "\n", encoding="utf-8")
    else:
        frame.to_parquet(path, index=False)


def export_folder(folder: str | Path, out: str | Path, fmt: str) -> list[Path]:
    """Write every table of ``folder`` as ``<name>.<fmt>`` into ``out``, with the folder's manifest
    (``manifest.json`` or ``sweep.json``) beside them; return the paths written."""
    from sim.folders import FolderWriter

    folder, out = Path(folder), Path(out)
    written = []
    with FolderWriter(out, owned=("manifest.json", "sweep.json", f"*.{fmt}")) as tmp:
        for name, frame in folder_tables(folder).items():
            write_table(frame, tmp / f"{name}.{fmt}", fmt)
            written.append(out / f"{name}.{fmt}")
        for info in ("manifest.json", "sweep.json"):
            if (folder / info).is_file():
                text = json.dumps(json.loads((folder / info).read_text(encoding="utf-8")), indent=2)
                (tmp / info).write_text(text + "\n", encoding="utf-8")
                written.append(out / info)
    return written
