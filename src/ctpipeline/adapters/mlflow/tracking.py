"""MLflow tracking for one experiment: runs, params, metrics, tags and artifacts.

Every call goes through an explicit client (:class:`~ctpipeline.adapters.mlflow.common.LazyClient`); no
MLflow "active run" is pushed and MLflow's global (fluent) state is never touched.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from ctpipeline.adapters.mlflow.common import (
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
    LazyClient,
    env_default,
    flatten_params,
    is_already_exists,
    is_not_found,
    mlflow_errors,
    sanitize_key,
    shared_client,
)
from ctpipeline.core.jsonable import to_jsonable
from ctpipeline.errors import RegistryError

log = logging.getLogger(__name__)

RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")
DESCRIPTION_TAG = "mlflow.note.content"  # what the MLflow UI shows as an experiment's or a run's description


def _tag_items(tags: dict[str, str] | None) -> dict[str, str]:
    return {sanitize_key(k): str(v)[:MAX_TAG_VAL_LENGTH] for k, v in (tags or {}).items()}


def _metric_items(metrics: dict[str, float], step: int | None, ts: int) -> list:
    """MLflow ``Metric`` entities of `metrics` at `step`: None and NaN skipped, a non-number a TypeError."""
    from mlflow.entities import Metric

    items = []
    for key, value in metrics.items():
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metric {key!r} is not a number: {value!r}") from None
        if not math.isnan(number):
            items.append(Metric(sanitize_key(key), number, ts, int(step or 0)))
    return items


class Tracking:
    """Runs of one experiment in one store.

    ``tracking_uri`` is either an embedded SQLite store (``sqlite:////abs/.ctp/mlflow.db``, usually with
    ``artifact_location="file:///abs/.ctp/mlartifacts"``) or a tracking server (``http://127.0.0.1:5000``,
    artifact location chosen by the server). Constructing the object does no I/O; pass ``client`` to share
    one MLflow client with a :class:`Registry`/:class:`ModelStore` of the same store.
    """

    def __init__(
        self,
        tracking_uri: str,
        experiment_name: str,
        artifact_location: str | None = None,
        *,
        client: LazyClient | None = None,
        description: str = "",
    ):
        self.client = shared_client(tracking_uri, client)
        self.description = description
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_location = artifact_location
        self._experiment_id: str | None = None

    def __repr__(self) -> str:
        return f"Tracking(tracking_uri={self.tracking_uri!r}, experiment_name={self.experiment_name!r})"

    def _errors(self, what: str):
        return mlflow_errors(what, self.tracking_uri)

    # ---- experiment and runs ------------------------------------------------------------------

    def ensure_experiment(self) -> str:
        """Return the experiment id, creating the experiment (with the artifact location) if
        missing. A *deleted* experiment of that name is an error (MLflow keeps the name)."""
        if self._experiment_id is not None:
            return self._experiment_id
        from mlflow.exceptions import MlflowException

        with self._errors(f"experiment lookup for {self.experiment_name!r}"):
            client = self.client.get()
            exp = client.get_experiment_by_name(self.experiment_name)
            if exp is None:
                try:
                    exp_id = client.create_experiment(self.experiment_name, artifact_location=self.artifact_location)
                except MlflowException as exc:
                    if not is_already_exists(exc):
                        raise
                    exp = client.get_experiment_by_name(self.experiment_name)
                    if exp is None:
                        raise
                    exp_id = exp.experiment_id
            else:
                exp_id = exp.experiment_id
            if exp is not None:
                self._check_existing(exp)
            self._describe(str(exp_id), exp)
        self._experiment_id = str(exp_id)
        return self._experiment_id

    def _describe(self, exp_id: str, exp: Any) -> None:
        """The pipeline's description as the experiment's (MLflow keeps it in the tag ``mlflow.note.content``)."""
        current = (exp.tags or {}).get(DESCRIPTION_TAG) if exp is not None else None
        if self.description and current != self.description:
            self.client.get().set_experiment_tag(exp_id, DESCRIPTION_TAG, self.description[:MAX_TAG_VAL_LENGTH])

    def _check_existing(self, exp: Any) -> None:
        """Refuse a deleted experiment; warn when its artifact location is not the configured one."""
        if exp.lifecycle_stage == "deleted":
            raise RegistryError(
                f"MLflow experiment {self.experiment_name!r} (id {exp.experiment_id}) is "
                f"deleted in {self.tracking_uri}; restore it "
                f"(`mlflow experiments restore --experiment-id {exp.experiment_id}`) "
                "or configure another experiment name"
            )
        if self.artifact_location and exp.artifact_location.rstrip("/") != self.artifact_location.rstrip("/"):
            log.warning(
                "experiment %r already exists with artifact location %s (configured: %s); keeping the existing one",
                self.experiment_name,
                exp.artifact_location,
                self.artifact_location,
            )

    def start_run(self, run_name: str, tags: dict[str, str] | None = None) -> str:
        """Create a run in the experiment and return its id. The run stays RUNNING until
        :meth:`end_run`; no MLflow "active run" is pushed."""
        exp_id = self.ensure_experiment()
        with self._errors(f"create run {run_name!r}"):
            run = self.client.get().create_run(exp_id, run_name=run_name, tags=_tag_items(tags))
        return run.info.run_id

    def monitoring_run(self) -> str:
        """The pipeline's long-lived run for metrics over time (one step per batch), created on first use."""
        exp_id = self.ensure_experiment()
        with self._errors("find the monitoring run"):
            runs = self.client.get().search_runs(
                [exp_id], filter_string="tags.`ctp.kind` = 'monitoring'", max_results=1
            )
        if runs:
            return runs[0].info.run_id
        run_id = self.start_run("monitoring", tags={"ctp.kind": "monitoring"})
        self.end_run(run_id, "FINISHED")
        return run_id

    def search_run_ids(self, filter_string: str, max_results: int = 100) -> list[str]:
        """Ids of this experiment's runs matching an MLflow search filter, e.g. ``attributes.status = 'RUNNING'``."""
        exp_id = self.ensure_experiment()
        with self._errors(f"search runs ({filter_string})"):
            runs = self.client.get().search_runs([exp_id], filter_string=filter_string, max_results=max_results)
        return [r.info.run_id for r in runs]

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        status = status.upper()
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, got {status!r}")
        # With a tracking server MLflow prints "View run ... at" to *stdout*; keep stdout clean for the CLI.
        with self._errors(f"end run {run_id}"), env_default("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true"):
            self.client.get().set_terminated(run_id, status=status)

    # ---- params, metrics, tags ----------------------------------------------------------------

    def log_params(self, run_id: str, params: dict) -> None:
        """Log params; nested dicts are flattened with dotted keys, values stringified and
        truncated to MLflow's 6000-character limit. Re-logging a key with a different value is
        an MLflow error (params are immutable) and raises RegistryError."""
        self.log_batch(run_id, params=params)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int | None = None) -> None:
        """Log metrics; None and NaN values are skipped. Non-numeric values raise TypeError."""
        self.log_batch(run_id, metrics=metrics, step=step)

    def log_batch(
        self,
        run_id: str,
        *,
        params: dict | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        step: int | None = None,
        series: tuple[tuple[int, dict[str, float]], ...] = (),
    ) -> None:
        """Params, metrics (`metrics` at `step`; `series`: more at their own steps, e.g. a back-test's windows) and
        tags, as log_params, log_metrics and set_tags take them, in as few MLflow calls as its batch limits allow:
        one for what a cycle logs at once, in one transaction of the embedded store. Nothing is logged when a
        metric is not a number (TypeError)."""
        from mlflow.entities import Param, RunTag

        ts = int(time.time() * 1000)
        ms = _metric_items(metrics or {}, step, ts) + [m for at, more in series for m in _metric_items(more, at, ts)]
        ps = [Param(k, v) for k, v in flatten_params(params or {}).items()]
        tg = [RunTag(k, v) for k, v in _tag_items(tags).items()]
        what = " and ".join(n for n, items in (("params", ps), ("metrics", ms), ("tags", tg)) if items)
        with self._errors(f"log {what or 'nothing'} to run {run_id}"):
            while ps or ms or tg:
                batch = {"params": ps[:MAX_PARAMS_TAGS_PER_BATCH], "tags": tg[:MAX_PARAMS_TAGS_PER_BATCH]}
                batch["metrics"] = ms[: MAX_METRICS_PER_BATCH - len(batch["params"]) - len(batch["tags"])]
                ps, tg, ms = ps[len(batch["params"]) :], tg[len(batch["tags"]) :], ms[len(batch["metrics"]) :]
                self.client.get().log_batch(run_id, **{k: v for k, v in batch.items() if v})

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove run tag `key` (nothing happens when the run does not have it)."""
        from mlflow.exceptions import MlflowException

        with self._errors(f"delete tag {key!r} on run {run_id}"):
            try:
                self.client.get().delete_tag(run_id, sanitize_key(key))
            except MlflowException as exc:
                if not is_not_found(exc):
                    raise

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Set run tags (keys sanitised, values cut at MLflow's 8000-character limit)."""
        self.log_batch(run_id, tags=tags)

    def log_datasets(self, run_id: str, inputs: list) -> None:
        """Log :class:`~ctpipeline.adapters.mlflow.datasets.DataInput` items as the run's dataset inputs."""
        from ctpipeline.adapters.mlflow.datasets import dataset_input

        if not inputs:
            return
        with self._errors(f"log dataset inputs to run {run_id}"):
            self.client.get().log_inputs(run_id, datasets=[dataset_input(i) for i in inputs])

    # ---- artifacts ----------------------------------------------------------------------------

    def log_dict(self, run_id: str, obj: dict, artifact_file: str) -> None:
        """Log a dict as a JSON artifact, or YAML when ``artifact_file`` ends in .yaml/.yml.
        Values are cleaned with :func:`ctpipeline.core.jsonable.to_jsonable` (numpy -> Python, sets ->
        sorted lists, dates -> ISO strings, NaN/inf -> null)."""
        plain = to_jsonable(obj)
        if artifact_file.lower().endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
        else:
            text = json.dumps(plain, indent=2, ensure_ascii=False)
        self.log_text(run_id, text, artifact_file)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        with self._errors(f"log artifact {artifact_file!r} to run {run_id}"):
            self.client.get().log_text(run_id, text, artifact_file)

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        """Log `data` as the artifact `artifact_file` (a rendered PNG, for example)."""
        import tempfile
        from pathlib import Path

        with self._errors(f"log artifact {artifact_file!r} to run {run_id}"), tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_file).name
            path.write_bytes(data)
            folder = str(Path(artifact_file).parent)
            self.client.get().log_artifact(run_id, str(path), None if folder == "." else folder)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Log a matplotlib figure (format from the extension, e.g. ``.png``)."""
        with self._errors(f"log figure {artifact_file!r} to run {run_id}"):
            self.client.get().log_figure(run_id, figure, artifact_file)
