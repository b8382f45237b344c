"""The steps of one continuous-training cycle, as plain functions on a `Pipeline` context.

Flows (in `flows/`) wire these into Prefect tasks; nothing here imports Prefect, so every step
can be called and tested on its own.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ctpipeline import data as data_mod
from ctpipeline.config import PipelineConfig, load_config
from ctpipeline.policy import Decision, decide
from ctpipeline.state import BatchLog, StatePaths, resolve_state_dir

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """Everything a step needs: the validated config, the state folder, the registry."""

    cfg: PipelineConfig
    paths: StatePaths
    config_file: Path

    @classmethod
    def open(cls, config_path: str | Path, state_dir: str | Path | None = None) -> Pipeline:
        from ctpipeline.models import check_model_params

        cfg = load_config(config_path)
        check_model_params(cfg, str(config_path))
        return cls(cfg, StatePaths(resolve_state_dir(state_dir)), Path(config_path).resolve())

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def landing_dir(self) -> Path:
        if self.cfg.data.landing_dir:
            return self.cfg.resolve(self.cfg.data.landing_dir)
        return self.paths.landing(self.name)

    @property
    def quarantine_dir(self) -> Path:
        return self.paths.quarantine(self.name)

    @property
    def batch_log(self) -> BatchLog:
        return BatchLog(self.paths.pipeline_dir(self.name) / "batches.jsonl")

    @property
    def embedded(self) -> bool:
        """True when MLflow runs on the SQLite store in the state folder (no tracking server configured)."""
        return not (self.cfg.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))

    @property
    def tracking_uri(self) -> str:
        """`mlflow.tracking_uri` from the YAML, else $MLFLOW_TRACKING_URI, else SQLite in the state folder."""
        from ctpipeline.registry import sqlite_tracking_uri

        if self.embedded:
            return sqlite_tracking_uri(self.paths.mlflow_db)
        return self.cfg.mlflow.tracking_uri or os.environ["MLFLOW_TRACKING_URI"]

    @cached_property
    def registry(self):
        from ctpipeline.registry import ModelRegistry, file_artifact_location

        artifact_location = None
        if self.embedded:
            self.paths.root.mkdir(parents=True, exist_ok=True)
            artifact_location = file_artifact_location(self.paths.artifacts / self.cfg.experiment_name)
        reg = ModelRegistry(self.tracking_uri, self.name, self.cfg.experiment_name, artifact_location)
        reg.ensure_experiment()
        return reg


@dataclass
class CycleResult:
    """What one cycle did: the row of the replay table and the flow's return value."""

    batch: str | None
    status: str                          # no-batch | quarantined | accumulating | promoted | kept-champion | registered
    rows: int = 0
    gate: str = "-"                      # passed | failed | -
    train_rows: int = 0
    train_batches: list[str] = field(default_factory=list)
    metric: str = ""
    challenger_metric: float | None = None
    champion_metric: float | None = None
    challenger_version: str | None = None
    champion_version_before: str | None = None
    champion_version_after: str | None = None
    run_id: str | None = None
    reasons: list[str] = field(default_factory=list)
    failed_expectations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- steps


def next_batch(p: Pipeline) -> data_mod.Batch | None:
    """The oldest landed batch not processed yet (same name and content), or None."""
    done = p.batch_log.processed()
    for b in data_mod.landed_batches(p.landing_dir):
        if (b.name, b.sha256) not in done:
            return b
    return None


def check_quality(p: Pipeline, batch: data_mod.Batch):
    """Read the batch and run the GX suite on it. Returns (frame, QualityResult)."""
    from ctpipeline import quality

    df = data_mod.read_batch(batch)
    t0 = time.perf_counter()
    result = quality.validate(df, p.cfg.suite_path)
    log.info("batch %s: %s (%.1fs)", batch.name, result.summary().splitlines()[0], time.perf_counter() - t0)
    return df, result


def quarantine(p: Pipeline, batch: data_mod.Batch, result, run_id: str | None = None) -> Path:
    """Move a rejected batch out of the landing folder, beside its GX result. Nothing is deleted.

    The GX result is written first, then the file is renamed (atomic on one filesystem), so a
    crash in between leaves the batch in landing, where the next run finds it again.
    """
    import json

    qdir = p.quarantine_dir
    qdir.mkdir(parents=True, exist_ok=True)
    stem = batch.name
    if (qdir / f"{stem}.parquet").exists():
        stem = f"{batch.name}.{batch.sha256[:8]}"
    (qdir / f"{stem}.gx.json").write_text(
        json.dumps({"summary": result.to_dict(), "gx_result": result.raw}, indent=2, default=str), encoding="utf-8")
    target = qdir / f"{stem}.parquet"
    os.replace(batch.path, target)
    p.batch_log.append({"batch": batch.name, "sha256": batch.sha256, "status": "rejected", "run_id": run_id,
                        "quarantined_to": str(target),
                        "failed": [f.describe() for f in result.failed]})
    log.warning("batch %s quarantined to %s", batch.name, target)
    return target


