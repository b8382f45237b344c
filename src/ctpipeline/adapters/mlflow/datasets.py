"""MLflow dataset inputs: what data made a model, in MLflow's own terms (the *Datasets* column of the runs table,
a run's inputs). Each is an ``mlflow.data`` pandas dataset: its Parquet source (a landed batch, or the landing
folder for a training window), MLflow's digest of the data (MLflow's value, computed faster), the schema, the row
count and a context tag (``training`` / ``evaluation``)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctpipeline.adapters.mlflow.common import quiet_mlflow

if TYPE_CHECKING:  # pragma: no cover
    import pandas

log = logging.getLogger(__name__)

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


def _all_str(col: pandas.Series) -> bool:
    """Whether every value of `col` is a Python str, as ``type(v) == str`` per value would say, vectorised."""
    import pandas as pd
    from pandas.api.types import infer_dtype

    if isinstance(col.dtype, pd.CategoricalDtype):
        return bool((col.cat.codes >= 0).all()) and all(type(c) is str for c in col.cat.categories)
    if isinstance(col.dtype, pd.StringDtype):
        return not bool(col.isna().any())
    return col.dtype == object and infer_dtype(col, skipna=False) == "string"


def pandas_digest(df: pandas.DataFrame) -> str:
    """MLflow's pandas dataset digest (``mlflow.data.digest_utils.compute_pandas_digest``), the same value, without
    its per-value Python pass over every row of the frame to find the string columns (~1 s per 100k rows)."""
    import numpy as np
    import pandas as pd
    from mlflow.data.digest_utils import MAX_ROWS, get_normalized_md5_digest

    trimmed = df.head(MAX_ROWS)
    strings = trimmed.columns[[_all_str(df.iloc[:, i]) for i in range(df.shape[1])]]
    numbers = trimmed.select_dtypes(include=[np.number]).columns
    trimmed = trimmed[strings.union(numbers)]
    parts = [pd.util.hash_pandas_object(trimmed).values, np.int64(len(df))]
    return get_normalized_md5_digest(parts + [str(x).encode() for x in df.columns])


def pandas_schema(df: pandas.DataFrame) -> Any:
    """MLflow's schema of `df` (``mlflow.data.from_pandas(df).schema``), the same ``Schema``, without its per-value
    Python pass over every column (~3 ms per column of 2,000 rows): a column that is not of object kind gets its
    type from its dtype and ``required`` from ``isna`` (what MLflow's per-value test finds for such values), a
    column of Python strings only is a required string; any other object column goes through MLflow's own code.
    None where MLflow cannot infer one (as its dataset says)."""
    from mlflow.types import DataType
    from mlflow.types.schema import ColSpec, Schema
    from mlflow.types.utils import _infer_pandas_column, _infer_required

    cols = []
    try:
        for i, name in enumerate(df.columns):
            col = df.iloc[:, i]
            if col.dtype.kind != "O":
                dtype, required = _infer_pandas_column(col), not bool(col.isna().any())
            elif len(col) and _all_str(col):
                dtype, required = DataType.string, True
            else:
                dtype, required = _infer_pandas_column(col), _infer_required(col)
            cols.append(ColSpec(type=dtype, name=name, required=required))
        return Schema(cols)
    except Exception as exc:  # noqa: BLE001 - MLflow's dataset has no schema then either
        log.debug("no schema for the dataset: %s", exc)
        return None


def dataset_input(item: DataInput) -> Any:
    """The ``mlflow.entities.DatasetInput`` for `item`: name, MLflow's digest, source, schema, profile, context."""
    import mlflow.data
    from mlflow.data.dataset import Dataset as DatasetBase
    from mlflow.entities import Dataset, DatasetInput, InputTag

    targets = item.targets if item.targets in item.df.columns else None
    with quiet_mlflow():
        digest = pandas_digest(item.df)
        ds = mlflow.data.from_pandas(item.df, source=item.source, name=item.name, targets=targets, digest=digest)
        base = DatasetBase.to_dict(ds)  # name, digest, source, source type: no full-frame schema inference
        inferred = pandas_schema(item.df.head(SCHEMA_ROWS))
        schema = json.dumps({"mlflow_colspec": inferred.to_dict()}) if inferred is not None else None
    entity = Dataset(
        name=base["name"],
        digest=base["digest"],
        source_type=base["source_type"],
        source=base["source"],
        schema=schema,
        profile=json.dumps({"num_rows": len(item.df), "num_elements": int(item.df.size)}),
    )
    return DatasetInput(entity, tags=[InputTag(CONTEXT_TAG, item.context)])
