"""The landing folder: the raw history read from a source, landed as one Parquet file per period; the next
batch found by name and content hash; rejected batches moved to quarantine beside their report. Files only."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ctpipeline.config.schema import DataConfig, SourceConfig
from ctpipeline.core.data import utc_times
from ctpipeline.errors import DataError
from ctpipeline.store.tables import read_table


@dataclass(frozen=True)
class Batch:
    """One landed batch file, identified by name (its period, e.g. '2013-03') and content hash."""

    name: str
    path: Path
    sha256: str


def _table(module, attr: str, where: str) -> pd.DataFrame:
    obj = getattr(module, attr, None)
    if obj is None:
        raise DataError(f"{where}: module {module.__name__!r} has no table {attr!r}")
    if callable(obj) and not isinstance(obj, pd.DataFrame):
        obj = obj()
    if not isinstance(obj, pd.DataFrame):
        raise DataError(f"{where}: {module.__name__}.{attr} is not a pandas DataFrame")
    return obj


def load_source(source: SourceConfig, data: DataConfig, base_dir: Path | None = None) -> pd.DataFrame:
    """The whole raw history described by `source` (tables of a Python package, one CSV/Parquet file, or a folder
    of period files), with every datetime column as UTC (`core.data.utc_times`, the convention for dropped files
    too) and the time column parsed."""
    if source.kind == "python_tables":
        try:
            mod = importlib.import_module(source.module)
        except ImportError as exc:
            raise DataError(f"source.module: cannot import {source.module!r}: {exc}") from None
        df = _table(mod, source.table, "source.table")
        for i, j in enumerate(source.joins):
            right = _table(mod, j.table, f"source.joins.{i}.table")
            missing = [k for k in j.by if k not in df.columns or k not in right.columns]
            if missing:
                raise DataError(f"source.joins.{i}.by: key columns {missing} are not in both tables")
            cols = j.columns if j.columns is not None else [c for c in right.columns if c not in df.columns]
            right = right[[*j.by, *[c for c in cols if c not in j.by]]].drop_duplicates(subset=j.by, keep="last")
            df = df.merge(right, on=j.by, how="left", validate="many_to_one")
    else:
        try:
            df = read_table(source_path(source, base_dir))
        except DataError as exc:
            raise DataError(f"source.path: {exc}") from None
    if data.time_column not in df.columns:
        raise DataError(f"data.time_column: column {data.time_column!r} is not in the source table")
    df = utc_times(df, data.time_column)
    return df.sort_values(data.time_column, kind="stable").reset_index(drop=True)


def source_path(source: SourceConfig, base_dir: Path | None = None) -> Path:
    """`source.path` (a file, or a folder of period files), relative to the config's folder."""
    path = Path(source.path).expanduser()
    return base_dir / path if not path.is_absolute() and base_dir is not None else path


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write next to the target and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def land(batches: dict[str, pd.DataFrame], landing_dir: Path, overwrite: bool = False) -> list[Path]:
    """Write one Parquet file per batch into the landing folder; existing files are kept unless overwrite."""
    written = []
    for name, part in batches.items():
        path = landing_dir / f"{name}.parquet"
        if path.exists() and not overwrite:
            continue
        write_parquet_atomic(part, path)
        written.append(path)
    return written


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def landed_batches(landing_dir: Path) -> list[Batch]:
    if not landing_dir.is_dir():
        return []
    files = sorted(p for p in landing_dir.glob("*.parquet") if not p.name.startswith("."))
    return [Batch(p.stem, p, file_sha256(p)) for p in files]


def read_batch(batch: Batch) -> pd.DataFrame:
    try:
        return utc_times(pd.read_parquet(batch.path))  # the same time convention as `ctp land`
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise DataError(f"batch {batch.name}: cannot read {batch.path}: {exc}") from None


def quarantine_file(batch: Batch, qdir: Path, report: dict[str, Any]) -> Path:
    """Move a rejected batch out of the landing folder, beside its report. Nothing is deleted.

    The report is written first, then the file is renamed (atomic on one filesystem), so a crash in between
    leaves the batch in landing, where the next run finds it again."""
    qdir.mkdir(parents=True, exist_ok=True)
    stem = batch.name
    if (qdir / f"{stem}.parquet").exists():
        stem = f"{batch.name}.{batch.sha256[:8]}"
    (qdir / f"{stem}.gx.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    target = qdir / f"{stem}.parquet"
    try:
        os.replace(batch.path, target)
    except OSError:  # landing folder on another filesystem: copy, then remove
        shutil.move(str(batch.path), target)
    return target


def read_landed(landing_dir: Path, names: list[str]) -> tuple[list[pd.DataFrame], list[str]]:
    """The frames of the named batches still in the landing folder, and the names that are missing."""
    frames, missing = [], []
    for name in names:
        path = landing_dir / f"{name}.parquet"
        if path.exists():
            frames.append(utc_times(pd.read_parquet(path)))
        else:
            missing.append(name)
    return frames, missing
