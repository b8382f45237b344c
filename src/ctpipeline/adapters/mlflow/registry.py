"""MLflow adapter: experiment runs, model logging, registry versions and aliases.

Everything the pipeline does with MLflow goes through :class:`ModelRegistry`, so the rest
of the code never touches MLflow's global (fluent) state.

Design notes (MLflow 3.x):

* Every call uses an explicit ``MlflowClient(tracking_uri=..., registry_uri=...)``.
  Two places in MLflow 3 only work through the *global* tracking URI: ``mlflow.<flavor>.log_model``
  (``Model.log`` builds its own ``MlflowClient()``) and the SQLAlchemy registry store when a
  version's source is ``models:/<model_id>`` (it resolves the LoggedModel with a bare
  ``MlflowClient()``). Those two steps run inside :func:`_fluent_uris`, which sets the global
  tracking/registry URI under a process-wide lock and restores the previous values (and the
  ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI`` environment variables) afterwards.
* Models are logged as MLflow 3 *LoggedModels*: their artifacts live under
  ``<experiment artifact location>/models/<model_id>/artifacts``, **not** under the run's
  artifacts. The run is linked to the model through its outputs, and the registry version's
  ``source`` is ``models:/<model_id>``.
* Stages are deprecated; the pipeline uses aliases (``champion``).
* Nothing happens at import time: MLflow is imported lazily, no URI is set.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import math
import os
import posixpath
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipeline.errors import RegistryError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from mlflow import MlflowClient

log = logging.getLogger(__name__)

CHAMPION = "champion"
MODEL_ARTIFACT_NAME = "model"
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")

# MLflow limits (mlflow.utils.validation); repeated here so importing this module stays cheap.
MAX_PARAM_VAL_LENGTH = 6000
MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_TAG_VAL_LENGTH = 8000

_KEY_BAD_CHARS = re.compile(r"[^/\w.\- :]")

# Serialises every section that touches MLflow's process-global tracking/registry URI.
_FLUENT_LOCK = threading.RLock()

# MLflow messages that are pure noise for this pipeline (matched as regexes on the message).
_NOISY_WARNINGS = (
    r"Hint: Inferred schema contains integer column",
    r".*[Gg]it.*(not available|executable)",
)


# --------------------------------------------------------------------------------------
# Helpers usable without a registry
# --------------------------------------------------------------------------------------


def installed_requirements(packages: list[str]) -> list[str]:
    """Pinned ``name==version`` strings for the given *distribution* names that are installed.

    Names that are not installed are skipped (so ``["xgboost-cpu", "xgboost"]`` yields whichever
    of the two is present). Duplicates are removed, order is kept. The name is written as given
    by the caller, the version as installed.
    """
    out: list[str] = []
    seen: set[str] = set()
    for name in packages:
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen.add(key)
        out.append(f"{name}=={version}")
    return out


def sqlite_tracking_uri(db_path: Path) -> str:
    """``sqlite:////abs/path/mlflow.db`` for a database file (the path is made absolute)."""
    return f"sqlite:///{Path(db_path).expanduser().resolve().as_posix()}"


def file_artifact_location(dir: Path) -> str:  # noqa: A002 - name fixed by the public API
    """``file:///abs/path`` for an artifact directory (the path is made absolute)."""
    return Path(dir).expanduser().resolve().as_uri()


@dataclass(frozen=True)
class ModelRef:
    """One registered model version."""

    name: str
    version: str
    run_id: str | None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


# --------------------------------------------------------------------------------------
# Internals
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Silence MLflow warnings that are known noise; everything else passes through."""
    with warnings.catch_warnings():
        for pattern in _NOISY_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        yield


class _NoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(re.search(p, msg) for p in _NOISY_WARNINGS)


_noise_filter = _NoiseFilter()


@contextlib.contextmanager
def _fluent_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """Temporarily point MLflow's *global* tracking/registry URI at this store.

    Holds a process-wide lock for the duration (so two registries in different threads
    cannot interleave) and restores the previous module state and environment variables.
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
def _env_default(key: str, value: str) -> Iterator[None]:
    """Set an environment variable for the block unless the user set it already."""
    with _FLUENT_LOCK:
        if key in os.environ:
            yield
            return
        os.environ[key] = value
        try:
            yield
        finally:
            os.environ.pop(key, None)


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "error_code", "") or "")


