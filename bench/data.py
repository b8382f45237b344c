"""Benchmark data: flights-like frames (tests/conftest.py ``make_flights_like``), generated once and cached.

Generating 3M rows takes ~1 min, so each frame is pickled under the cache folder (``--cache-dir``, default
``$TMPDIR/ctp-bench``) keyed by its size and seed; pickle keeps pandas' shared string objects shared, which
Parquet would not (a 3M-row frame would take ~500 MB more).
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "expectations" / "flights.json"
sys.path.insert(0, str(ROOT / "tests"))

from flights_corruptions import corrupt  # noqa: E402

from conftest import make_flights_like  # noqa: E402

__all__ = ["ROOT", "SUITE", "bench_suite", "corrupt", "flights"]


def flights(n_rows: int, seed: int, start: str, cache_dir: Path, log=print) -> pd.DataFrame:
    """`n_rows` flights-like rows in the month from `start` (cached)."""
    path = cache_dir / f"flights-{n_rows}-{seed}-{start}.pkl"
    if path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)
    log(f"  generating {n_rows:,} rows (seed {seed}, {start}); cached in {path}")
    df = make_flights_like(n_rows, seed=seed, start=start)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(df, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return df


def bench_suite(work_dir: Path, max_rows: int) -> Path:
    """expectations/flights.json with the row-count ceiling (100,000, a month of flights) raised to `max_rows`,
    so that a clean batch of 1M or 3M generated rows passes; every other expectation as in the file."""
    data = json.loads(SUITE.read_text())
    for exp in data["expectations"]:
        if exp["type"] == "expect_table_row_count_to_be_between":
            exp["kwargs"]["max_value"] = max(exp["kwargs"].get("max_value", 0), max_rows)
    path = work_dir / "flights-bench-suite.json"
    path.write_text(json.dumps(data, indent=1))
    return path
