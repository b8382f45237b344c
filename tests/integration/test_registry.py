"""ModelRegistry against a real embedded MLflow store (SQLite + file artifacts under tmp_path)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

mlflow = pytest.importorskip("mlflow")

from ctpipeline.errors import RegistryError  # noqa: E402
from ctpipeline.adapters.mlflow.registry import (  # noqa: E402
    ModelRef,
    ModelRegistry,
    file_artifact_location,
    installed_requirements,
    sqlite_tracking_uri,
)

MODEL = "flights-delay"
PIP_REQS = installed_requirements(
    ["scikit-learn", "xgboost-cpu", "xgboost", "pandas", "numpy", "mlflow"]
)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No telemetry; run in an empty directory so a fallback to MLflow's default store
    (./mlflow.db, ./mlruns) would be visible instead of polluting the repository."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(42)
    n = 200
    x = pd.DataFrame(
        {
            "carrier": rng.choice(["AA", "DL", "UA"], size=n),
            "distance": rng.normal(1000.0, 300.0, size=n),
            "hour": rng.integers(5, 23, size=n),  # int64: triggers MLflow's integer-schema hint
        }
    )
    logit = 0.004 * (x["distance"] - 1000) + 0.3 * (x["hour"] - 14) + (x["carrier"] == "UA") * 1.0
    y = (logit + rng.normal(0, 0.5, size=n) > 0).astype(int)
    return x, y


def _preprocessor():
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["carrier"]),
            ("num", StandardScaler(), ["distance", "hour"]),
        ]
    )


@pytest.fixture(scope="module")
def logreg(data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    x, y = data
    return Pipeline([("pre", _preprocessor()), ("clf", LogisticRegression(max_iter=200))]).fit(x, y)


@pytest.fixture(scope="module")
def xgb(data):
    from sklearn.pipeline import Pipeline
    from xgboost import XGBClassifier

    x, y = data
    clf = XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, random_state=0)
    return Pipeline([("pre", _preprocessor()), ("clf", clf)]).fit(x, y)


@pytest.fixture
def state(tmp_path) -> Path:
    return tmp_path / ".ctp"


@pytest.fixture
def registry(state) -> ModelRegistry:
    return ModelRegistry(
        tracking_uri=sqlite_tracking_uri(state / "mlflow.db"),
        model_name=MODEL,
        experiment_name="ctp-test",
        artifact_location=file_artifact_location(state / "mlartifacts"),
    )


@pytest.fixture
def client(registry):
    return mlflow.MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)


@pytest.fixture
def global_uri(registry):
    """Point MLflow's global URI at the test store (for fluent `models:/` loading), then restore."""
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = tracking_utils._tracking_uri
    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(registry.tracking_uri)
    yield registry.tracking_uri
    mlflow.set_tracking_uri(saved)
    if saved_env is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved_env


def _register(registry: ModelRegistry, model, x: pd.DataFrame, run_name: str = "train") -> ModelRef:
    run_id = registry.start_run(run_name)
    ref = registry.log_and_register_model(
        run_id, model, input_example=x.head(20), pip_requirements=PIP_REQS
    )
    registry.end_run(run_id)
    return ref


# ---------------------------------------------------------------------------- helpers


def test_helpers_build_absolute_uris_and_pins(tmp_path):
    assert sqlite_tracking_uri(tmp_path / "a" / "mlflow.db") == f"sqlite:///{tmp_path}/a/mlflow.db"
    assert sqlite_tracking_uri(tmp_path / "m.db").startswith("sqlite:////")
    assert file_artifact_location(tmp_path / "art") == f"file://{tmp_path}/art"

    pins = installed_requirements(["scikit-learn", "xgboost-cpu", "xgboost", "no-such-dist-ctp"])
    names = [p.split("==")[0] for p in pins]
    assert pins[0] == f"scikit-learn=={importlib.metadata.version('scikit-learn')}"
    assert "xgboost-cpu" in names
    assert "no-such-dist-ctp" not in names
    assert all("==" in p for p in pins)
    assert installed_requirements(["pandas", "pandas"]) == [f"pandas=={pd.__version__}"]


def test_constructor_does_no_io(state):
    ModelRegistry(sqlite_tracking_uri(state / "mlflow.db"), MODEL, "exp")
    assert not state.exists()


# ---------------------------------------------------------------------------- registry


def test_fresh_registry_has_no_champion(registry):
    assert registry.champion() is None
    assert registry.get_alias("challenger") is None
    assert registry.get_version("1") is None
    registry.delete_alias("champion")  # no registered model yet: no-op, no error


def test_ensure_experiment_is_idempotent_and_uses_artifact_location(registry, client, state):
    exp_id = registry.ensure_experiment()
    again = ModelRegistry(registry.tracking_uri, MODEL, "ctp-test").ensure_experiment()
    assert exp_id == again
    exp = client.get_experiment(exp_id)
    assert exp.name == "ctp-test"
    assert exp.artifact_location == (state / "mlartifacts").as_uri()


