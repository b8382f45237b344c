"""Plumbing shared by the MLflow adapter's modules: store URIs, one lazily created client, error
translation, key and param cleaning, the noise filter and the lock around MLflow's global URIs.

Nothing happens at import time: MLflow is imported lazily, no URI is set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import re
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipeline.errors import RegistryError

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

# MLflow limits (mlflow.utils.validation); repeated here so importing this module stays cheap.
MAX_PARAM_VAL_LENGTH = 6000
MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_TAG_VAL_LENGTH = 8000

# MLflow messages that are pure noise for this pipeline (matched as regexes on the message).
NOISY_WARNINGS = (
    r"Hint: Inferred schema contains integer column",
    r".*[Gg]it.*(not available|executable)",
    r"\s*The specified dataset source can be interpreted in multiple ways",  # a local path: both of MLflow's
    # local-artifact source classes claim it, and it picks one (the same) with a warning on every dataset input
)

_KEY_BAD_CHARS = re.compile(r"[^/\w.\- :]")

# Serialises every section that touches MLflow's process-global tracking/registry URI.
_FLUENT_LOCK = threading.RLock()


# ---- store URIs ---------------------------------------------------------------------------


def sqlite_tracking_uri(db_path: Path) -> str:
    """``sqlite:////abs/path/mlflow.db`` for a database file (the path is made absolute)."""
    return f"sqlite:///{Path(db_path).expanduser().resolve().as_posix()}"


def file_artifact_location(dir: Path) -> str:  # noqa: A002 - name fixed by the public API
    """``file:///abs/path`` for an artifact directory (the path is made absolute)."""
    return Path(dir).expanduser().resolve().as_uri()


# ---- the client ---------------------------------------------------------------------------


class LazyClient:
    """One ``MlflowClient(tracking_uri=..., registry_uri=...)`` for a store, created on first :meth:`get`.

    The registry lives in the same store as the tracking data. Constructing does no I/O; the first
    :meth:`get` on an SQLite store creates the database's folder. Share one instance between the
    adapter's objects to share the client.
    """

    def __init__(self, tracking_uri: str):
        if not tracking_uri:
            raise RegistryError("no MLflow tracking URI configured")
        self.tracking_uri = tracking_uri
        self.registry_uri = tracking_uri
        self._client: MlflowClient | None = None

    def __repr__(self) -> str:
        return f"LazyClient({self.tracking_uri!r})"

    def get(self) -> MlflowClient:
        if self._client is None:
            from ctpipeline.adapters.mlflow import dbtemplate

            db = dbtemplate.sqlite_file(self.tracking_uri)
            if db is not None:
                db.parent.mkdir(parents=True, exist_ok=True)
                dbtemplate.seed(self.tracking_uri)  # a new database: MLflow's tables copied, not migrated (~1.7 s)
            import mlflow

            self._client = mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client


def shared_client(tracking_uri: str, client: LazyClient | None) -> LazyClient:
    """``client`` when given (it must point at ``tracking_uri``), else a new one for ``tracking_uri``."""
    if client is None:
        return LazyClient(tracking_uri)
    if client.tracking_uri != tracking_uri:
        raise ValueError(f"client is for {client.tracking_uri!r}, not {tracking_uri!r}")
    return client


# ---- errors -------------------------------------------------------------------------------


def error_code(exc: Exception) -> str:
    return str(getattr(exc, "error_code", "") or "")


def is_not_found(exc: Exception) -> bool:
    return error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


def is_already_exists(exc: Exception) -> bool:
    return error_code(exc) == "RESOURCE_ALREADY_EXISTS"


def is_missing_alias(exc: Exception) -> bool:
    # SQLAlchemy store and REST server: INVALID_PARAMETER_VALUE "Registered model alias X not found."
    msg = str(getattr(exc, "message", exc)).lower()
    return "alias" in msg and "not found" in msg


def mlflow_message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)


@contextlib.contextmanager
def mlflow_errors(what: str, tracking_uri: str) -> Iterator[None]:
    """Turn MlflowException into RegistryError naming the operation and the store; silence known noise."""
    from mlflow.exceptions import MlflowException

    try:
        with quiet_mlflow():
            yield
    except (MlflowException, OSError) as exc:  # OSError: the artifact store's disk is full or unwritable
        raise RegistryError(f"MLflow {what} failed ({tracking_uri}): {mlflow_message(exc)}") from exc


