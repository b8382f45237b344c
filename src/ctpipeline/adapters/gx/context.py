"""Great Expectations, lazily and quietly: the module import, the process-wide lock and the ephemeral context.

``great_expectations`` takes several seconds to import, so it is imported on first use only.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["GX_LOCK", "batch_definition", "forget_metrics", "import_gx"]

GX_LOCK = threading.RLock()  # GX contexts are not documented as thread-safe: one validation at a time
_state: dict[str, Any] = {}


def import_gx():
    """Import great_expectations once, quietly (no progress bars, no INFO chatter)."""
    mod = _state.get("gx")
    if mod is None:
        import warnings

        gx_log = logging.getLogger("great_expectations")
        if gx_log.level == logging.NOTSET:  # respect a level the application set itself
            gx_log.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import great_expectations as mod
        _state["gx"] = mod
    return mod


def batch_definition(kind: str = "pandas"):
    """The process-wide ephemeral context's whole-dataframe batch definition for `kind` (pandas, or spark for the
    Spark engine, `adapters/gx/spark.py`), created once: one datasource, one dataframe asset, one whole-dataframe
    batch definition in an in-memory context; nothing is written to disk."""
    key = f"batch_definition:{kind}"
    bd = _state.get(key)
    if bd is None:
        sources = ephemeral_context().data_sources
        source = sources.add_spark("ctpipeline-spark") if kind == "spark" else sources.add_pandas("ctpipeline")
        bd = source.add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole_batch")
        _state[key] = bd
    return bd


def ephemeral_context():
    """The process-wide in-memory GX context (created once): no data docs, no progress bars, no analytics, nothing
    written to disk. The pandas batch definition above and the Spark one (`adapters/gx/spark.py`) live in it."""
    context = _state.get("context")
    if context is None:
        gx = import_gx()
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            # init_temp_docs_sites=False: no data docs site, not even a temporary folder name
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            analytics_enabled=False,
        )
        context = gx.get_context(mode="ephemeral", project_config=config)
        _state["context"] = context
    return context


def forget_metrics() -> None:
    """Drop the metric values GX's pandas engine keeps after a validation.

    The engine is shared by every batch of the datasource and caches each resolved metric by id, which holds
    the batch id (the same for every batch here) and keeps the last values alive: ~120 MB of condition series
    after a 1M-row validation. Nothing reads them once the validation is over.
    """
    bd = _state.get("batch_definition:pandas")
    if bd is None:
        return
    engine = bd.data_asset.datasource.get_execution_engine()
    cache = getattr(engine, "_metric_cache", None)
    if isinstance(cache, dict):
        cache.clear()
