"""Landed Parquet batches as Spark DataFrames, each row numbered as pandas would number it, and what is pulled to
the driver: seeded samples at given positions and narrow columns, as pandas frames in `core.data`'s convention.

`ROW` is the row's position in the batches taken end to end (file order, then row order in the file: Parquet's
``_metadata.row_index``), the same position ``pd.concat(frames, ignore_index=True)`` gives it. So a sample drawn
at the positions `core.drift.sample_positions` picks holds exactly the rows the pandas engine compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ctpipeline.core.data import utc_times

ROW = "__ctp_row"

__all__ = ["ROW", "collect", "nanosecond_columns", "read_parquet", "rows_at", "training_window"]


def nanosecond_columns(path: Path) -> dict[str, bool]:
    """{column: tz-aware} for the nanosecond timestamps in `path` (Spark reads them only as longs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return {
        f.name: f.type.tz is not None
        for f in schema
        if pa.types.is_timestamp(f.type) and f.type.unit == "ns"  # type: ignore[attr-defined]
    }


def _one_file(spark, path: Path, offset: int):
    from pyspark.sql import functions as F

    sdf = spark.read.parquet(str(path))
    nanos = nanosecond_columns(path)
    cols = []
    for name in sdf.columns:
        c = F.col(f"`{name}`")
        if name in nanos:  # ns since the epoch -> a timestamp (microseconds, Spark's precision)
            c = F.timestamp_micros(F.floor(c / 1000))
            c = c if nanos[name] else c.cast("timestamp_ntz")
        cols.append(c.alias(name))
    cols.append((F.col("_metadata.row_index") + F.lit(offset)).alias(ROW))
    return sdf.select(*cols)


def read_parquet(spark, paths: Sequence[Path]):
    """The files end to end as one Spark DataFrame with the `ROW` position column. Spark reads nanosecond
    timestamps only as numbers (spark.sql.legacy.parquet.nanosAsLong): they are turned back into timestamps."""
    import pyarrow.parquet as pq

    if not paths:
        raise ValueError("no Parquet file to read")
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    frames, offset = [], 0
    for path in paths:
        frames.append(_one_file(spark, Path(path), offset))
        offset += pq.ParquetFile(path).metadata.num_rows
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f, allowMissingColumns=True)
    return out


def collect(sdf, columns: Sequence[str] | None = None, time_column: str | None = None) -> pd.DataFrame:
    """`columns` (default all) of `sdf` on the driver, in `ROW` order, times tz-aware UTC; `ROW` kept."""
    wanted = [c for c in dict.fromkeys([*(columns or sdf.columns), ROW]) if c in sdf.columns]
    pdf = sdf.select(*[f"`{c}`" for c in wanted]).orderBy(ROW).toPandas()
    return utc_times(pdf, time_column if time_column in pdf.columns else None)


def rows_at(sdf, positions, columns: Sequence[str], time_column: str | None = None) -> pd.DataFrame:
    """The rows of `sdf` at sorted `positions` (None: all), in that order, as pandas (without `ROW`)."""
    from pyspark.sql import functions as F

    if positions is not None:
        spark = sdf.sparkSession
        wanted = spark.createDataFrame(pd.DataFrame({ROW: pd.Series(positions, dtype="int64")}))
        sdf = sdf.join(F.broadcast(wanted), on=ROW, how="inner")
    return collect(sdf, columns, time_column).drop(columns=[ROW]).reset_index(drop=True)


def training_window(spark, paths: Sequence[Path], time_column: str, cap: int | None, before):
    """The files end to end (`read_parquet`), at most `cap` newest rows (`core.data.training_frame`: stable order,
    ties keep the later rows), then the rows before `before` (a UTC datetime); cached."""
    from pyspark.sql import functions as F

    t = F.col(f"`{time_column}`")
    window = read_parquet(spark, paths)
    if cap:
        window = window.orderBy(t.desc(), F.col(ROW).desc()).limit(cap)
    return window.where(t < F.lit(before)).cache()