def test_run_logging_and_model_registration(registry, client, logreg, xgb, data, tmp_path):
    x, _ = data
    run_id = registry.start_run("train-2013-01", tags={"ctp.month": "2013-01"})
    registry.log_params(
        run_id,
        {
            "model": {"type": "logreg", "C": 1.0, "cols": ["a", "b"]},
            "seed": 42,
            "long": "x" * 7000,
            "odd key@v2": True,
        },
    )
    registry.log_metrics(run_id, {"auc": 0.81, "logloss": np.float64(0.43), "skipped": None, "nan": float("nan")})
    registry.log_metrics(run_id, {"auc": 0.82}, step=1)
    registry.log_dict(run_id, {"auc": np.float32(0.81), "n": np.int64(200)}, "eval/metrics.json")
    registry.log_dict(run_id, {"gate": {"passed": True}}, "eval/gate.yaml")
    registry.log_text(run_id, "hello", "notes/readme.txt")
    extra = tmp_path / "report.html"
    extra.write_text("<p>report</p>")
    registry.log_file(run_id, extra, "reports")
    registry.set_tags(run_id, {"ctp.decision": "promote"})

    ref1 = registry.log_and_register_model(
        run_id, logreg, input_example=x.head(20), pip_requirements=PIP_REQS,
        description="logreg baseline", tags={"ctp.month": "2013-01"},
    )
    assert ref1 == ModelRef(MODEL, "1", run_id)
    assert ref1.uri == f"models:/{MODEL}/1"

    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"  # logging a model does not end the run
    assert run.data.params["model.type"] == "logreg"
    assert run.data.params["model.C"] == "1.0"
    assert json.loads(run.data.params["model.cols"]) == ["a", "b"]
    assert run.data.params["seed"] == "42"
    assert len(run.data.params["long"]) == 6000
    assert run.data.params["odd key_v2"] == "True"
    assert run.data.metrics["logloss"] == pytest.approx(0.43)
    assert "skipped" not in run.data.metrics and "nan" not in run.data.metrics
    assert [m.value for m in client.get_metric_history(run_id, "auc")] == [0.81, 0.82]
    assert run.data.tags["ctp.month"] == "2013-01"
    assert run.data.tags["ctp.decision"] == "promote"
    assert run.data.tags["mlflow.runName"] == "train-2013-01"

    top = {f.path for f in client.list_artifacts(run_id)}
    assert {"eval", "notes", "reports"} <= top
    assert {f.path for f in client.list_artifacts(run_id, "eval")} == {"eval/metrics.json", "eval/gate.yaml"}
    local = Path(client.download_artifacts(run_id, "eval/metrics.json", str(tmp_path)))
    assert json.loads(local.read_text()) == {"auc": pytest.approx(0.81), "n": 200}
    gate = Path(client.download_artifacts(run_id, "eval/gate.yaml", str(tmp_path))).read_text()
    assert "passed: true" in gate

    # MLflow 3: the model is a LoggedModel linked to the run, with its own artifact folder.
    model_ids = [o.model_id for o in run.outputs.model_outputs]
    assert len(model_ids) == 1
    logged = client.get_logged_model(model_ids[0])
    assert logged.source_run_id == run_id
    assert str(logged.status).endswith("READY")
    assert logged.tags["ctp.month"] == "2013-01"
    files = {f.path for f in client.list_logged_model_artifacts(model_ids[0])}
    assert {"MLmodel", "model.skops", "requirements.txt", "input_example.json"} <= files

    mv = client.get_model_version(MODEL, "1")
    assert mv.source == f"models:/{model_ids[0]}"
    assert mv.run_id == run_id
    assert mv.description == "logreg baseline"
    assert mv.tags["ctp.month"] == "2013-01"

    reqs = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"{logged.artifact_location}/requirements.txt", dst_path=str(tmp_path / "r")
        )
    ).read_text().split()
    assert set(PIP_REQS) <= set(reqs)
    assert any(r.startswith("skops==") for r in reqs)

    # the signature is stored with the model: inputs from the example, outputs = predict_proba
    from mlflow.models import Model

    mlmodel = Model.load(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"{logged.artifact_location}/MLmodel", dst_path=str(tmp_path / "m")
        )
    )
    assert mlmodel.signature is not None
    assert mlmodel.signature.inputs.input_names() == ["carrier", "distance", "hour"]
    assert list(mlmodel.signature.outputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 2]
    assert mlmodel.flavors["python_function"]["predict_fn"] == "predict_proba"

    registry.end_run(run_id)
    assert client.get_run(run_id).info.status == "FINISHED"

    ref2 = _register(registry, xgb, x, run_name="train-2013-02")
    assert ref2.version == "2"
    assert ref2.run_id not in (None, run_id)
    assert registry.get_version("2") == ref2
    exp_id = registry.ensure_experiment()
    assert registry.run_url_hint(run_id) == f"experiment {exp_id} / run {run_id}"


