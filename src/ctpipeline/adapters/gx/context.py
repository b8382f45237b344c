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


def batch_definition():
    """The process-wide ephemeral context's whole-dataframe batch definition (created once).

    An in-memory (ephemeral) GX context with one pandas datasource, one dataframe asset and one
    whole-dataframe batch definition: nothing is written to disk.
    """
    bd = _state.get("batch_definition")
    if bd is None:
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
        asset = context.data_sources.add_pandas("ctpipeline").add_dataframe_asset("batch")
        bd = asset.add_batch_definition_whole_dataframe("whole_batch")
        _state["context"] = context
        _state["batch_definition"] = bd
    return bd


def forget_metrics() -> None:
    """Drop the metric values GX's pandas engine keeps after a validation.

    The engine is shared by every batch of the datasource and caches each resolved metric by id, which holds
    the batch id (the same for every batch here) and keeps the last values alive: ~120 MB of condition series
    after a 1M-row validation. Nothing reads them once the validation is over.
    """
    bd = _state.get("batch_definition")
    if bd is None:
        return
    engine = bd.data_asset.datasource.get_execution_engine()
    cache = getattr(engine, "_metric_cache", None)
    if isinstance(cache, dict):
        cache.clear()
