"""`engine:` / `spark:` in the YAML: the default, the model types Spark can train, secrets, a missing Java."""

import subprocess
import sys

import pytest
import yaml

from ctpipeline.config.schema import load_config
from ctpipeline.errors import ConfigError

from conftest import write_pipeline_config


def _config(tmp_path, **top):
    path = write_pipeline_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data.update(top)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_pandas_is_the_default_and_keeps_the_config_hash(tmp_path):
    plain = load_config(_config(tmp_path))
    assert plain.engine == "pandas" and plain.spark.master == "local[*]"
    explicit = load_config(_config(tmp_path, engine="pandas"))
    assert explicit.config_hash() == plain.config_hash()
    spark = load_config(_config(tmp_path, engine="spark", spark={"master": "spark://10.0.0.5:7077"}))
    assert spark.spark.master == "spark://10.0.0.5:7077" and spark.config_hash() != plain.config_hash()


@pytest.mark.parametrize("model_type", ["hist_gradient_boosting", "logistic_regression"])
def test_a_model_without_a_spark_estimator_is_a_config_error(tmp_path, model_type):
    path = _config(tmp_path, engine="spark", model={"type": model_type})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "model.type" in text and str(path) in text and "Spark estimator" in text


def test_a_secret_in_spark_conf_is_refused(tmp_path):
    path = _config(tmp_path, engine="spark", spark={"conf": {"spark.hadoop.fs.s3a.secret.key": "abc"}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "spark.conf" in str(err.value) and "abc" not in str(err.value)


def test_no_java_is_a_config_error_naming_engine(tmp_path, monkeypatch):
    from ctpipeline.adapters.spark.session import spark_session

    monkeypatch.setenv("PATH", str(tmp_path))  # no java on PATH
    monkeypatch.delenv("JAVA_HOME", raising=False)
    cfg = load_config(_config(tmp_path, engine="spark", spark={"master": "local[1]", "app_name": "no-java"}))
    with pytest.raises(ConfigError) as err:
        spark_session(cfg.spark, "pipeline.yaml")
    assert "engine" in str(err.value) and "Java" in str(err.value)


def test_the_pandas_engine_never_imports_pyspark():
    code = (
        "import sys; import ctpipeline.steps.cycle, ctpipeline.steps.ingest, ctpipeline.flow; "
        "print([m for m in sys.modules if m.startswith(('pyspark', 'py4j', 'xgboost.spark'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
