"""MLflow dataset inputs: what data made a model, in MLflow's own terms (the *Datasets* column of the runs table,
a run's inputs). Each is an ``mlflow.data`` pandas dataset: its Parquet source (a landed batch, or the landing
folder for a training window), MLflow's digest of the data, the schema, the row count and a context tag
(``training`` / ``evaluation``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctpipeline.adapters.mlflow.common import quiet_mlflow

if TYPE_CHECKING:  # pragma: no cover
    import pandas

CONTEXT_TAG = "mlflow.data.context"  # mlflow.utils.mlflow_tags.MLFLOW_DATASET_CONTEXT
SCHEMA_ROWS = 2000  # the schema is inferred on this many rows: on all of them it costs seconds per batch


@dataclass(frozen=True)
class DataInput:
    """One dataset a run used: the frame, where it was read from, a name, and how the run used it."""

    df: pandas.DataFrame
    source: str
    name: str
    context: str  # training | evaluation
    targets: str | None = None


def dataset_input(item: DataInput) -> Any:
    """The ``mlflow.entities.DatasetInput`` for `item`: name, MLflow's digest, source, schema, profile, context."""
    import mlflow.data
    from mlflow.data.dataset import Dataset as DatasetBase
    from mlflow.entities import Dataset, DatasetInput, InputTag

    targets = item.targets if item.targets in item.df.columns else None
    with quiet_mlflow():
        ds = mlflow.data.from_pandas(item.df, source=item.source, name=item.name, targets=targets)
        base = DatasetBase.to_dict(ds)  # name, digest, source, source type: no full-frame schema inference
        schema = mlflow.data.from_pandas(item.df.head(SCHEMA_ROWS), targets=targets).to_dict()["schema"]
    entity = Dataset(
        name=base["name"],
        digest=base["digest"],
        source_type=base["source_type"],
        source=base["source"],
        schema=schema,
        profile=json.dumps({"num_rows": len(item.df), "num_elements": int(item.df.size)}),
    )
    return DatasetInput(entity, tags=[InputTag(CONTEXT_TAG, item.context)])
