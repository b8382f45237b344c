"""What a cycle writes to its MLflow run: config, GX result, drift and trigger, params, metrics, plots and
the decision record; the champion's metric over time on the pipeline's long-lived `monitoring` run."""

from __future__ import annotations

import logging

import pandas as pd

from ctpipeline.adapters.mlflow import ModelRef
from ctpipeline.core.models import DEFAULTS
from ctpipeline.core.policy import Decision
from ctpipeline.core.quality import QualityResult
from ctpipeline.core.report import decision_markdown
from ctpipeline.core.results import Evaluation, Monitoring, Trained
from ctpipeline.steps.context import Pipeline
from ctpipeline.store.landing import Batch
from ctpipeline.store.state import now_iso

log = logging.getLogger(__name__)


def close_stale_runs(p: Pipeline) -> list[str]:
    """Mark KILLED the pipeline's cycle runs left RUNNING by a process that died (SIGKILL, power loss), with a tag
    saying why. Called while holding the training slot: no live cycle of this pipeline can own a RUNNING run."""
    stale = p.tracking.search_run_ids(f"attributes.status = 'RUNNING' and tags.`ctp.pipeline` = '{p.name}'")
    for run_id in stale:
        p.tracking.set_tags(
            run_id,
            {
                "ctp.status": "killed",
                "ctp.killed_reason": f"left RUNNING by a cycle whose process died; closed by the next at {now_iso()}",
            },
        )
        p.tracking.end_run(run_id, "KILLED")
        log.warning("MLflow run %s of %s was left RUNNING by a dead process: marked KILLED", run_id, p.name)
    return stale


def start_run(p: Pipeline, batch: Batch, trigger: str) -> str:
    """Close the runs a dead cycle left RUNNING, then open this cycle's run."""
    close_stale_runs(p)
    return p.tracking.start_run(
        run_name=batch.name,
        tags={
            "ctp.pipeline": p.name,
            "ctp.batch": batch.name,
            "ctp.batch_sha256": batch.sha256[:16],
            "ctp.config_hash": p.cfg.config_hash(),
            "ctp.trigger": trigger,
        },
    )


def log_inputs(p: Pipeline, run_id: str, df: pd.DataFrame, quality: QualityResult) -> None:
    """Config, data facts and the GX result on the run, whatever the outcome. It runs while the cycle's run is being
    opened (``CycleRun.__enter__``), where a failure skips the close in ``__exit__``: so a failure here (a full
    artifact disk, an unreachable server) closes the run FAILED itself before it propagates."""
    try:
        _log_inputs(p, run_id, df, quality)
    except Exception as exc:
        try:
            # the type only: an error message may carry a URI or a path, never worth the risk of a secret in a tag
            p.tracking.set_tags(run_id, {"ctp.status": "failed", "ctp.error": type(exc).__name__})
            p.tracking.end_run(run_id, "FAILED")
        except Exception as close_exc:  # the store itself is down: the next cycle closes the run (close_stale_runs)
            log.warning("could not close MLflow run %s after %s: %s", run_id, type(exc).__name__, close_exc)
        raise


def _log_inputs(p: Pipeline, run_id: str, df: pd.DataFrame, quality: QualityResult) -> None:
    t = p.tracking
    t.log_dict(run_id, p.cfg.to_yaml_dict(), "config/pipeline.yaml")
    t.log_dict(run_id, quality.raw, "quality/gx_result.json")
    t.log_dict(run_id, quality.to_dict(), "quality/summary.json")
    stats = quality.statistics or {}
    t.log_metrics(
        run_id,
        {
            "batch_rows": float(len(df)),
            "quality_success_percent": stats.get("success_percent"),
            "quality_failed_expectations": float(len(quality.failed)),
        },
    )
    t.set_tags(run_id, {"ctp.gate": "passed" if quality.success else "failed"})


def log_monitoring(p: Pipeline, run_id: str, mon: Monitoring, batch_ordinal: int) -> None:
    """Drift report and trigger decision on the cycle's run; the champion's metric on the `monitoring` run."""
    t, m = p.tracking, p.cfg.evaluation.metric
    t.log_dict(run_id, mon.decision.to_dict(), "monitoring/trigger.json")
    tags = {
        "ctp.trigger_fired": ",".join(mon.decision.fired) or "none",
        "ctp.retrain": str(mon.decision.retrain).lower(),
    }
    metrics = {f"champion_on_batch_{m}": mon.champion_metric}
    drift = mon.drift
    if drift is not None:
        t.log_dict(run_id, drift.to_dict(), "monitoring/drift.json")
        if drift.evidently_json:
            t.log_dict(run_id, drift.evidently_json, "monitoring/evidently.json")
        if drift.html:
            t.log_text(run_id, drift.html, "monitoring/drift_report.html")
        metrics["drifted_share"] = drift.drifted_share
        metrics.update({f"drift_{c.column}": c.score for c in drift.columns})
    t.log_batch(run_id, metrics=metrics, tags=tags)
    t.log_metrics(
        t.monitoring_run(),
        {
            f"served_champion_{m}": mon.champion_metric,  # one name, one meaning: the month runs' champion_<m> is the
            # back-test's; this series is the served champion on each whole batch (champion_on_batch_<m> per run)
            "drifted_share": drift.drifted_share if drift else None,
            "retrain": float(mon.decision.retrain),
        },
        step=batch_ordinal,
    )