# ---- keys and params ----------------------------------------------------------------------


def sanitize_key(key: str) -> str:
    """A valid MLflow key: odd characters -> ``_``, no leading ``/`` or ``..``, at most 250 characters."""
    key = _KEY_BAD_CHARS.sub("_", str(key)).strip("/") or "_"
    key = posixpath.normpath(key)
    if key.startswith(".."):
        key = "_" + key.lstrip(".")
    return key[:MAX_ENTITY_KEY_LENGTH]


def _param_value(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        text = json.dumps(items, default=str)
    elif isinstance(value, Mapping):  # only reached for empty mappings
        text = json.dumps(dict(value), default=str)
    else:
        text = str(value)
    if len(text) > MAX_PARAM_VAL_LENGTH:
        text = text[: MAX_PARAM_VAL_LENGTH - 3] + "..."
    return text


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; values stringified and truncated to MLflow's limit."""
    out: dict[str, str] = {}
    for key, value in params.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, full))
        else:
            out[sanitize_key(full)] = _param_value(value)
    return out


# ---- warnings, environment, MLflow's global state ------------------------------------------


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Silence MLflow warnings that are known noise; everything else passes through."""
    with warnings.catch_warnings():
        for pattern in NOISY_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        yield


class NoiseFilter(logging.Filter):
    """Drops log records whose message matches :data:`NOISY_WARNINGS`."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(re.search(p, msg) for p in NOISY_WARNINGS)


_noise_filter = NoiseFilter()


@contextlib.contextmanager
def fluent_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """Temporarily point MLflow's *global* tracking/registry URI at this store.

    Holds a process-wide lock for the duration (so two stores in different threads cannot
    interleave) and restores the previous module state and the ``MLFLOW_TRACKING_URI`` /
    ``MLFLOW_REGISTRY_URI`` environment variables afterwards. MLflow's noise is filtered from its logger meanwhile.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    env_keys = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    with _FLUENT_LOCK:
        saved_env = {k: os.environ.get(k) for k in env_keys}
        saved_tracking = getattr(tracking_utils, "_tracking_uri", None)
        saved_registry = getattr(registry_utils, "_registry_uri", None)
        mlflow_logger = logging.getLogger("mlflow")
        mlflow_logger.addFilter(_noise_filter)
        try:
            mlflow.set_tracking_uri(tracking_uri)
            mlflow.set_registry_uri(registry_uri)
            yield
        finally:
            mlflow_logger.removeFilter(_noise_filter)
            mlflow.set_tracking_uri(saved_tracking)
            registry_utils._registry_uri = saved_registry
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@contextlib.contextmanager
def env_default(key: str, value: str) -> Iterator[None]:
    """Set an environment variable for the block unless the user set it already (under the same lock)."""
    with _FLUENT_LOCK:
        if key in os.environ:
            yield
            return
        os.environ[key] = value
        try:
            yield
        finally:
            os.environ.pop(key, None)


@contextlib.contextmanager
def sys_path_kept() -> Iterator[None]:
    """Restore ``sys.path`` after the block. MLflow's model loader prepends the model's ``code_paths`` folder to
    ``sys.path`` and never removes it (``log_model`` loads the model once, to check its serving input, from a
    temporary folder). Left there, every load adds one entry, and a folder that still exists holds a partial
    ``ctpipeline`` package (only the feature code the model ships) that shadows the installed one in any process
    spawned from this one (the report worker imports ``ctpipeline.steps``: `ModuleNotFoundError`). The model's code
    is imported while it loads, so it needs the entry only during the block."""
    before = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = before


class ModelScoped:
    """Base of the adapter objects bound to one registered model in one store (no I/O on construction);
    pass ``client`` to share one MLflow client with the other objects of the same store."""

    def __init__(self, tracking_uri: str, model_name: str, *, client: LazyClient | None = None):
        self.client = shared_client(tracking_uri, client)
        self.tracking_uri = tracking_uri
        self.model_name = model_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tracking_uri={self.tracking_uri!r}, model_name={self.model_name!r})"