def _is_not_found(exc: Exception) -> bool:
    return _error_code(exc) == "RESOURCE_DOES_NOT_EXIST"


def _is_already_exists(exc: Exception) -> bool:
    return _error_code(exc) == "RESOURCE_ALREADY_EXISTS"


def _is_missing_alias(exc: Exception) -> bool:
    # SQLAlchemy store and REST server: INVALID_PARAMETER_VALUE "Registered model alias X not found."
    msg = str(getattr(exc, "message", exc)).lower()
    return "alias" in msg and "not found" in msg


def _mlflow_message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)


def _sanitize_key(key: str) -> str:
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
            out[_sanitize_key(full)] = _param_value(value)
    return out


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


def _signature_output(model: Any, sample: pandas.DataFrame) -> tuple[Any, str]:
    """Output used for the signature and the matching pyfunc predict function."""
    from sklearn.base import is_classifier

    if is_classifier(model) and hasattr(model, "predict_proba"):
        return model.predict_proba(sample), "predict_proba"
    return model.predict(sample), "predict"


def _serialization_for(model: Any) -> tuple[str, list[str] | None]:
    """Prefer skops (MLflow 3's default, no arbitrary code on load). Types skops does not know
    (e.g. ``xgboost.sklearn.XGBClassifier``) are listed as trusted: the model is our own output.
    Falls back to cloudpickle when skops cannot serialise the object at all."""
    try:
        import skops.io as sio

        data = sio.dumps(model)
        trusted = list(sio.get_untrusted_types(data=data))
        restored = sio.loads(data, trusted=trusted)
        del restored
        return "skops", trusted or None
    except Exception as exc:  # noqa: BLE001 - any skops failure means: use cloudpickle
        log.info("model not serialisable with skops (%s); using cloudpickle", exc)
        return "cloudpickle", None


def _with_serializer_requirement(reqs: list[str], fmt: str) -> list[str]:
    dist = {"skops": "skops", "cloudpickle": "cloudpickle"}.get(fmt)
    if dist is None:  # plain pickle: standard library
        return list(reqs)
    names = {re.split(r"[=<>!~ \[;]", r, maxsplit=1)[0].strip().lower() for r in reqs}
    if dist in names:
        return list(reqs)
    return [*reqs, *installed_requirements([dist])]


# --------------------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------------------