def test_alias_roundtrip_and_loading(registry, logreg, xgb, data, global_uri):
    x, _ = data
    ref1 = _register(registry, logreg, x)
    ref2 = _register(registry, xgb, x)

    registry.set_alias("champion", ref1)
    assert registry.champion() == ref1
    registry.set_alias("champion", ref2)
    assert registry.champion() == ref2
    assert registry.get_alias("challenger") is None

    # the alias resolves through MLflow's own fluent API too
    loaded = mlflow.sklearn.load_model(f"models:/{MODEL}@champion")
    np.testing.assert_allclose(loaded.predict_proba(x), xgb.predict_proba(x), rtol=1e-6)

    # and through the adapter, which does not need the global URI
    mine = registry.load_model(ref1)
    np.testing.assert_allclose(mine.predict_proba(x), logreg.predict_proba(x))
    assert list(mine.predict(x)) == list(logreg.predict(x))

    registry.set_version_tags(ref2, {"ctp.promoted_by": "test"})
    registry.set_version_description(ref2, "xgb challenger")
    assert registry.get_version_tags(ref2)["ctp.promoted_by"] == "test"
    assert mlflow.MlflowClient(global_uri).get_model_version(MODEL, "2").description == "xgb challenger"

    registry.delete_alias("champion")
    assert registry.champion() is None
    registry.delete_alias("champion")  # idempotent


def test_compare_and_swap_alias(registry, logreg, data):
    x, _ = data
    v1 = _register(registry, logreg, x)
    v2 = _register(registry, logreg, x)
    v3 = _register(registry, logreg, x)
    assert [v1.version, v2.version, v3.version] == ["1", "2", "3"]

    # fresh alias: expected None sets it
    assert registry.compare_and_swap_alias("champion", v1, expected_version=None) is True
    assert registry.champion() == v1
    # expected None but the alias exists: refused
    assert registry.compare_and_swap_alias("champion", v2, expected_version=None) is False
    assert registry.champion() == v1
    # expected matches: moved
    assert registry.compare_and_swap_alias("champion", v2, expected_version="1") is True
    assert registry.champion() == v2

    # someone else (another process) moves the alias in between
    other = ModelRegistry(registry.tracking_uri, MODEL, "ctp-test")
    other.set_alias("champion", v3)
    assert registry.compare_and_swap_alias("champion", v1, expected_version="2") is False
    assert registry.champion() == v3  # untouched

    # already at the target and expected there: success without a write
    assert registry.compare_and_swap_alias("champion", v3, expected_version="3") is True

    # a version that does not exist is an error, and the alias stays
    with pytest.raises(RegistryError, match="does not exist"):
        registry.compare_and_swap_alias("champion", ModelRef(MODEL, "99", None), expected_version="3")
    with pytest.raises(RegistryError, match="does not belong"):
        registry.compare_and_swap_alias("champion", ModelRef("other", "1", None), expected_version="3")
    assert registry.champion() == v3


def test_alias_pointing_at_missing_version_is_a_registry_error(registry, logreg, data, state):
    x, _ = data
    ref = _register(registry, logreg, x)
    registry.set_alias("champion", ref)
    # MLflow drops aliases with the version it deletes, so corrupt the store directly.
    with sqlite3.connect(state / "mlflow.db") as db:
        db.execute("UPDATE registered_model_aliases SET version = 42 WHERE alias = 'champion'")
    with pytest.raises(RegistryError, match="does not exist any more"):
        registry.champion()


def test_no_global_state_leaks(registry, logreg, data):
    from mlflow.tracking._tracking_service import utils as tracking_utils

    before = (tracking_utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI"), mlflow.active_run())
    x, _ = data
    assert x["hour"].dtype.kind == "i"  # would trigger MLflow's integer-schema hint
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = _register(registry, logreg, x)
        registry.load_model(ref)
    assert not [w for w in caught if "integer column" in str(w.message)]
    after = (tracking_utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI"), mlflow.active_run())
    assert after == before
    assert list(Path.cwd().iterdir()) == []  # nothing fell back to ./mlflow.db or ./mlruns


def test_two_registries_are_isolated(tmp_path, logreg, data):
    x, _ = data
    a = ModelRegistry(sqlite_tracking_uri(tmp_path / "a" / "mlflow.db"), MODEL, "exp",
                      file_artifact_location(tmp_path / "a" / "art"))
    b = ModelRegistry(sqlite_tracking_uri(tmp_path / "b" / "mlflow.db"), MODEL, "exp",
                      file_artifact_location(tmp_path / "b" / "art"))
    ra = _register(a, logreg, x)
    a.set_alias("champion", ra)
    assert b.champion() is None
    assert _register(b, logreg, x).version == "1"
    assert (tmp_path / "a" / "art" / "models").is_dir() and (tmp_path / "b" / "art" / "models").is_dir()


def test_end_run_status_and_errors(registry, client):
    run_id = registry.start_run("failing")
    registry.end_run(run_id, status="FAILED")
    assert client.get_run(run_id).info.status == "FAILED"
    with pytest.raises(ValueError):
        registry.end_run(run_id, status="DONE")
    with pytest.raises(RegistryError):
        registry.log_metrics("0" * 32, {"auc": 0.5})
    with pytest.raises(TypeError, match="not a number"):
        registry.log_metrics(run_id, {"auc": "high"})
