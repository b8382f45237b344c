"""ModelStore (adapters/mlflow/model_io.py): logging, registering and loading real sklearn/XGBoost
pipelines with MLflow 3 on an embedded store under tmp_path."""

from __future__ import annotations

import importlib.metadata
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

mlflow = pytest.importorskip("mlflow")

from mlflow_support import (  # noqa: E402, F401
    MODEL,
    PIP_REQS,
    client,
    data,
    empty_db,
    global_uri,
    isolated,
    logreg,
    register,
    state,
    stores,
    stores_at,
    xgb,
)

from ctpipeline.adapters.mlflow import ModelRef, installed_requirements  # noqa: E402
from ctpipeline.errors import RegistryError  # noqa: E402


def test_installed_requirements_pin_what_is_installed():
    pins = installed_requirements(["scikit-learn", "xgboost-cpu", "xgboost", "no-such-dist-ctp"])
    names = [p.split("==")[0] for p in pins]
    assert pins[0] == f"scikit-learn=={importlib.metadata.version('scikit-learn')}"
    assert "xgboost-cpu" in names or "xgboost" in names
    assert "no-such-dist-ctp" not in names
    assert all("==" in p for p in pins)
    assert installed_requirements(["pandas", "pandas"]) == [f"pandas=={pd.__version__}"]


def _download(uri: str, dst: Path) -> str:
    return mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst))


def test_log_and_register_model(stores, client, logreg, xgb, data, tmp_path):
    x, _ = data
    run_id = stores.tracking.start_run("train-2013-01")
    stores.tracking.log_params(run_id, {"model": {"type": "logreg"}})
    ref1 = stores.models.log_and_register_model(
        run_id,
        logreg,
        input_example=x.head(20),
        pip_requirements=PIP_REQS,
        description="logreg baseline",
        tags={"ctp.month": "2013-01", "odd key@v2": 1},
    )
    assert ref1 == ModelRef(MODEL, "1", run_id) == stores.registry.get_version("1")
    assert client.get_run(run_id).info.status == "RUNNING"  # logging a model does not end the run

    # MLflow 3: the model is a LoggedModel linked to the run, with its own artifact folder.
    [output] = client.get_run(run_id).outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    assert logged.source_run_id == run_id
    assert str(logged.status).endswith("READY")
    assert logged.tags["ctp.month"] == "2013-01" and logged.tags["odd key_v2"] == "1"
    assert logged.params == {"model.type": "logreg"}
    files = {f.path for f in client.list_logged_model_artifacts(output.model_id)}
    assert {"MLmodel", "model.skops", "requirements.txt", "input_example.json"} <= files
    assert not client.list_artifacts(run_id)  # nothing under the run's own artifacts

    mv = client.get_model_version(MODEL, "1")
    assert mv.source == f"models:/{output.model_id}"
    assert (mv.run_id, mv.description, mv.tags["ctp.month"]) == (run_id, "logreg baseline", "2013-01")

    reqs = Path(_download(f"{logged.artifact_location}/requirements.txt", tmp_path / "r")).read_text().split()
    assert set(PIP_REQS) <= set(reqs)
    assert any(r.startswith("skops==") for r in reqs)  # the serializer is added

    # the signature is stored with the model: inputs from the example, outputs = predict_proba
    from mlflow.models import Model

    mlmodel = Model.load(_download(f"{logged.artifact_location}/MLmodel", tmp_path / "m"))
    assert mlmodel.signature.inputs.input_names() == ["carrier", "distance", "hour"]
    assert list(mlmodel.signature.outputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 2]
    assert mlmodel.flavors["python_function"]["predict_fn"] == "predict_proba"
    assert mlmodel.flavors["sklearn"]["serialization_format"] == "skops"
    stores.tracking.end_run(run_id)

    ref2 = register(stores, xgb, x, run_name="train-2013-02")  # XGBoost types are recorded as trusted
    assert ref2.version == "2" and ref2.run_id not in (None, run_id)
    assert stores.registry.get_version("2") == ref2


def test_cloudpickle_on_request(stores, client, logreg, data):
    x, _ = data
    run_id = stores.tracking.start_run("pickle")
    ref = stores.models.log_and_register_model(run_id, logreg, x, PIP_REQS, serialization_format="cloudpickle")
    [output] = client.get_run(run_id).outputs.model_outputs
    model_id = output.model_id
    files = {f.path for f in client.list_logged_model_artifacts(model_id)}
    assert "model.pkl" in files and "model.skops" not in files
    np.testing.assert_allclose(stores.models.load_model(ref).predict_proba(x), logreg.predict_proba(x))


def test_loading_through_the_adapter_and_through_mlflow(stores, logreg, xgb, data, global_uri):
    x, _ = data
    ref1 = register(stores, logreg, x)
    ref2 = register(stores, xgb, x)
    stores.registry.set_alias("champion", ref2)

    # the alias resolves through MLflow's own fluent API too
    loaded = mlflow.sklearn.load_model(f"models:/{MODEL}@champion")
    np.testing.assert_allclose(loaded.predict_proba(x), xgb.predict_proba(x), rtol=1e-6)

    # and through the adapter, which does not need the global URI
    mine = stores.models.load_model(ref1)
    np.testing.assert_allclose(mine.predict_proba(x), logreg.predict_proba(x))
    assert list(mine.predict(x)) == list(logreg.predict(x))


def test_refusals(stores, client, logreg, data):
    x, _ = data
    run_id = stores.tracking.start_run("r")
    with pytest.raises(RegistryError, match="non-empty input_example"):
        stores.models.log_and_register_model(run_id, logreg, x.head(0), PIP_REQS)
    client.delete_run(run_id)
    with pytest.raises(RegistryError, match="is deleted"):
        stores.models.log_and_register_model(run_id, logreg, x, PIP_REQS)
    with pytest.raises(RegistryError, match="does not belong"):
        stores.models.load_model(ModelRef("other", "1", None))
    with pytest.raises(RegistryError, match=f"load models:/{MODEL}/5"):
        stores.models.load_model(ModelRef(MODEL, "5", None))
    assert stores.registry.get_version("1") is None


def test_no_global_state_leaks(stores, logreg, data):
    from mlflow.tracking._tracking_service import utils as tracking_utils

    before = (tracking_utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI"), mlflow.active_run())
    path_before = list(sys.path)
    x, _ = data
    assert x["hour"].dtype.kind == "i"  # would trigger MLflow's integer-schema hint
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = register(stores, logreg, x)
        stores.models.load_model(ref)
    assert not [w for w in caught if "integer column" in str(w.message)]
    after = (tracking_utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI"), mlflow.active_run())
    assert after == before
    # MLflow's loader prepends a model's code_paths folder to sys.path for good (log_model loads it once, too)
    assert sys.path == path_before
    assert list(Path.cwd().iterdir()) == []  # nothing fell back to ./mlflow.db or ./mlruns


def test_two_stores_are_isolated(tmp_path, empty_db, logreg, data):
    x, _ = data
    a, b = stores_at(tmp_path / "a", empty_db), stores_at(tmp_path / "b", empty_db)
    ra = register(a, logreg, x)
    a.registry.set_alias("champion", ra)
    assert b.registry.champion() is None
    assert register(b, logreg, x).version == "1"
    assert (tmp_path / "a" / "mlartifacts" / "models").is_dir()
    assert (tmp_path / "b" / "mlartifacts" / "models").is_dir()