class ModelRegistry:
    """Tracking + registry access for one experiment and one registered model.

    ``tracking_uri`` is either an embedded SQLite store (``sqlite:////abs/.ctp/mlflow.db``,
    usually with ``artifact_location="file:///abs/.ctp/mlartifacts"``) or a tracking server
    (``http://127.0.0.1:5000``, artifact location chosen by the server). The registry lives
    in the same store. Constructing the object does no I/O.
    """

    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        experiment_name: str,
        artifact_location: str | None = None,
    ):
        if not tracking_uri:
            raise RegistryError("no MLflow tracking URI configured")
        self.tracking_uri = tracking_uri
        self.registry_uri = tracking_uri
        self.model_name = model_name
        self.experiment_name = experiment_name
        self.artifact_location = artifact_location
        self._client_obj: MlflowClient | None = None
        self._experiment_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"ModelRegistry(tracking_uri={self.tracking_uri!r}, model_name={self.model_name!r}, "
            f"experiment_name={self.experiment_name!r})"
        )

    # ---- plumbing ---------------------------------------------------------------------

    @property
    def _client(self) -> MlflowClient:
        if self._client_obj is None:
            if self.tracking_uri.startswith("sqlite:///"):
                db = self.tracking_uri[len("sqlite:///") :].split("?", 1)[0]
                if db and db != ":memory:":
                    Path(db).parent.mkdir(parents=True, exist_ok=True)
            import mlflow

            self._client_obj = mlflow.MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
            )
        return self._client_obj

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn MlflowException into RegistryError naming the operation and the store."""
        from mlflow.exceptions import MlflowException

        try:
            with _quiet_mlflow():
                yield
        except MlflowException as exc:
            raise RegistryError(
                f"MLflow {what} failed ({self.tracking_uri}): {_mlflow_message(exc)}"
            ) from exc

    def _ref_from_version(self, mv: Any) -> ModelRef:
        return ModelRef(name=mv.name, version=str(mv.version), run_id=(mv.run_id or None))

    def _ensure_registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        client = self._client
        try:
            client.get_registered_model(self.model_name)
            return
        except MlflowException as exc:
            if not _is_not_found(exc):
                raise
        try:
            client.create_registered_model(self.model_name)
        except MlflowException as exc:  # created concurrently by someone else: fine
            if not _is_already_exists(exc):
                raise

    # ---- experiment and runs ----------------------------------------------------------

    def ensure_experiment(self) -> str:
        """Return the experiment id, creating the experiment (with the artifact location) if
        missing. A *deleted* experiment of that name is an error (MLflow keeps the name)."""
        if self._experiment_id is not None:
            return self._experiment_id
        from mlflow.exceptions import MlflowException

        with self._errors(f"experiment lookup for {self.experiment_name!r}"):
            client = self._client
            exp = client.get_experiment_by_name(self.experiment_name)
            if exp is None:
                try:
                    exp_id = client.create_experiment(
                        self.experiment_name, artifact_location=self.artifact_location
                    )
                except MlflowException as exc:
                    if not _is_already_exists(exc):
                        raise
                    exp = client.get_experiment_by_name(self.experiment_name)
                    if exp is None:
                        raise
                    exp_id = exp.experiment_id
            else:
                exp_id = exp.experiment_id
            if exp is not None and exp.lifecycle_stage == "deleted":
                raise RegistryError(
                    f"MLflow experiment {self.experiment_name!r} (id {exp.experiment_id}) is "
                    f"deleted in {self.tracking_uri}; restore it "
                    f"(`mlflow experiments restore --experiment-id {exp.experiment_id}`) "
                    "or configure another experiment name"
                )
            if (
                exp is not None
                and self.artifact_location
                and exp.artifact_location.rstrip("/") != self.artifact_location.rstrip("/")
            ):
                log.warning(
                    "experiment %r already exists with artifact location %s (configured: %s); "
                    "keeping the existing one",
                    self.experiment_name,
                    exp.artifact_location,
                    self.artifact_location,
                )
        self._experiment_id = str(exp_id)
        return self._experiment_id

    def start_run(self, run_name: str, tags: dict[str, str] | None = None) -> str:
        """Create a run in the experiment and return its id. The run stays RUNNING until
        :meth:`end_run`; no MLflow "active run" is pushed."""
        exp_id = self.ensure_experiment()
        with self._errors(f"create run {run_name!r}"):
            run = self._client.create_run(
                exp_id,
                run_name=run_name,
                tags={_sanitize_key(k): str(v)[:MAX_TAG_VAL_LENGTH] for k, v in (tags or {}).items()},
            )
        return run.info.run_id

    def monitoring_run(self) -> str:
        """The pipeline's long-lived run for metrics over time (one step per batch), created on first use."""
        exp_id = self.ensure_experiment()
        with self._errors("find the monitoring run"):
            runs = self._client.search_runs([exp_id], filter_string="tags.`ctp.kind` = 'monitoring'", max_results=1)
        if runs:
            return runs[0].info.run_id
        run_id = self.start_run("monitoring", tags={"ctp.kind": "monitoring"})
        self.end_run(run_id, "FINISHED")
        return run_id

    def log_params(self, run_id: str, params: dict) -> None:
        """Log params; nested dicts are flattened with dotted keys, values stringified and
        truncated to MLflow's 6000-character limit. Re-logging a key with a different value is
        an MLflow error (params are immutable) and raises RegistryError."""
        from mlflow.entities import Param

        flat = flatten_params(params)
        items = [Param(k, v) for k, v in flat.items()]
        with self._errors(f"log params to run {run_id}"):
            for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
                self._client.log_batch(run_id, params=items[i : i + MAX_PARAMS_TAGS_PER_BATCH])

    def log_metrics(
        self, run_id: str, metrics: dict[str, float], step: int | None = None
    ) -> None:
        """Log metrics; None and NaN values are skipped. Non-numeric values raise TypeError."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = []
        for key, value in metrics.items():
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"metric {key!r} is not a number: {value!r}") from None
            if math.isnan(number):
                continue
            items.append(Metric(_sanitize_key(key), number, ts, int(step or 0)))
        with self._errors(f"log metrics to run {run_id}"):
            for i in range(0, len(items), MAX_METRICS_PER_BATCH):
                self._client.log_batch(run_id, metrics=items[i : i + MAX_METRICS_PER_BATCH])

    def log_dict(self, run_id: str, obj: dict, artifact_file: str) -> None:
        """Log a dict as a JSON artifact, or YAML when ``artifact_file`` ends in .yaml/.yml.
        numpy scalars/arrays, sets and dates are converted to plain JSON types."""
        plain = json.loads(json.dumps(obj, default=_json_default))
        if artifact_file.lower().endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
        else:
            text = json.dumps(plain, indent=2, ensure_ascii=False)
        self.log_text(run_id, text, artifact_file)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        with self._errors(f"log artifact {artifact_file!r} to run {run_id}"):
            self._client.log_text(run_id, text, artifact_file)

    def log_file(self, run_id: str, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Log a local file (or a whole directory's contents) under ``artifact_path``."""
        p = Path(path)
        if not p.exists():
            raise RegistryError(f"cannot log {p} to run {run_id}: no such file or directory")
        with self._errors(f"log artifact {p.name!r} to run {run_id}"):
            if p.is_dir():
                self._client.log_artifacts(run_id, str(p), artifact_path)
            else:
                self._client.log_artifact(run_id, str(p), artifact_path)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Log a matplotlib figure (format from the extension, e.g. ``.png``)."""
        with self._errors(f"log figure {artifact_file!r} to run {run_id}"):
            self._client.log_figure(run_id, figure, artifact_file)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(_sanitize_key(k), str(v)[:MAX_TAG_VAL_LENGTH]) for k, v in tags.items()]
        with self._errors(f"set tags on run {run_id}"):
            for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
                self._client.log_batch(run_id, tags=items[i : i + MAX_PARAMS_TAGS_PER_BATCH])

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        status = status.upper()
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, got {status!r}")
        # With a tracking server MLflow prints "View run ... at" to *stdout*; keep stdout clean
        # for the CLI (run_url_hint() gives the same link).
        with self._errors(f"end run {run_id}"), _env_default(
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true"
        ):
            self._client.set_terminated(run_id, status=status)

    def run_url_hint(self, run_id: str) -> str:
        """Short locator for messages: ``experiment <id> / run <run_id>`` (plus the UI URL when
        the tracking URI is a server)."""
        exp_id = self._experiment_id
        if exp_id is None:
            try:
                with _quiet_mlflow():
                    exp_id = self._client.get_run(run_id).info.experiment_id
            except Exception:  # noqa: BLE001 - a hint must never fail
                exp_id = "?"
        hint = f"experiment {exp_id} / run {run_id}"
        if self.tracking_uri.startswith(("http://", "https://")):
            hint += f" ({self.tracking_uri.rstrip('/')}/#/experiments/{exp_id}/runs/{run_id})"
        return hint

    # ---- models ----------------------------------------------------------------------

    def log_and_register_model(
        self,
        run_id: str,
        model: Any,
        input_example: pandas.DataFrame,
        pip_requirements: list[str],
        description: str | None = None,
        tags: dict[str, str] | None = None,
        serialization_format: str | None = None,
    ) -> ModelRef:
        """Log an sklearn estimator/Pipeline as a LoggedModel of ``run_id`` and register it as a
        new version of ``model_name``.

        * The signature is inferred from ``input_example`` (first 5 rows are stored as the
          example) and ``predict_proba`` for classifiers (the pyfunc flavor then also calls
          ``predict_proba``, so pyfunc output matches the signature) or ``predict`` otherwise.
        * ``pip_requirements`` are used as given (this skips MLflow's 4-7 s requirement
          inference); the serializer package (skops or cloudpickle) is added when missing,
          MLflow adds ``mlflow`` itself.
        * ``serialization_format``: ``None`` = skops when possible (types unknown to skops, such
          as XGBoost's, are recorded as trusted), else cloudpickle.
        * ``description``/``tags`` go on the registry version; ``tags`` also on the LoggedModel.
        """
        import mlflow.sklearn
        from mlflow.models import infer_signature

        if input_example is None or len(input_example) == 0:
            raise RegistryError("log_and_register_model needs a non-empty input_example")
        example = input_example.head(5)
        str_tags = {_sanitize_key(k): str(v) for k, v in (tags or {}).items()}

        with _quiet_mlflow():
            output, predict_fn = _signature_output(model, example)
            signature = infer_signature(example, output)
        if serialization_format is None:
            fmt, trusted = _serialization_for(model)
        else:
            fmt, trusted = serialization_format, None
            if fmt == "skops":
                _, trusted = _serialization_for(model)
        reqs = _with_serializer_requirement(list(pip_requirements), fmt)

        with self._errors(f"log and register model {self.model_name!r} from run {run_id}"):
            client = self._client
            run = client.get_run(run_id)
            if run.info.lifecycle_stage == "deleted":
                raise RegistryError(f"run {run_id} is deleted; cannot log a model to it")
            self._ensure_registered_model()
            with _fluent_uris(self.tracking_uri, self.registry_uri):
                logged = client.create_logged_model(
                    experiment_id=run.info.experiment_id,
                    name=MODEL_ARTIFACT_NAME,
                    source_run_id=run_id,
                    params=dict(run.data.params),
                    tags=str_tags or None,
                )
                info = mlflow.sklearn.log_model(
                    model,
                    name=MODEL_ARTIFACT_NAME,
                    model_id=logged.model_id,
                    run_id=run_id,
                    signature=signature,
                    input_example=example,
                    pip_requirements=reqs,
                    serialization_format=fmt,
                    skops_trusted_types=trusted,
                    pyfunc_predict_fn=predict_fn,
                )
                # Registered from the LoggedModel (source models:/<model_id>) like MLflow's own
                # register_model. The SQLAlchemy store resolves that source through the *global*
                # tracking URI, hence still inside _fluent_uris.
                mv = client.create_model_version(
                    name=self.model_name,
                    source=f"models:/{info.model_id}",
                    run_id=run_id,
                    tags=str_tags or None,
                    description=description,
                    model_id=info.model_id,
                )
            if str(getattr(mv, "status", "READY")) not in ("READY", "ModelVersionStatus.READY"):
                raise RegistryError(
                    f"model version {self.model_name} v{mv.version} is {mv.status}: "
                    f"{getattr(mv, 'status_message', '') or 'registration did not complete'}"
                )
        ref = self._ref_from_version(mv)
        log.info("registered %s (run %s, logged model %s)", ref.uri, run_id, info.model_id)
        return ref

    def get_version(self, version: str) -> ModelRef | None:
        """The given version of ``model_name``, or None if it (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        with self._errors(f"get {self.model_name} v{version}"):
            try:
                mv = self._client.get_model_version(self.model_name, str(version))
            except MlflowException as exc:
                if _is_not_found(exc):
                    return None
                raise
        return self._ref_from_version(mv)

    def load_model(self, ref: ModelRef) -> Any:
        """Load the sklearn estimator of a registered version (``predict_proba`` works).

        Resolves the version's storage location with this registry's client and downloads
        from there, so it neither depends on nor changes MLflow's global tracking URI (a plain
        ``mlflow.sklearn.load_model("models:/...")`` resolves ``models:/`` through the global
        registry URI, even via ``download_artifacts(registry_uri=...)``)."""
        import mlflow.artifacts
        import mlflow.sklearn

        self._check_ref(ref)
        with self._errors(f"load {ref.uri}"), tempfile.TemporaryDirectory(prefix="ctp-model-") as tmp:
            location = self._client.get_model_version_download_uri(ref.name, str(ref.version))
            with _env_default("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"):
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            return mlflow.sklearn.load_model(local)

    # ---- aliases ---------------------------------------------------------------------

    def get_alias(self, alias: str) -> ModelRef | None:
        """Version the alias points at; None if the registered model or the alias does not
        exist. RegistryError if the alias points at a missing/deleted or unusable version."""
        from mlflow.exceptions import MlflowException

        with self._errors(f"read alias {self.model_name}@{alias}"):
            client = self._client
            try:
                mv = client.get_model_version_by_alias(self.model_name, alias)
            except MlflowException as exc:
                if _is_not_found(exc):
                    try:
                        client.get_registered_model(self.model_name)
                    except MlflowException as exc2:
                        if _is_not_found(exc2):
                            return None
                        raise
                    raise RegistryError(
                        f"alias {self.model_name}@{alias} points at a model version that does "
                        f"not exist any more ({_mlflow_message(exc)}); set the alias again "
                        f"(`ctp rollback --to-version N`, or the MLflow UI) or delete it"
                    ) from exc
                if _is_missing_alias(exc):
                    return None
                raise
        status = str(getattr(mv, "status", "READY"))
        if status not in ("READY", "ModelVersionStatus.READY"):
            raise RegistryError(
                f"alias {self.model_name}@{alias} points at version {mv.version}, whose "
                f"registration status is {status}"
            )
        return self._ref_from_version(mv)

    def champion(self) -> ModelRef | None:
        return self.get_alias(CHAMPION)

    def _check_ref(self, ref: ModelRef) -> None:
        if ref.name != self.model_name:
            raise RegistryError(
                f"model version {ref.uri} does not belong to registered model {self.model_name!r}"
            )

    def set_alias(self, alias: str, ref: ModelRef) -> None:
        """Point ``alias`` at ``ref`` (overwrites in one write; the alias never disappears)."""
        self._check_ref(ref)
        with self._errors(f"set alias {ref.name}@{alias} -> v{ref.version}"):
            self._client.set_registered_model_alias(ref.name, alias, str(ref.version))

    def delete_alias(self, alias: str) -> None:
        """Remove ``alias``; no-op if it (or the registered model) does not exist."""
        from mlflow.exceptions import MlflowException

        with self._errors(f"delete alias {self.model_name}@{alias}"):
            try:
                self._client.delete_registered_model_alias(self.model_name, alias)
            except MlflowException as exc:
                if not (_is_not_found(exc) or _is_missing_alias(exc)):
                    raise

    def compare_and_swap_alias(
        self, alias: str, new: ModelRef, expected_version: str | None
    ) -> bool:
        """Move ``alias`` to ``new.version`` only if it currently points at ``expected_version``
        (``None``: the alias must not exist yet). Returns True when the alias points at
        ``new.version`` afterwards because of this call (or already did and was expected to),
        False, having changed nothing, when the current value differs from the expected one.

        MLflow has no atomic compare-and-swap, so this is read -> compare -> set -> read back:

        * The alias is *overwritten* in a single write, never deleted first, so a crash at any
          point leaves it pointing at either the old or the new version, never at nothing.
        * Remaining race window: another writer that moves the alias between our read and our
          write is silently overwritten (lost update). A writer landing after our write is
          detected by the read-back, and we return False (its value stands). Callers that need
          strict serialisation must hold an external lock (e.g. a Prefect concurrency limit)
          around promotion.
        """
        self._check_ref(new)
        if self.get_version(new.version) is None:
            raise RegistryError(f"cannot move {self.model_name}@{alias}: {new.uri} does not exist")
        expected = None if expected_version is None else str(expected_version)
        current = self.get_alias(alias)
        current_version = current.version if current else None
        if current_version != expected:
            log.info(
                "alias %s@%s is at %s, expected %s: not moving it to v%s",
                self.model_name, alias, current_version, expected, new.version,
            )
            return False
        if current_version != str(new.version):
            self.set_alias(alias, new)
        after = self.get_alias(alias)
        if after is None or after.version != str(new.version):
            log.warning(
                "alias %s@%s was moved concurrently to %s while setting it to v%s",
                self.model_name, alias, after.version if after else None, new.version,
            )
            return False
        return True

    # ---- version metadata ------------------------------------------------------------

    def set_version_tags(self, ref: ModelRef, tags: dict[str, str]) -> None:
        self._check_ref(ref)
        with self._errors(f"tag {ref.uri}"):
            for key, value in tags.items():
                self._client.set_model_version_tag(ref.name, str(ref.version), _sanitize_key(key), str(value))

    def get_version_tags(self, ref: ModelRef) -> dict[str, str]:
        self._check_ref(ref)
        with self._errors(f"read tags of {ref.uri}"):
            return dict(self._client.get_model_version(ref.name, str(ref.version)).tags or {})

    def set_version_description(self, ref: ModelRef, text: str) -> None:
        self._check_ref(ref)
        with self._errors(f"describe {ref.uri}"):
            self._client.update_model_version(ref.name, str(ref.version), description=text)
