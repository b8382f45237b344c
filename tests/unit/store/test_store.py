"""The state folder's files: landing batches, file sources, the batch log."""

import numpy as np
import pandas as pd
import pytest

from ctpipeline.config.schema import DataConfig, SourceConfig
from ctpipeline.core import data
from ctpipeline.errors import DataError
from ctpipeline.store import landing
from ctpipeline.store.state import BatchLog


def frame(n=300, start="2021-01-01", days=90, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(rng.integers(0, days * 24, n), unit="h")
    return pd.DataFrame({"t": t, "x": rng.normal(size=n), "c": rng.choice(["a", "b"], n), "y": rng.normal(size=n)})


def test_land_writes_one_file_per_batch_and_keeps_existing(tmp_path):
    parts = data.split_batches(frame(), DataConfig(time_column="t"))
    written = landing.land(parts, tmp_path)
    assert sorted(p.name for p in written) == ["2021-01.parquet", "2021-02.parquet", "2021-03.parquet"]
    assert landing.land(parts, tmp_path) == []  # second time: nothing overwritten
    back = pd.read_parquet(tmp_path / "2021-02.parquet")
    pd.testing.assert_frame_equal(back, parts["2021-02"])
    assert not list(tmp_path.glob(".*.tmp"))


def test_file_source_and_bad_time_values(tmp_path):
    df = frame(50)
    path = tmp_path / "src.csv"
    df.to_csv(path, index=False)
    out = landing.load_source(SourceConfig(kind="file", path="src.csv"), DataConfig(time_column="t"), tmp_path)
    assert str(out["t"].dt.tz) == "UTC" and out["t"].is_monotonic_increasing and len(out) == 50
    df["t"] = df["t"].astype(str)
    df.loc[3, "t"] = "not a time"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="not timestamps"):
        landing.load_source(SourceConfig(kind="file", path="src.csv"), DataConfig(time_column="t"), tmp_path)
    with pytest.raises(DataError, match="time_column"):
        landing.load_source(SourceConfig(kind="file", path="src.csv"), DataConfig(time_column="nope"), tmp_path)


def test_batch_log_processed_and_accepted(tmp_path):
    log = BatchLog(tmp_path / "b.jsonl")
    assert log.processed() == set() and log.accepted() == []
    log.append({"batch": "2021-02", "sha256": "aa", "status": "accepted"})
    log.append({"batch": "2021-01", "sha256": "bb", "status": "accepted"})
    log.append({"batch": "2021-03", "sha256": "cc", "status": "rejected"})
    assert log.accepted() == ["2021-01", "2021-02"]
    assert ("2021-03", "cc") in log.processed()
    # the same batch re-landed with fixed content is new, and once accepted counts as accepted
    assert ("2021-03", "dd") not in log.processed()
    log.append({"batch": "2021-03", "sha256": "dd", "status": "accepted"})
    assert log.accepted() == ["2021-01", "2021-02", "2021-03"]


def test_batch_log_survives_a_torn_line(tmp_path, caplog):
    log = BatchLog(tmp_path / "b.jsonl")
    log.append({"batch": "2021-01", "sha256": "aa", "status": "accepted"})
    with open(log.path, "a") as f:
        f.write('{"batch": "2021-02", "sha')  # a crash mid-write
    assert log.accepted() == ["2021-01"]
    log.append({"batch": "2021-02", "sha256": "bb", "status": "accepted"})  # starts on a fresh line
    assert log.accepted() == ["2021-01", "2021-02"]
    assert "b.jsonl:2" in caplog.text
