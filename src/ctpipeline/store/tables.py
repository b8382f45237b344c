"""Data files a user hands the pipeline (a source file or folder, a sample to check, a file to score): Parquet or
CSV, read with one time convention (`core.data.utc_times`) and written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ctpipeline.core.data import utc_times
from ctpipeline.errors import DataError

SUFFIXES = (".parquet", ".csv")


def table_files(path: Path) -> list[Path]:
    """`path` itself when it is a Parquet/CSV file; the Parquet/CSV files in it (sorted by name) when it is a
    folder of period files. DataError naming the path when there is nothing to read."""
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise DataError(f"{path}: not a .parquet or .csv file")
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
        if not files:
            raise DataError(f"{path}: folder holds no .parquet or .csv files")
        return files
    raise DataError(f"{path}: no such file or folder")


def read_table(path: Path, time_column: str | None = None) -> pd.DataFrame:
    """One Parquet or CSV file (or every such file of a folder, concatenated), datetimes as UTC."""
    frames = []
    for f in table_files(Path(path)):
        try:
            frames.append(pd.read_parquet(f) if f.suffix.lower() == ".parquet" else pd.read_csv(f))
        except Exception as exc:  # pyarrow and the CSV parser raise many types for unreadable files
            raise DataError(f"{f}: cannot read: {exc}") from None
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if time_column is not None and time_column not in df.columns:
        raise DataError(f"{path}: time column {time_column!r} is missing (columns: {list(df.columns)[:12]})")
    return utc_times(df, time_column)


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write Parquet or CSV (by suffix) next to the target and rename, so a reader never sees half a file."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: the output must end in .parquet or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path
