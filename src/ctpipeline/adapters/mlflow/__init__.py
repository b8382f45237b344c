"""MLflow adapter: everything the pipeline does with MLflow, so the rest of the code never touches
MLflow or its global (fluent) state.

* :class:`Tracking` - runs of one experiment (params, metrics, tags, artifacts);
* :class:`Registry` - versions, aliases and version tags of one registered model;
* :class:`ModelStore` - logging + registering a model as a new version, loading a version;
* :func:`open_stores` - the three for one store, sharing one lazily created MLflow client.

Every call uses an explicit ``MlflowClient(tracking_uri=..., registry_uri=...)`` (the registry lives in
the same store). Nothing happens at import time or on construction: MLflow is imported lazily, no URI is
set, no file is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctpipeline.adapters.mlflow.common import LazyClient, file_artifact_location, flatten_params, sqlite_tracking_uri
from ctpipeline.adapters.mlflow.datasets import DataInput
from ctpipeline.adapters.mlflow.model_files import installed_requirements
from ctpipeline.adapters.mlflow.model_io import ModelStore
from ctpipeline.adapters.mlflow.registry import CHAMPION, ModelRef, Registry
from ctpipeline.adapters.mlflow.tracking import Tracking

__all__ = [
    "CHAMPION",
    "DataInput",
    "LazyClient",
    "MlflowStores",
    "ModelRef",
    "ModelStore",
    "Registry",
    "Tracking",
    "file_artifact_location",
    "flatten_params",
    "installed_requirements",
    "open_stores",
    "sqlite_tracking_uri",
]


@dataclass(frozen=True)
class MlflowStores:
    """The adapter's three objects for one store, one experiment and one registered model."""

    tracking: Tracking
    registry: Registry
    models: ModelStore


def open_stores(
    tracking_uri: str,
    model_name: str,
    experiment_name: str,
    artifact_location: str | None = None,
    description: str = "",
) -> MlflowStores:
    """:class:`Tracking`, :class:`Registry` and :class:`ModelStore` for ``tracking_uri``, sharing one
    MLflow client. Does no I/O (call ``stores.tracking.ensure_experiment()`` to create the experiment).
    ``description`` goes on the experiment and the registered model (MLflow's description fields)."""
    client = LazyClient(tracking_uri)
    return MlflowStores(
        tracking=Tracking(tracking_uri, experiment_name, artifact_location, client=client, description=description),
        registry=Registry(tracking_uri, model_name, client=client),
        models=ModelStore(tracking_uri, model_name, client=client, description=description),
    )
