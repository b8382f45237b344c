"""The MLflow adapter's shared plumbing (adapters/mlflow/common.py) and open_stores(), on real MLflow."""

from __future__ import annotations

import logging
import os
import warnings

import pytest

pytestmark = pytest.mark.integration

mlflow = pytest.importorskip("mlflow")

from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow_support import MODEL, empty_db, isolated, state, stores_at  # noqa: E402, F401

from ctpipeline.adapters.mlflow import (  # noqa: E402
    LazyClient,
    ModelStore,
    Registry,
    Tracking,
    file_artifact_location,
    flatten_params,
    open_stores,
    sqlite_tracking_uri,
)
from ctpipeline.adapters.mlflow.common import (  # noqa: E402
    NoiseFilter,
    env_default,
    fluent_uris,
    mlflow_errors,
    quiet_mlflow,
    sanitize_key,
)
from ctpipeline.errors import RegistryError  # noqa: E402


def test_uris_are_absolute(tmp_path):
    assert sqlite_tracking_uri(tmp_path / "a" / "mlflow.db") == f"sqlite:///{tmp_path}/a/mlflow.db"
    assert sqlite_tracking_uri(tmp_path / "m.db").startswith("sqlite:////")
    assert file_artifact_location(tmp_path / "art") == f"file://{tmp_path}/art"


def test_keys_and_params_are_cleaned():
    assert sanitize_key("odd key@v2") == "odd key_v2"
    assert sanitize_key("/a/../../b") == "_/b"  # never climbs out of the artifact root
    assert sanitize_key("") == "_"
    assert len(sanitize_key("k" * 300)) == 250
    flat = flatten_params(
        {"model": {"type": "logreg", "C": 1.0, "cols": ["a", "b"], "tags": {"b", "a"}}, "empty": {}, "long": "x" * 7000}
    )
    assert flat == {
        "model.type": "logreg",
        "model.C": "1.0",
        "model.cols": '["a", "b"]',
        "model.tags": '["a", "b"]',
        "empty": "{}",
        "long": "x" * 5997 + "...",
    }


def test_constructing_does_no_io_and_open_stores_shares_one_client(state):
    uri = sqlite_tracking_uri(state / "mlflow.db")
    stores = open_stores(uri, MODEL, "exp", file_artifact_location(state / "art"))
    Tracking(uri, "exp")
    Registry(uri, MODEL)
    ModelStore(uri, MODEL)
    assert not state.exists()
    assert stores.tracking.client is stores.registry.client is stores.models.client
    assert (stores.registry.model_name, stores.models.model_name, stores.tracking.experiment_name) == (
        MODEL,
        MODEL,
        "exp",
    )
    first = stores.tracking.client.get()
    assert state.is_dir()  # the first use creates the database's folder
    assert stores.registry.client.get() is first
    with pytest.raises(AttributeError):
        stores.registry = stores.registry  # frozen


def test_a_client_for_another_store_or_no_uri_is_refused(tmp_path):
    other = LazyClient(sqlite_tracking_uri(tmp_path / "other.db"))
    with pytest.raises(ValueError, match="client is for"):
        Registry(sqlite_tracking_uri(tmp_path / "m.db"), MODEL, client=other)
    with pytest.raises(RegistryError, match="no MLflow tracking URI"):
        Tracking("", "exp")


def test_mlflow_errors_become_registry_errors_naming_operation_and_store():
    with pytest.raises(RegistryError, match=r"MLflow read thing failed \(sqlite:///x.db\): boom") as info:
        with mlflow_errors("read thing", "sqlite:///x.db"):
            raise MlflowException("boom")
    assert isinstance(info.value.__cause__, MlflowException)
    with pytest.raises(KeyError):  # anything else passes through unchanged
        with mlflow_errors("read thing", "sqlite:///x.db"):
            raise KeyError("k")


def test_known_noise_is_silenced_and_nothing_else():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_mlflow():
            warnings.warn("Hint: Inferred schema contains integer column(s).", UserWarning, stacklevel=2)
            warnings.warn("something real", UserWarning, stacklevel=2)
    assert [str(w.message) for w in caught] == ["something real"]
    noise = logging.LogRecord("mlflow", logging.WARNING, "", 0, "git executable not available", None, None)
    real = logging.LogRecord("mlflow", logging.WARNING, "", 0, "disk full", None, None)
    assert (NoiseFilter().filter(noise), NoiseFilter().filter(real)) == (False, True)


def test_fluent_uris_point_the_globals_at_the_store_and_restore_them(monkeypatch, tmp_path):
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///before.db")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    uri = sqlite_tracking_uri(tmp_path / "m.db")
    with fluent_uris(uri, uri):
        assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (uri, uri)
    assert (tracking_utils._tracking_uri, registry_utils._registry_uri) == before
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///before.db"
    assert "MLFLOW_REGISTRY_URI" not in os.environ


def test_env_default_keeps_a_value_the_user_set(monkeypatch):
    monkeypatch.delenv("CTP_TEST_FLAG", raising=False)
    with env_default("CTP_TEST_FLAG", "true"):
        assert os.environ["CTP_TEST_FLAG"] == "true"
    assert "CTP_TEST_FLAG" not in os.environ
    monkeypatch.setenv("CTP_TEST_FLAG", "false")
    with env_default("CTP_TEST_FLAG", "true"):
        assert os.environ["CTP_TEST_FLAG"] == "false"
    assert os.environ["CTP_TEST_FLAG"] == "false"