def load_window(p: Pipeline, batch: data_mod.Batch) -> tuple[pd.DataFrame, list[str]]:
    """Training data: the newest `window_batches` accepted batches before this one."""
    before = [b for b in p.batch_log.accepted() if b < batch.name]
    names = before[-p.cfg.training.window_batches:]
    frames = []
    for name in names:
        path = p.landing_dir / f"{name}.parquet"
        if not path.exists():
            log.warning("accepted batch %s is no longer in %s; training without it", name, p.landing_dir)
            continue
        frames.append(pd.read_parquet(path))
    return data_mod.training_frame(frames, p.cfg), names


@dataclass
class Trained:
    model: Any
    train_rows: int
    train_batches: list[str]
    fit_seconds: float
    input_example: pd.DataFrame


def train_challenger(p: Pipeline, batch: data_mod.Batch) -> Trained | None:
    """Fit the configured model on the training window; None if there is not enough data yet."""
    from ctpipeline.models import build_model

    frame, names = load_window(p, batch)
    if len(frame) == 0:
        return None
    X, y = data_mod.make_xy(frame, p.cfg)
    if len(X) < p.cfg.training.min_train_rows:
        log.info("only %d labelled rows in window %s (< %d): accumulating", len(X), names,
                 p.cfg.training.min_train_rows)
        return None
    if p.cfg.target.task == "classification" and y.nunique() < 2:
        log.info("training window %s has a single class: accumulating", names)
        return None
    model = build_model(p.cfg)
    t0 = time.perf_counter()
    model.fit(X, y)
    secs = time.perf_counter() - t0
    log.info("trained %s on %d rows from %s in %.1fs", p.cfg.model.type, len(X), names, secs)
    return Trained(model, len(X), names, secs, X.head(5))


@dataclass
class Evaluation:
    metric: str
    challenger: float
    champion: float | None
    champion_ref: Any | None
    rows: int
    champion_error: str | None = None
    y: Any = None                       # labels and scores, kept for the comparison plot
    challenger_scores: Any = None
    champion_scores: Any = None


def evaluate(p: Pipeline, model, eval_df: pd.DataFrame) -> Evaluation:
    """Score the challenger and the current champion (from the registry) on the same batch."""
    from ctpipeline.evaluation import metric_value, predict_for_metric

    X, y = data_mod.make_xy(eval_df, p.cfg)
    metric, task = p.cfg.evaluation.metric, p.cfg.target.task
    chal_scores = predict_for_metric(model, X, task)
    ref = p.registry.champion()
    champ, champ_scores, err = None, None, None
    if ref is not None:
        try:
            champ_scores = predict_for_metric(p.registry.load_model(ref), X, task)
            champ = metric_value(metric, y, champ_scores)
        except Exception as exc:  # a champion that cannot be loaded or scored is reported, never fatal here
            err = f"champion v{ref.version} could not be scored: {exc}"
            log.error(err)
    return Evaluation(metric, metric_value(metric, y, chal_scores), champ, ref, len(X), err,
                      y.to_numpy(), chal_scores, champ_scores)


def make_decision(p: Pipeline, ev: Evaluation) -> Decision:
    if ev.champion_error:
        return Decision(False, "reject", (ev.champion_error + "; keeping the champion",))
    champ = ev.champion if ev.champion_ref is not None else None
    return decide(ev.challenger, champ, p.cfg.promotion, ev.metric, p.cfg.evaluation.higher_is_better)


def run_tags(p: Pipeline, batch: data_mod.Batch, trigger: str) -> dict[str, str]:
    return {"ctp.pipeline": p.name, "ctp.batch": batch.name, "ctp.batch_sha256": batch.sha256[:16],
            "ctp.config_hash": p.cfg.config_hash(), "ctp.trigger": trigger}


def start_run(p: Pipeline, batch: data_mod.Batch, trigger: str) -> str:
    return p.registry.start_run(run_name=f"{batch.name}", tags=run_tags(p, batch, trigger))


