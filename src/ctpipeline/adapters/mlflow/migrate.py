"""Copy a pipeline's MLflow data from one store to another: the embedded SQLite registry into a tracking server.

MLflow 3.17 ships no tool for this (``mlflow migrate-filestore`` converts a ``mlruns/`` file store into SQLite
only; ``MlflowClient.copy_model_version`` copies inside one registry), so this uses the client on both sides:

* the experiment's runs (active ones, oldest first): params, every metric with its full step history, tags (a
  parent-run tag re-pointed at the copy), status and times, and every artifact;
* the registered model's versions in version order, so that version N on the server is version N here: each
  version's model files are downloaded and logged again as a LoggedModel of the copied run, so
  ``models:/<name>/<N>`` loads on the server; version tags and descriptions, the model's tags and description;
* the aliases (champion, challenger, previous, whatever is set).

Idempotent: a copied run carries ``ctp.migrated_from_run`` (and ``ctp.migration=complete`` once whole; a run
half-copied by an interrupted migration is deleted and copied again), a copied version carries
``ctp.migrated_from_version`` and the source run id; a second migration copies nothing twice and says so. A target
that already has other versions of the model (numbers would not match) is refused before anything is copied.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctpipeline.adapters.mlflow.common import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    env_default,
    fluent_uris,
    mlflow_errors,
)
from ctpipeline.adapters.mlflow.migrate_support import MigrationReport, reachable, redact, repoint_mlmodel
from ctpipeline.errors import RegistryError

log = logging.getLogger(__name__)

FROM_RUN = "ctp.migrated_from_run"
FROM_VERSION = "ctp.migrated_from_version"
STATE_TAG = "ctp.migration"
_PAGE = 1000
_MAX_PAGES = 1000  # bounds every listing loop (a million entries)


def _client(uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)  # credentials: MLFLOW_TRACKING_USERNAME/PASSWORD


def _pages(fetch: Callable[[str | None], Any]) -> list[Any]:
    """Every item of a paged MLflow listing (bounded: at most _MAX_PAGES pages)."""
    items, token = [], None
    for _ in range(_MAX_PAGES):
        page = fetch(token)
        items += list(page)
        token = page.token
        if not token:
            break
    return items


def _all_runs(client: Any, experiment_id: str) -> list[Any]:
    from mlflow.entities import ViewType

    runs = _pages(lambda t: client.search_runs([experiment_id], run_view_type=ViewType.ACTIVE_ONLY, page_token=t))
    return sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))


def _all_versions(client: Any, model: str) -> list[Any]:
    versions = _pages(lambda t: client.search_model_versions(f"name = '{model}'", max_results=_PAGE, page_token=t))
    return sorted(versions, key=lambda v: int(v.version))


def _registered(client: Any, model: str) -> Any | None:
    """The registered model, or None when it does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(model)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Migration:
    """One migration of experiment `experiment` and registered model `model` from `source` to `target`."""

    def __init__(self, source: str, target: str, experiment: str, model: str, progress: Callable[[str], None]):
        if source == target:
            raise RegistryError(f"source and target are the same store ({redact(source)})")
        self.src, self.dst, self.target = _client(source), _client(target), target
        self.report = MigrationReport(redact(source), redact(target), experiment, model)
        self.experiment, self.model, self.progress = experiment, model, progress
        self.run_map: dict[str, str] = {}  # source run id -> target run id

    def run(self) -> MigrationReport:
        with mlflow_errors("read the source store", self.report.source):
            src_exp = self.src.get_experiment_by_name(self.experiment)
            if src_exp is None:
                raise RegistryError(f"no experiment {self.experiment!r} in {self.report.source}: nothing to migrate")
            src_versions = self._versions(self.src)
        with mlflow_errors("write the target store", self.report.target):
            dst_versions = {str(v.version): v for v in self._versions(self.dst)}
            self._check_numbering(src_versions, dst_versions)
            dst_exp_id = self._target_experiment(src_exp)
            self._copy_runs(src_exp.experiment_id, dst_exp_id)
            if src_versions:
                self._ensure_model()
                for mv in src_versions:
                    self._copy_version(mv, dst_versions.get(str(mv.version)), dst_exp_id)
                self._copy_aliases()
        return self.report

    # ---- checks -------------------------------------------------------------------------------

    def _versions(self, client: Any) -> list[Any]:
        """The model's versions in `client`'s registry, oldest first; none when the model is not registered."""
        return _all_versions(client, self.model) if _registered(client, self.model) else []

    def _check_numbering(self, src_versions: list[Any], dst_versions: dict[str, Any]) -> None:
        """Refuse, before copying anything, a target whose version numbers would not match the source's."""
        numbers = [int(v.version) for v in src_versions]
        if numbers != list(range(1, len(numbers) + 1)):
            raise RegistryError(f"source versions of {self.model!r} are not 1..N without gaps: {numbers}")
        by_number = {str(v.version): v for v in src_versions}
        foreign = [
            n
            for n, v in dst_versions.items()
            if n not in by_number or (v.tags.get(FROM_VERSION), v.tags.get(FROM_RUN)) != (n, by_number[n].run_id)
        ]
        if foreign:
            raise RegistryError(
                f"{self.report.target} already has version(s) {', '.join(sorted(foreign, key=int))} of "
                f"{self.model!r} that were not migrated from here: version numbers would not match; "
                "migrate into a server without that registered model (or rename it there first)"
            )

    # ---- runs ---------------------------------------------------------------------------------

    def _target_experiment(self, src_exp: Any) -> str:
        exp = self.dst.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp else self.dst.create_experiment(self.experiment)  # server's artifact root
        for key, value in src_exp.tags.items():
            if not key.startswith("mlflow.") and (exp is None or exp.tags.get(key) != value):
                self.dst.set_experiment_tag(exp_id, key, value)
        return exp_id

    def _copy_runs(self, src_exp_id: str, dst_exp_id: str) -> None:
        existing: dict[str, Any] = {}
        for run in _all_runs(self.dst, dst_exp_id):
            source_id = run.data.tags.get(FROM_RUN)
            if not source_id:
                continue
            if run.data.tags.get(STATE_TAG) == "complete":
                existing[source_id] = run.info.run_id
            else:  # an interrupted copy: start that run again
                log.warning("deleting the half-copied run %s (of %s) to copy it again", run.info.run_id, source_id)
                self.dst.delete_run(run.info.run_id)
        for run in _all_runs(self.src, src_exp_id):
            sid = run.info.run_id
            if sid in existing:
                self.run_map[sid] = existing[sid]
                self.report.runs_present.append(sid)
                continue
            self.run_map[sid] = self._copy_run(run, dst_exp_id)
            self.report.runs_copied.append(sid)
            self.progress(f"run {run.info.run_name or sid} copied")

    def _copy_run(self, run: Any, dst_exp_id: str) -> str:
        from mlflow.entities import Metric, Param, RunTag

        tags = dict(run.data.tags)
        parent = tags.get("mlflow.parentRunId")
        if parent:
            tags["mlflow.parentRunId"] = self.run_map.get(parent, parent)
        tags.update({FROM_RUN: run.info.run_id, STATE_TAG: "copying"})
        new = self.dst.create_run(dst_exp_id, start_time=run.info.start_time, tags=tags, run_name=run.info.run_name)
        rid = new.info.run_id
        params = [Param(k, v) for k, v in run.data.params.items()]
        for chunk in _chunks(params, MAX_PARAMS_TAGS_PER_BATCH):
            self.dst.log_batch(rid, params=chunk)
        metrics = [
            Metric(m.key, m.value, m.timestamp, m.step)
            for key in run.data.metrics
            for m in self.src.get_metric_history(run.info.run_id, key)
        ]
        for chunk in _chunks(metrics, MAX_METRICS_PER_BATCH):
            self.dst.log_batch(rid, metrics=chunk)
        with tempfile.TemporaryDirectory(prefix="ctp-migrate-") as tmp:
            if self.src.list_artifacts(run.info.run_id):
                local = self.src.download_artifacts(run.info.run_id, "", tmp)
                self.dst.log_artifacts(rid, local)
        self.dst.log_batch(rid, tags=[RunTag(STATE_TAG, "complete")])
        self.dst.set_terminated(rid, status=run.info.status, end_time=run.info.end_time)
        return rid

    # ---- registry -----------------------------------------------------------------------------

    def _ensure_model(self) -> None:
        rm = self.src.get_registered_model(self.model)
        dst = _registered(self.dst, self.model) or self.dst.create_registered_model(
            self.model, tags=dict(rm.tags), description=rm.description
        )
        for key, value in rm.tags.items():
            if dst.tags.get(key) != value:
                self.dst.set_registered_model_tag(self.model, key, value)
        if rm.description and dst.description != rm.description:
            self.dst.update_registered_model(self.model, description=rm.description)

    def _copy_version(self, mv: Any, present: Any | None, dst_exp_id: str) -> None:
        import mlflow.artifacts
        from mlflow.entities import LoggedModelOutput

        version = str(mv.version)
        if present is not None:
            self.report.versions_present.append(version)
            return
        run_id = self.run_map.get(mv.run_id) if mv.run_id else None
        if mv.run_id and run_id is None:
            raise RegistryError(f"version {version} comes from run {mv.run_id}, which is not in {self.experiment!r}")
        with tempfile.TemporaryDirectory(prefix="ctp-migrate-model-") as tmp:
            location = self.src.get_model_version_download_uri(self.model, version)
            local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=tmp)
            logged = self._source_logged_model(mv)
            model = self.dst.create_logged_model(
                experiment_id=dst_exp_id,
                name=getattr(logged, "name", None) or "model",
                source_run_id=run_id,
                tags=dict(getattr(logged, "tags", None) or {}) or None,
                params=dict(getattr(logged, "params", None) or {}) or None,
            )
            repoint_mlmodel(Path(local), run_id, model.model_id)
            self.dst.log_model_artifacts(model.model_id, local)
        self.dst.finalize_logged_model(model.model_id, "READY")
        if run_id:
            self.dst.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
        with fluent_uris(self.target, self.target):  # a SQLite target resolves models:/ through the global URI
            new = self.dst.create_model_version(
                name=self.model,
                source=f"models:/{model.model_id}",
                run_id=run_id,
                tags={**mv.tags, FROM_VERSION: version, FROM_RUN: mv.run_id or ""},
                description=mv.description,
                model_id=model.model_id,
            )
        if str(new.version) != version:
            raise RegistryError(f"the target numbered the copy of v{version} as v{new.version}; stopped")
        self.report.versions_copied.append(version)
        self.progress(f"version {version} copied")

    def _source_logged_model(self, mv: Any) -> Any | None:
        model_id = getattr(mv, "model_id", None)
        return self.src.get_logged_model(model_id) if model_id else None

    def _copy_aliases(self) -> None:
        src = self.src.get_registered_model(self.model).aliases or {}
        dst = self.dst.get_registered_model(self.model).aliases or {}
        for alias, version in sorted(src.items()):
            if str(dst.get(alias)) == str(version):
                self.report.aliases_present[alias] = str(version)
                continue
            self.dst.set_registered_model_alias(self.model, alias, str(version))
            self.report.aliases_set[alias] = str(version)


def migrate(
    source_uri: str,
    target_uri: str,
    experiment: str,
    model: str,
    progress: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Copy `experiment`'s runs, `model`'s versions and its aliases from `source_uri` to `target_uri`."""
    reachable(target_uri)
    try:
        with env_default("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"):
            return Migration(source_uri, target_uri, experiment, model, progress or log.info).run()
    except RegistryError as exc:
        if re.search(r"\b(401|403)\b|Unauthorized|PERMISSION_DENIED|UNAUTHENTICATED", str(exc)):
            raise RegistryError(
                f"{exc}\n(the server refused the credentials: set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD in the environment)"
            ) from exc
        raise
