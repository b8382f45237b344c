"""The gate on GX's Spark execution engine fails the same expectations as on pandas, on broken batches: the same
suite file, the same Parquet file, each corruption a broken upstream export would bring."""

import pytest

from flights_corruptions import corrupt

from conftest import make_flights_like, require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUITE = "expectations/flights.json"
CASES = ("out_of_range", "unknown_categories", "label_mostly_null", "bad_codes", "naive_timestamps", "several")


@pytest.fixture(scope="module")
def spark():
    require_binary("java", "/usr/lib/jvm/*/bin/java")
    from ctpipeline.adapters.spark.session import spark_session
    from ctpipeline.config.engine import SparkConfig

    conf = {"spark.sql.shuffle.partitions": 2, "spark.default.parallelism": 2}
    return spark_session(SparkConfig(master="local[2]", conf=conf))


def _failed(result) -> set[tuple[str, str | None]]:
    return {(f.expectation_type, f.column) for f in result.failed}


@pytest.mark.parametrize("case", CASES)
def test_spark_gate_fails_what_the_pandas_gate_fails(spark, tmp_path, case):
    import pandas as pd

    from ctpipeline.adapters.gx import validate
    from ctpipeline.adapters.gx.spark import validate_spark
    from ctpipeline.adapters.spark.frames import ROW, read_parquet

    path = tmp_path / f"{case}.parquet"
    corrupt(make_flights_like(3000, seed=7), case).to_parquet(path)
    by_pandas = validate(pd.read_parquet(path), SUITE)
    by_spark = validate_spark(read_parquet(spark, [path]), SUITE, drop=(ROW,))
    assert not by_pandas.success and _failed(by_pandas)  # the corruption is caught at all
    assert by_spark.success == by_pandas.success
    expected = _failed(by_pandas)
    if case == "naive_timestamps":  # the one known difference (docs/spark.md, Limits): GX's pandas engine cannot
        # compare naive times with the suite's tz-aware bounds and fails the range check too; on Spark the range
        # check passes. Both fail the type check on the time column, so both reject the batch.
        assert ("expect_column_values_to_be_of_type", "time_hour") in _failed(by_spark)
        expected -= {("expect_column_values_to_be_between", "time_hour")}
    assert _failed(by_spark) == expected


def test_spark_gate_passes_a_clean_batch(spark, tmp_path):
    from ctpipeline.adapters.gx.spark import validate_spark
    from ctpipeline.adapters.spark.frames import ROW, read_parquet

    path = tmp_path / "clean.parquet"
    make_flights_like(3000, seed=7).to_parquet(path)
    result = validate_spark(read_parquet(spark, [path]), SUITE, drop=(ROW,))
    assert result.success and not result.failed
