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
from ctpipeline.adapters.mlflow.model_io import ModelStore, installed_requirements
from ctpipeline.adapters.mlflow.registry import CHAMPION, ModelRef, Registry
from ctpipeline.adapters.mlflow.tracking import Tracking

__all__ = [
    "CHAMPION",
    "LazyClient",
    "MlflowStores",
    "ModelRef",
    "ModelRegistry",
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
    tracking_uri: str, model_name: str, experiment_name: str, artifact_location: str | None = None
) -> MlflowStores:
    """:class:`Tracking`, :class:`Registry` and :class:`ModelStore` for ``tracking_uri``, sharing one
    MLflow client. Does no I/O (call ``stores.tracking.ensure_experiment()`` to create the experiment)."""
    client = LazyClient(tracking_uri)
    return MlflowStores(
        tracking=Tracking(tracking_uri, experiment_name, artifact_location, client=client),
        registry=Registry(tracking_uri, model_name, client=client),
        models=ModelStore(tracking_uri, model_name, client=client),
    )


# ---- temporary, removed when steps/ moves to MlflowStores ------------------------------------------

_COMPAT_METHODS = {
    "tracking": ("ensure_experiment", "start_run", "monitoring_run", "end_run", "log_params", "log_metrics",
                 "set_tags", "log_dict", "log_text", "log_figure"),
    "registry": ("get_version", "get_alias", "champion", "set_alias", "compare_and_swap_alias",
                 "set_version_tags", "get_version_tags"),
    "models": ("log_and_register_model", "load_model"),
}
_COMPAT_ROUTE = {method: part for part, methods in _COMPAT_METHODS.items() for method in methods}


class ModelRegistry:
    """TEMPORARY compatibility shim, removed when steps/ moves to :class:`MlflowStores`: the old one-class
    API (``ModelRegistry(tracking_uri, model_name, experiment_name, artifact_location=None)``), each method
    forwarded to the :class:`Tracking`, :class:`Registry` or :class:`ModelStore` of :func:`open_stores`."""

    def __init__(self, tracking_uri: str, model_name: str, experiment_name: str,
                 artifact_location: str | None = None):
        self.stores = open_stores(tracking_uri, model_name, experiment_name, artifact_location)
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.experiment_name = experiment_name

    def __repr__(self) -> str:
        return (f"ModelRegistry(tracking_uri={self.tracking_uri!r}, model_name={self.model_name!r}, "
                f"experiment_name={self.experiment_name!r})")

    def __getattr__(self, name: str):
        part = _COMPAT_ROUTE.get(name)
        if part is None or name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(getattr(self.stores, part), name)
