"""MLflow adapter (temporary shim until the tracking / registry / model I/O split lands)."""

from dataclasses import dataclass

from ctpipeline.adapters.mlflow.registry import (ModelRef, ModelRegistry, file_artifact_location,
                                                 installed_requirements, sqlite_tracking_uri)


@dataclass(frozen=True)
class MlflowStores:
    tracking: ModelRegistry
    registry: ModelRegistry
    models: ModelRegistry


def open_stores(tracking_uri, model_name, experiment_name, artifact_location=None) -> MlflowStores:
    reg = ModelRegistry(tracking_uri, model_name, experiment_name, artifact_location)
    return MlflowStores(reg, reg, reg)


__all__ = ["ModelRef", "MlflowStores", "file_artifact_location", "installed_requirements", "open_stores",
           "sqlite_tracking_uri"]
