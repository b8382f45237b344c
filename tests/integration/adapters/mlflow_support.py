"""Fixtures and helpers shared by the MLflow adapter tests (test_mlflow_*.py): a real embedded MLflow
store (SQLite + file artifacts) under tmp_path, two small fitted sklearn pipelines, and a way to make
registry versions quickly. Import the fixtures into a test module with ``from mlflow_support import ...``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctpipeline.adapters.mlflow import (
    MlflowStores,
    ModelRef,
    file_artifact_location,
    installed_requirements,
    open_stores,
    sqlite_tracking_uri,
)

MODEL = "flights-delay"
EXPERIMENT = "ctp-test"
PIP_REQS = installed_requirements(["scikit-learn", "xgboost-cpu", "xgboost", "pandas", "numpy", "mlflow"])


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
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


def stores_at(state: Path, empty_db: Path | None = None) -> MlflowStores:
    """The adapter's objects for an embedded store in the folder `state` (a copy of `empty_db` when given)."""
    if empty_db is not None:
        state.mkdir(parents=True)
        shutil.copyfile(empty_db, state / "mlflow.db")
    return open_stores(
        sqlite_tracking_uri(state / "mlflow.db"), MODEL, EXPERIMENT, file_artifact_location(state / "mlartifacts")
    )


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> Path:
    """An MLflow database with its tables created and nothing in it. Creating the tables takes MLflow
    seconds, so each test's store starts as a copy of this one."""
    import mlflow

    db = tmp_path_factory.mktemp("mlflow-empty") / "mlflow.db"
    uri = sqlite_tracking_uri(db)
    mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    return db


@pytest.fixture
def stores(state, empty_db) -> MlflowStores:
    """Tracking, Registry and ModelStore on an empty embedded store in `state`."""
    return stores_at(state, empty_db)


@pytest.fixture
def client(stores):
    """A plain MLflow client on the same store, to check what the adapter wrote."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=stores.tracking.tracking_uri, registry_uri=stores.tracking.tracking_uri)


@pytest.fixture
def global_uri(stores):
    """Point MLflow's global URI at the test store (for fluent `models:/` loading), then restore."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = tracking_utils._tracking_uri
    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(stores.tracking.tracking_uri)
    yield stores.tracking.tracking_uri
    mlflow.set_tracking_uri(saved)
    if saved_env is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved_env


def register(stores: MlflowStores, model, x: pd.DataFrame, run_name: str = "train") -> ModelRef:
    """Train-run + logged and registered model, the way the pipeline does it."""
    run_id = stores.tracking.start_run(run_name)
    ref = stores.models.log_and_register_model(run_id, model, input_example=x.head(20), pip_requirements=PIP_REQS)
    stores.tracking.end_run(run_id)
    return ref


def bare_versions(client, n: int, name: str = MODEL) -> list[ModelRef]:
    """`n` registry versions without model files (fast; enough for alias and tag tests)."""
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    return [
        ModelRef.from_version(client.create_model_version(name, source="file:///nowhere/model", run_id=None))
        for _ in range(n)
    ]
