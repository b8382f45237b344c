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
  needs nor changes the global URI.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
import tempfile
from typing import TYPE_CHECKING, Any

from ctpipeline.adapters.mlflow.common import (
    ModelScoped,
    env_default,
    fluent_uris,
    is_already_exists,
    is_not_found,
    mlflow_errors,
    quiet_mlflow,
    sanitize_key,
)
from ctpipeline.adapters.mlflow.registry import ModelRef, check_ref, is_ready
from ctpipeline.errors import RegistryError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

log = logging.getLogger(__name__)

MODEL_ARTIFACT_NAME = "model"


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


def _log_model_kwargs(
    model: Any, example: pandas.DataFrame, pip_requirements: list[str], serialization_format: str | None
) -> dict[str, Any]:
    """The arguments of ``mlflow.sklearn.log_model`` that describe the model: signature, example,
    pyfunc predict function, serializer (with its trusted types) and pip requirements."""
    from mlflow.models import infer_signature

    with quiet_mlflow():
        output, predict_fn = _signature_output(model, example)
        signature = infer_signature(example, output)
    if serialization_format is None:
        fmt, trusted = _serialization_for(model)
    else:
        fmt, trusted = serialization_format, None
        if fmt == "skops":
            _, trusted = _serialization_for(model)
    return {
        "signature": signature,
        "input_example": example,
        "pip_requirements": _with_serializer_requirement(list(pip_requirements), fmt),
        "serialization_format": fmt,
        "skops_trusted_types": trusted,
        "pyfunc_predict_fn": predict_fn,
    }


class ModelStore(ModelScoped):
    """Model files of the registered model ``model_name``: log + register new versions, load them."""

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
        if input_example is None or len(input_example) == 0:
            raise RegistryError("log_and_register_model needs a non-empty input_example")
        example = input_example.head(5)
        str_tags = {sanitize_key(k): str(v) for k, v in (tags or {}).items()} or None
        kwargs = _log_model_kwargs(model, example, pip_requirements, serialization_format)

        with mlflow_errors(f"log and register model {self.model_name!r} from run {run_id}", self.tracking_uri):
            run = self.client.get().get_run(run_id)
            if run.info.lifecycle_stage == "deleted":
                raise RegistryError(f"run {run_id} is deleted; cannot log a model to it")
            self._ensure_registered_model()
            with fluent_uris(self.client.tracking_uri, self.client.registry_uri):
                mv, model_id = self._log_and_register(run, model, str_tags, description, kwargs)
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
            name=MODEL_ARTIFACT_NAME,
            source_run_id=run_id,
            params=dict(run.data.params),
            tags=tags,
        )
        info = mlflow.sklearn.log_model(
            model, name=MODEL_ARTIFACT_NAME, model_id=logged.model_id, run_id=run_id, **kwargs
        )
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

    def _ensure_registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        client = self.client.get()
        try:
            client.get_registered_model(self.model_name)
            return
        except MlflowException as exc:
            if not is_not_found(exc):
                raise
        try:
            client.create_registered_model(self.model_name)
        except MlflowException as exc:  # created concurrently by someone else: fine
            if not is_already_exists(exc):
                raise

    def load_model(self, ref: ModelRef) -> Any:
        """Load the sklearn estimator of a registered version (``predict_proba`` works).

        Resolves the version's storage location with this store's client and downloads
        from there, so it neither depends on nor changes MLflow's global tracking URI (a plain
        ``mlflow.sklearn.load_model("models:/...")`` resolves ``models:/`` through the global
        registry URI, even via ``download_artifacts(registry_uri=...)``)."""
        import mlflow.artifacts
        import mlflow.sklearn

        check_ref(ref, self.model_name)
        with (
            mlflow_errors(f"load {ref.uri}", self.tracking_uri),
            tempfile.TemporaryDirectory(prefix="ctp-model-") as tmp,
        ):
            location = self.client.get().get_model_version_download_uri(ref.name, str(ref.version))
            with env_default("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"):
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=tmp, tracking_uri=self.tracking_uri
                )
            return mlflow.sklearn.load_model(local)
