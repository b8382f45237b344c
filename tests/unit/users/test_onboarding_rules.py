"""Onboarding rules that need no server: one time convention however data arrives, `year` periods, a source folder
of period files, `ctp config validate` checking the source, no silent default config, words that fit the periods."""

import numpy as np
import pandas as pd
import pytest
import yaml

from ctpipeline.cli.main import main
from ctpipeline.config.schema import DataConfig, SourceConfig
from ctpipeline.core import data
from ctpipeline.core.report import served_lines
from ctpipeline.errors import DataError
from ctpipeline.store import landing
from ctpipeline.store.landing import Batch, load_source, read_batch
from ctpipeline.store.tables import read_table, table_files

from conftest import FLIGHTS_YAML, ROOT


def yearly(n_years=3, per_year=40, naive=True, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.to_datetime([f"{2000 + i}-06-01" for i in range(n_years) for _ in range(per_year)])
    t = t + pd.to_timedelta(rng.integers(0, 150 * 24, len(t)), unit="h")
    df = pd.DataFrame({"t": t, "x": rng.normal(size=len(t)), "y": rng.integers(0, 2, len(t))})
    return df if naive else df.assign(t=df["t"].dt.tz_localize("UTC"))


def test_every_arrival_path_gives_utc_aware_times(tmp_path):
    naive = yearly()
    aware = data.utc_times(naive)
    assert str(aware["t"].dt.tz) == "UTC" and (aware["t"].dt.tz_localize(None) == naive["t"]).all()
    paris = naive.assign(t=aware["t"].dt.tz_convert("Europe/Paris"))
    pd.testing.assert_series_equal(data.utc_times(paris)["t"], aware["t"])
    text = naive.assign(t=naive["t"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    pd.testing.assert_series_equal(data.utc_times(text, "t")["t"], aware["t"], check_dtype=False)
    assert data.utc_times(aware) is aware  # nothing to do: the same frame
    # a file dropped into the landing folder with naive times reads exactly like a landed batch
    naive.to_parquet(tmp_path / "2000.parquet")
    dropped = read_batch(Batch("2000", tmp_path / "2000.parquet", "x"))
    src = tmp_path / "src.csv"
    naive.to_csv(src, index=False)
    landed = load_source(SourceConfig(kind="file", path=str(src)), DataConfig(time_column="t"))
    pd.testing.assert_series_equal(dropped["t"].sort_values(ignore_index=True), landed["t"], check_dtype=False)
    assert str(landed["t"].dt.tz) == str(dropped["t"].dt.tz) == "UTC"


def test_year_granularity_cuts_one_batch_per_year_in_the_configured_zone():
    t = pd.Series(pd.to_datetime(["2000-12-31T23:30:00Z", "2001-01-01T04:30:00Z", "2002-07-01T00:00:00Z"], utc=True))
    assert list(data.period_names(t, "year")) == ["2000", "2001", "2002"]
    assert list(data.period_names(t, "year", "America/New_York")) == ["2000", "2000", "2002"]
    parts = data.split_batches(yearly(naive=False), DataConfig(time_column="t", granularity="year"))
    assert list(parts) == ["2000", "2001", "2002"] and all(len(p) == 40 for p in parts.values())


def test_source_folder_of_period_files_is_read_and_landed(tmp_path):
    folder = tmp_path / "history"
    folder.mkdir()
    df = yearly()
    for year, part in df.groupby(df["t"].dt.year):
        (part.to_parquet if year % 2 else part.to_csv)(
            folder / f"{year}.{'parquet' if year % 2 else 'csv'}", index=False
        )
    (folder / "README.txt").write_text("not data")
    assert [f.name for f in table_files(folder)] == ["2000.csv", "2001.parquet", "2002.csv"]
    src = load_source(
        SourceConfig(kind="file", path="history"), DataConfig(time_column="t", granularity="year"), tmp_path
    )
    assert len(src) == len(df) and src["t"].is_monotonic_increasing and str(src["t"].dt.tz) == "UTC"
    batches = data.split_batches(src, DataConfig(time_column="t", granularity="year"))
    written = landing.land(batches, tmp_path / "landing")
    assert [p.name for p in written] == ["2000.parquet", "2001.parquet", "2002.parquet"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no .parquet or .csv"):
        read_table(empty)
    with pytest.raises(DataError, match="source.path: .*no such file or folder"):
        load_source(SourceConfig(kind="file", path="missing"), DataConfig(time_column="t"), tmp_path)


def config_with_source(tmp_path, path: str):
    d = yaml.safe_load(FLIGHTS_YAML.read_text())
    d["quality"]["suite"] = str(ROOT / "expectations" / "flights.json")
    d["source"] = {"kind": "file", "path": path}
    cfg = tmp_path / "pipe.yaml"
    cfg.write_text(yaml.safe_dump(d))
    return cfg


def test_config_validate_checks_a_file_source_exists(tmp_path, capsys):
    assert main(["config", "validate", str(config_with_source(tmp_path, "nowhere/"))]) == 2
    assert "source.path" in capsys.readouterr().err
    (tmp_path / "periods").mkdir()
    assert main(["config", "validate", str(config_with_source(tmp_path, "periods"))]) == 2
    yearly().to_parquet(tmp_path / "periods" / "2000.parquet")
    assert main(["config", "validate", str(config_with_source(tmp_path, "periods"))]) == 0


def test_a_forgotten_config_is_an_error_not_the_flights_pipeline(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CTP_CONFIG", raising=False)
    monkeypatch.chdir(ROOT)  # where configs/flights.yaml used to be picked silently
    assert main(["status", "--state-dir", str(tmp_path)]) == 2
    assert "pass --config FILE or set CTP_CONFIG" in capsys.readouterr().err
    monkeypatch.setenv("CTP_CONFIG", str(FLIGHTS_YAML))
    assert main(["status", "--state-dir", str(tmp_path / "none")]) == 2  # now the config is found: no state folder
    assert "state folder not found" in capsys.readouterr().err


def result(batch, served, never, always, status="kept-champion"):
    return {
        "batch": batch,
        "metric": "rmse",
        "status": status,
        "challenger_version": "2",
        "served_metric": served,
        "never_retrain_metric": never,
        "always_promote_metric": always,
    }


def test_replay_summary_names_the_periods_and_says_where_baselines_were_scored():
    results = [result(str(1970 + i), 1.0, 2.0, 1.5) for i in range(46)] + [{**result("2016", None, None, None)}]
    text = "\n".join(served_lines(results, "year"))
    assert "average over the 46 years where a challenger was trained" in text
    assert "each year where a challenger was trained (the baselines are scored only there)" in text
    assert "month" not in text
    assert "over the 1 batch where" in "\n".join(served_lines(results[:1], None))
    assert served_lines([{**result("x", None, None, None)}], "month") == []
