"""The landing folder: the raw history read from a source, landed as one Parquet file per period; the next
batch found by name and content hash; rejected batches moved to quarantine beside their report. Files only."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
from collections.abc import Iterator
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
    return df.sort_values(data.time_column, kind="stable", ignore_index=True)  # one copy, not two


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


def _sha256_or_mark(path: Path) -> str:
    """The content hash, or a mark naming why the file cannot be read (it is then quarantined, not crashed on)."""
    try:
        return file_sha256(path)
    except OSError as exc:
        return f"unreadable-{exc.errno or 0}-{path.lstat().st_mtime_ns}"


def batch_files(landing_dir: Path) -> list[Path]:
    """The Parquet batch files of the landing folder (links included), oldest period first (by name)."""
    if not landing_dir.is_dir():
        return []
    return sorted(
        p for p in landing_dir.glob("*.parquet") if not p.name.startswith(".") and (p.is_file() or p.is_symlink())
    )


def landed_batches(landing_dir: Path) -> list[Batch]:
    """The batches of the landing folder, oldest period first. A file that cannot be read is listed too (its hash
    is a mark): reading it fails, so it is quarantined with the reason."""
    return list(iter_landed_batches(landing_dir))


def iter_landed_batches(landing_dir: Path) -> Iterator[Batch]:
    """`landed_batches`, each file hashed only when the caller gets to it (the next unprocessed batch is found
    without hashing the files after it)."""
    return (Batch(p.stem, p, _sha256_or_mark(p)) for p in batch_files(landing_dir))


def stray_files(landing_dir: Path) -> list[str]:
    """Names in the landing folder that are not Parquet batch files (a CSV, a folder...): never processed."""
    if not landing_dir.is_dir():
        return []
    return sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in landing_dir.iterdir()
        if not p.name.startswith(".") and not (p.suffix == ".parquet" and (p.is_file() or p.is_symlink()))
    )


def parquet_columns(path: Path) -> list[str] | None:
    """The column names in a Parquet file's footer (no data read); None when the file cannot be read."""
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception:  # pyarrow raises several types for files that are not Parquet
        return None


def parquet_rows(path: Path) -> int | None:
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except Exception:  # pyarrow raises several types for files that are not Parquet
        return None


def _unreadable(batch: Batch, exc: Exception) -> DataError:
    path = batch.path
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        return DataError(f"batch {batch.name}: cannot read {path}: {err.strerror or err}")
    if size == 0:
        return DataError(f"batch {batch.name}: cannot read {path}: it is empty (0 bytes)")
    if head != b"PAR1":
        return DataError(
            f"batch {batch.name}: cannot read {path}: it is not a Parquet file (it starts with {head!r}, not b'PAR1')"
        )
    return DataError(f"batch {batch.name}: cannot read {path} (truncated or corrupt Parquet?): {exc}")


def read_batch(batch: Batch) -> pd.DataFrame:
    columns = parquet_columns(batch.path)
    if columns is not None:
        twice = sorted({c for c in columns if columns.count(c) > 1})
        if twice:
            raise DataError(f"batch {batch.name}: columns {twice} appear more than once in {batch.path}")
    try:
        return utc_times(pd.read_parquet(batch.path))  # the same time convention as `ctp land`
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise _unreadable(batch, exc) from None


def _free_stem(qdir: Path, batch: Batch) -> str:
    """A name under which neither a batch file nor a report exists yet in the quarantine folder."""
    candidates = [batch.name, f"{batch.name}.{batch.sha256[:8]}"]
    candidates += (f"{batch.name}.{batch.sha256[:8]}.{i}" for i in range(2, 10_000))
    return next(c for c in candidates if not (qdir / f"{c}.parquet").exists() and not (qdir / f"{c}.gx.json").exists())


def quarantine_file(batch: Batch, qdir: Path, report: dict[str, Any]) -> Path:
    """Move a rejected batch out of the landing folder, beside its report. Nothing is deleted, and no earlier
    report is overwritten (a batch released and quarantined again gets a new name).

    The report is written first, then the file is renamed (atomic on one filesystem), so a crash in between
    leaves the batch in landing, where the next run finds it again."""
    qdir.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(qdir, batch)
    (qdir / f"{stem}.gx.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    target = qdir / f"{stem}.parquet"
    try:
        os.replace(batch.path, target)
    except OSError:  # landing folder on another filesystem: copy, then remove
        shutil.move(str(batch.path), target)
    return target


def release_file(quarantined: Path, landing_dir: Path, name: str) -> Path:
    """Move a quarantined batch file back into the landing folder under its batch name (its report stays)."""
    target = landing_dir / f"{name}.parquet"
    landing_dir.mkdir(parents=True, exist_ok=True)
    try:
        os.link(quarantined, target, follow_symlinks=False)  # never overwrites a file landed meanwhile
    except FileExistsError:
        raise
    except OSError:  # another filesystem, or no hard links: check, then move
        if target.exists() or target.is_symlink():
            raise FileExistsError(target) from None
        shutil.move(str(quarantined), target)
        return target
    os.unlink(quarantined)
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
