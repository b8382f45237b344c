"""Logging, registering and loading the pipeline's sklearn models with MLflow 3.

* Models are logged as MLflow 3 *LoggedModels*: their artifacts live under
  ``<experiment artifact location>/models/<model_id>/artifacts``, **not** under the run's
  artifacts. The run is linked to the model through its outputs, and the registry version's
  ``source`` is ``models:/<model_id>``.
* Two steps only work through MLflow's *global* tracking URI: ``mlflow.<flavor>.log_model``
  (``Model.log`` builds its own ``MlflowClient()``) and the SQLAlchemy registry store when a
  version's source is ``models:/<model_id>`` (it resolves the LoggedModel with a bare
  ``MlflowClient()``). Those run inside :func:`~ctpipeline.adapters.mlflow.common.fluent_uris`,
  which sets the global URIs under a process-wide lock and restores them afterwards.
* Loading resolves the version's storage location with the explicit client, so it neither
  needs nor changes the global URI. A version's artifacts never change, so the last few models loaded in this
  process are kept by location (``LOADED``): a replay or a long-lived process loads each version once.
* The model is the whole scikit-learn Pipeline, feature transforms included (``core.features``, shipped with the
  model as ``code_paths``), so its signature is on the raw columns: numeric ones ``double``, the time column
  ``Any`` (MLflow's ``datetime`` refuses tz-aware values; the model parses ISO strings, naive = UTC, and aware
  timestamps itself).
* Registering links the LoggedModel to its version (tag ``mlflow.modelVersions``, as ``mlflow.register_model``
  does), so the MLflow UI shows it as registered; it is named ``<registered model>-<batch>``.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctpipeline.adapters.mlflow.common import (
    ModelScoped,
    env_default,
    fluent_uris,
    is_already_exists,
    is_not_found,
    mlflow_errors,
    sanitize_key,
    sys_path_kept,
)
from ctpipeline.adapters.mlflow.model_files import feature_code, log_model_kwargs
from ctpipeline.adapters.mlflow.registry import ModelRef, check_ref, is_ready
from ctpipeline.errors import RegistryError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

log = logging.getLogger(__name__)

MODEL_ARTIFACT_NAME = "model"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # mlflow.utils.mlflow_tags.MLFLOW_MODEL_VERSIONS
_LOGGED_NAME_BAD = re.compile(r"[/:.%\"' ]+")  # mlflow.utils.validation._validate_logged_model_name


def logged_model_name(model_name: str, batch: str | None) -> str:
    """``flights-delay-2013-05``: the registered model's name and the batch, in characters MLflow accepts."""
    name = f"{model_name}-{batch}" if batch else model_name
    return _LOGGED_NAME_BAD.sub("-", name).strip("-") or MODEL_ARTIFACT_NAME