def log_inputs(p: Pipeline, run_id: str, batch: data_mod.Batch, df: pd.DataFrame, result) -> None:
    """Config, data facts and the GX result on the run, whatever the outcome."""
    reg = p.registry
    reg.log_dict(run_id, p.cfg.to_yaml_dict(), "config/pipeline.yaml")
    reg.log_dict(run_id, result.raw, "quality/gx_result.json")
    reg.log_dict(run_id, result.to_dict(), "quality/summary.json")
    stats = result.statistics or {}
    reg.log_metrics(run_id, {"batch_rows": float(len(df)),
                             "quality_success_percent": stats.get("success_percent"),
                             "quality_failed_expectations": float(len(result.failed))})
    reg.set_tags(run_id, {"ctp.gate": "passed" if result.success else "failed"})


def log_training(p: Pipeline, run_id: str, trained: Trained, ev: Evaluation, decision: Decision) -> None:
    from ctpipeline.models import DEFAULTS

    reg = p.registry
    reg.log_params(run_id, {"model_type": p.cfg.model.type, "model_device": p.cfg.model.device,
                            "model": {**DEFAULTS[p.cfg.model.type], **p.cfg.model.params},
                            "train_batches": ",".join(trained.train_batches), "train_rows": trained.train_rows,
                            "window_batches": p.cfg.training.window_batches, "metric": ev.metric,
                            "min_margin": p.cfg.promotion.min_margin, "config_hash": p.cfg.config_hash()})
    m = ev.metric
    reg.log_metrics(run_id, {f"challenger_{m}": ev.challenger, f"champion_{m}": ev.champion,
                             "eval_rows": float(ev.rows), "train_rows": float(trained.train_rows),
                             "fit_seconds": trained.fit_seconds})
    reg.log_dict(run_id, decision.to_dict(), "decision/decision.json")
    if ev.y is not None and len(ev.y):
        import matplotlib.pyplot as plt

        from ctpipeline.plots import comparison_plot

        champ_label = f"champion v{ev.champion_ref.version}" if ev.champion_ref else "champion"
        fig = comparison_plot(p.cfg.target.task, ev.metric, ev.y, ev.challenger_scores, ev.champion_scores,
                              ("challenger", champ_label))
        reg.log_figure(run_id, fig, "plots/challenger_vs_champion.png")
        plt.close(fig)


def register_challenger(p: Pipeline, run_id: str, trained: Trained, ev: Evaluation, decision: Decision,
                        batch: data_mod.Batch):
    """Log the model, register it as a new version and point the `challenger` alias at it."""
    from ctpipeline.models import requirements_for
    from ctpipeline.registry import installed_requirements

    reg = p.registry
    desc = (f"{p.cfg.model.type} trained on {', '.join(trained.train_batches)} ({trained.train_rows} rows); "
            f"evaluated on {batch.name}: {ev.metric}={ev.challenger:.4f}. Verdict: {decision.explain()}")
    ref = reg.log_and_register_model(
        run_id, trained.model, trained.input_example, installed_requirements(requirements_for(p.cfg)),
        description=desc,
        tags={"ctp.batch": batch.name, "ctp.train_batches": ",".join(trained.train_batches),
              "ctp.verdict": decision.verdict, f"ctp.{ev.metric}": f"{ev.challenger:.4f}"})
    reg.set_alias("challenger", ref)
    return ref


def promote(p: Pipeline, ref, expected_champion: str | None) -> bool:
    """Move `champion` to `ref` only if it still points where it did at evaluation time."""
    ok = p.registry.compare_and_swap_alias("champion", ref, expected_champion)
    if ok:
        log.info("promoted %s v%s to champion (was %s)", p.name, ref.version, expected_champion or "none")
    else:
        log.warning("champion moved during evaluation (expected %s); v%s not promoted", expected_champion,
                    ref.version)
    return ok


def record_accepted(p: Pipeline, batch: data_mod.Batch, result: CycleResult) -> None:
    p.batch_log.append({"batch": batch.name, "sha256": batch.sha256, "status": "accepted", "run_id": result.run_id,
                        "rows": result.rows, "outcome": result.status,
                        "challenger_version": result.challenger_version,
                        "champion_version": result.champion_version_after})


def quality_failure_message(batch: data_mod.Batch, result, target: Path) -> str:
    lines = [f"batch {batch.name} rejected by the quality gate and moved to {target}:"]
    lines += [f"  - {f.describe()}" for f in result.failed]
    return "\n".join(lines)