def log_training(p: Pipeline, run_id: str, trained: Trained, ev: Evaluation, decision: Decision) -> None:
    """Params and metrics (back-test windows as steps, for the MLflow compare view); for the plots see
    `steps.renderers.plots`."""
    cfg, t = p.cfg, p.tracking
    m, bt = ev.metric, ev.backtest
    t.log_batch(  # one call: params, metrics, the back-test windows as steps
        run_id,
        params={
            "model_type": cfg.model.type,
            "model_device": cfg.model.device,
            "model": {**DEFAULTS[cfg.model.type], **cfg.model.params},
            "train_batches": ",".join(trained.train_batches),
            "train_rows": trained.train_rows,
            "window_batches": cfg.training.window_batches,
            "metric": ev.metric,
            "backtest": cfg.backtest.model_dump(),
            "promotion": cfg.promotion.model_dump(),
            "config_hash": cfg.config_hash(),
        },
        metrics={
            f"challenger_{m}": bt.challenger,
            f"champion_{m}": bt.champion,
            f"gain_{m}": bt.gain,
            "gain_ci_low": bt.ci_low,
            "gain_ci_high": bt.ci_high,
            f"baseline_never_retrain_{m}": ev.baselines.get("never_retrain"),
            f"baseline_always_promote_{m}": ev.baselines.get("always_promote"),
            "eval_rows": float(ev.rows),
            "train_rows": float(trained.train_rows),
            "fit_seconds": trained.fit_seconds,
            "latency_ms_per_1k": ev.latency_ms_per_1k,
            "model_mb": ev.model_mb,
        },
        series=tuple(
            (w.index, {f"backtest_challenger_{m}": w.challenger, f"backtest_champion_{m}": w.champion})
            for w in bt.windows
        ),
    )


def plots_args(p: Pipeline, ev: Evaluation, decision: Decision) -> tuple:
    """What `steps.renderers.plots` draws the challenger-vs-champion, back-test and slice plots from."""
    label = f"champion v{ev.champion_version}" if ev.champion_version else "champion"
    return (
        p.cfg.target.task,
        ev.metric,
        ev.y,
        ev.challenger_scores,
        ev.champion_scores,
        label,
        ev.backtest,
        tuple(decision.slices or ()),
    )


def log_report_files(p: Pipeline, run_id: str, files) -> None:
    """A report's files (`steps.renderers`) as artifacts of the run."""
    for name, content in files.items():
        if isinstance(content, bytes):
            p.tracking.log_bytes(run_id, content, name)
        else:
            p.tracking.log_text(run_id, content, name)


def log_decision(p: Pipeline, run_id: str, ref: ModelRef, record: dict) -> None:
    """The decision record on the run (JSON + markdown) and its outcome on the model version (which was registered
    with its verdict and gates, `steps.promote.register_challenger`)."""
    text = decision_markdown(record)
    p.tracking.log_dict(run_id, record, "decision/decision.json")
    p.tracking.log_text(run_id, text, "decision/decision.md")
    p.registry.set_version_tags(ref, {"ctp.outcome": record["outcome"]})  # the gates' tags came with the version
    p.tracking.set_tags(run_id, {"ctp.outcome": record["outcome"], "mlflow.note.content": text[:5000]})


SUMMARY_KEYS = (
    "batch", "status", "verdict", "gate", "rows", "metric", "challenger_metric", "champion_metric", "gain",
    "ci_low", "ci_high", "served_metric", "never_retrain_metric", "always_promote_metric", "challenger_version",
    "champion_version_before", "champion_version_after", "train_rows", "train_batches", "fired", "drifted_share",
    "failed_expectations", "reasons", "seconds",
)  # fmt: skip


def log_summary(p: Pipeline, run_id: str, result) -> None:
    """`summary.json` at the top of the run: the cycle in one flat document (what *Compare* puts side by side)."""
    doc = {k: v for k, v in result.to_dict().items() if k in SUMMARY_KEYS}
    p.tracking.log_dict(run_id, {"pipeline": p.name, "config_hash": p.cfg.config_hash(), **doc}, "summary.json")


def log_dataset(p: Pipeline, run_id: str, frames: list[pd.DataFrame], source, name: str, context: str) -> None:
    """The data a run used as an MLflow dataset input (source, digest, schema, rows; context training/evaluation)."""
    from ctpipeline.adapters.mlflow import DataInput

    if frames:
        df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        p.tracking.log_datasets(run_id, [DataInput(df, str(source), name, context, p.cfg.target.column)])