class ModelStore(ModelScoped):
    """Model files of the registered model ``model_name``: log + register new versions, load them.
    ``description`` (the pipeline's) is set on the registered model."""

    def __init__(self, tracking_uri: str, model_name: str, *, client: Any = None, description: str = ""):
        super().__init__(tracking_uri, model_name, client=client)
        self.description = description

    def log_and_register_model(
        self,
        run_id: str,
        model: Any,
        input_example: pandas.DataFrame,
        pip_requirements: list[str],
        description: str | None = None,
        tags: dict[str, str] | None = None,
        serialization_format: str | None = None,
        logged_name: str | None = None,
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
        * ``logged_name``: the LoggedModel's name; default ``<model_name>-<tags["ctp.batch"]>``.
        """
        if input_example is None or len(input_example) == 0:
            raise RegistryError("log_and_register_model needs a non-empty input_example")
        example = input_example.head(5)
        str_tags = {sanitize_key(k): str(v) for k, v in (tags or {}).items()} or None
        kwargs = log_model_kwargs(model, example, pip_requirements, serialization_format)
        kwargs["name"] = logged_name or logged_model_name(self.model_name, (tags or {}).get("ctp.batch"))

        with mlflow_errors(f"log and register model {self.model_name!r} from run {run_id}", self.tracking_uri):
            run = self.client.get().get_run(run_id)
            if run.info.lifecycle_stage == "deleted":
                raise RegistryError(f"run {run_id} is deleted; cannot log a model to it")
            self._ensure_registered_model()
            with (
                fluent_uris(self.client.tracking_uri, self.client.registry_uri),
                tempfile.TemporaryDirectory() as code,
                sys_path_kept(),  # log_model loads the model once, from a folder it deletes
            ):
                kwargs["code_paths"] = feature_code(Path(code))
                mv, model_id = self._log_and_register(run, model, str_tags, description, kwargs)
            self._link_version(model_id, mv)
            if not is_ready(mv):
                raise RegistryError(
                    f"model version {self.model_name} v{mv.version} is {mv.status}: "
                    f"{getattr(mv, 'status_message', '') or 'registration did not complete'}"
                )
        ref = ModelRef.from_version(mv)
        log.info("registered %s (run %s, logged model %s)", ref.uri, run_id, model_id)
        return ref

    def _log_and_register(
        self, run: Any, model: Any, tags: dict[str, str] | None, description: str | None, kwargs: dict[str, Any]
    ) -> tuple[Any, str]:
        """Create the LoggedModel, write the model into it, register it: the new ``ModelVersion`` and the
        LoggedModel's id. Runs inside :func:`fluent_uris`."""
        import mlflow.sklearn

        client = self.client.get()
        run_id = run.info.run_id
        logged = client.create_logged_model(
            experiment_id=run.info.experiment_id,
            name=kwargs["name"],
            source_run_id=run_id,
            params=dict(run.data.params),
            tags=tags,
        )
        info = mlflow.sklearn.log_model(model, model_id=logged.model_id, run_id=run_id, **kwargs)
        # Registered from the LoggedModel (source models:/<model_id>) like MLflow's own register_model. The
        # SQLAlchemy store resolves that source through the *global* tracking URI, hence inside fluent_uris.
        mv = client.create_model_version(
            name=self.model_name,
            source=f"models:/{info.model_id}",
            run_id=run_id,
            tags=tags,
            description=description,
            model_id=info.model_id,
        )
        return mv, info.model_id

    def _link_version(self, model_id: str, mv: Any) -> None:
        """Record the new version on the LoggedModel, as ``mlflow.register_model`` does (a tracking server does it
        itself; the embedded store does not): the MLflow UI then shows the model as registered."""
        client = self.client.get()
        entry = {"name": mv.name, "version": str(mv.version)}
        existing = client.get_logged_model(model_id).tags.get(MODEL_VERSIONS_TAG)
        versions = json.loads(existing) if existing else []
        if entry not in versions:
            client.set_logged_model_tags(model_id, {MODEL_VERSIONS_TAG: json.dumps([*versions, entry])})

    def _ensure_registered_model(self) -> None:
        """Create the registered model (with the pipeline's description) or bring its description up to date."""
        from mlflow.exceptions import MlflowException

        client = self.client.get()
        try:
            rm = client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if not is_not_found(exc):
                raise
            rm = None
        if rm is not None:
            if self.description and (rm.description or "") != self.description:
                client.update_registered_model(self.model_name, description=self.description)
            return
        try:
            client.create_registered_model(self.model_name, description=self.description or None)
        except MlflowException as exc:  # created concurrently by someone else: fine
            if not is_already_exists(exc):
                raise

    def load_model(self, ref: ModelRef) -> Any:
        """The sklearn estimator of a registered version, from the process's cache of loaded models when there."""
        check_ref(ref, self.model_name)
        with mlflow_errors(f"load {ref.uri}", self.tracking_uri):
            location = self.client.get().get_model_version_download_uri(ref.name, str(ref.version))
        key = (self.tracking_uri, location)
        with LOADED.lock:
            if key in LOADED.models:
                LOADED.models.move_to_end(key)
                return LOADED.models[key]
        model = self._download_and_load(ref, location)
        with LOADED.lock:
            LOADED.models[key] = model
            while len(LOADED.models) > LOADED.size:
                LOADED.models.popitem(last=False)
        return model

    def _download_and_load(self, ref: ModelRef, location: str) -> Any:
        """Load the sklearn estimator of a registered version (``predict_proba`` works).

        Resolves the version's storage location with this store's client and downloads
        from there, so it neither depends on nor changes MLflow's global tracking URI (a plain
        ``mlflow.sklearn.load_model("models:/...")`` resolves ``models:/`` through the global
        registry URI, even via ``download_artifacts(registry_uri=...)``)."""
        import mlflow.artifacts
        import mlflow.sklearn

        with (
            mlflow_errors(f"load {ref.uri}", self.tracking_uri),
            tempfile.TemporaryDirectory(prefix="ctp-model-") as tmp,
        ):
            with env_default("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"):
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            with sys_path_kept():  # MLflow prepends the model's code_paths folder (deleted with tmp) for good
                return mlflow.sklearn.load_model(local)


class _Loaded:
    """The models loaded in this process, by (tracking URI, artifact location), most recently used last."""

    def __init__(self, size: int):
        self.size = size
        self.lock = threading.Lock()
        self.models: OrderedDict[tuple[str, str], Any] = OrderedDict()


LOADED = _Loaded(size=6)
