"""The steps of one continuous-training cycle, as plain functions on a `Pipeline` context.

Flows (in `flows/`) wire these into Prefect tasks; nothing here imports Prefect, so every step
can be called and tested on its own.
"""

from __future__ import annotations

import logging
import math
import os
import time
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ctpipeline.core import data as data_mod
from ctpipeline.config.schema import PipelineConfig, load_config
from ctpipeline.errors import DataError
from ctpipeline.core.policy import Decision, decide
from ctpipeline.store.state import BatchLog, StatePaths, now_iso, resolve_state_dir

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """Everything a step needs: the validated config, the state folder, the registry."""

    cfg: PipelineConfig
    paths: StatePaths
    config_file: Path

    @classmethod
    def open(cls, config_path: str | Path, state_dir: str | Path | None = None) -> Pipeline:
        from ctpipeline.core.models import check_model_params

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
    def ledger_path(self) -> Path:
        return self.paths.pipeline_dir(self.name) / "ledger.jsonl"

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
        from ctpipeline.adapters.mlflow import sqlite_tracking_uri

        if self.embedded:
            return sqlite_tracking_uri(self.paths.mlflow_db)
        return self.cfg.mlflow.tracking_uri or os.environ["MLFLOW_TRACKING_URI"]

    @cached_property
    def registry(self):
        from ctpipeline.adapters.mlflow import ModelRegistry, file_artifact_location

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
    verdict: str | None = None
    fired: list[str] = field(default_factory=list)   # which retraining triggers fired
    trigger_reasons: list[str] = field(default_factory=list)
    drifted_share: float | None = None
    drifted_columns: list[str] = field(default_factory=list)
    gain: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    served_metric: float | None = None        # the champion of the month, scored on the whole month
    never_retrain_metric: float | None = None  # baseline: the first model forever
    always_promote_metric: float | None = None  # baseline: the newest challenger, always promoted
    record: dict | None = None                 # the decision record

    def fill_monitoring(self, mon: Monitoring) -> None:
        self.fired = list(mon.decision.fired)
        self.trigger_reasons = list(mon.decision.reasons)
        self.drifted_share = mon.drift.drifted_share if mon.drift else None
        self.drifted_columns = mon.drift.drifted_columns() if mon.drift else []
        self.served_metric = mon.champion_metric
        if not mon.decision.retrain:
            self.status = "monitored"
            self.reasons = ["no retraining: " + "; ".join(mon.decision.reasons)]

    def fill_evaluation(self, trained: Trained, ev: Evaluation) -> None:
        bt = ev.backtest
        self.train_rows, self.train_batches = trained.train_rows, trained.train_batches
        self.challenger_metric, self.champion_metric = bt.challenger, bt.champion
        self.gain, self.ci_low, self.ci_high = bt.gain, bt.ci_low, bt.ci_high
        self.never_retrain_metric = ev.baselines.get("never_retrain")
        self.always_promote_metric = ev.baselines.get("always_promote")

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
    from ctpipeline.adapters import gx as quality

    df = data_mod.read_batch(batch)
    t0 = time.perf_counter()
    result = quality.validate(df, p.cfg.suite_path)
    log.info("batch %s: %s (%.1fs)", batch.name, result.summary().splitlines()[0], time.perf_counter() - t0)
    return df, result


def quarantine(p: Pipeline, batch: data_mod.Batch, result=None, run_id: str | None = None,
               error: str | None = None) -> Path:
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
    report = ({"summary": result.to_dict(), "gx_result": result.raw} if result is not None
              else {"summary": {"success": False, "error": error}})
    (qdir / f"{stem}.gx.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    target = qdir / f"{stem}.parquet"
    try:
        os.replace(batch.path, target)
    except OSError:  # landing folder on another filesystem: copy, then remove
        import shutil

        shutil.move(str(batch.path), target)
    p.batch_log.append({"batch": batch.name, "sha256": batch.sha256, "status": "rejected", "run_id": run_id,
                        "quarantined_to": str(target),
                        "failed": [f.describe() for f in result.failed] if result is not None else [error]})
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
    train_end: str | None = None


def labelled(p: Pipeline, df: pd.DataFrame) -> pd.DataFrame:
    return df[df[p.cfg.target.column].notna()].reset_index(drop=True)


def train_challenger(p: Pipeline, batch: data_mod.Batch, batch_df: pd.DataFrame) -> Trained | str:
    """Fit the configured model on the training window, which ends `backtest.gap` before the first
    back-test window of the new batch. Returns the reason instead when there is nothing to train or
    nothing to judge the challenger on."""
    from ctpipeline.core.backtest import assign_windows
    from ctpipeline.core.models import build_model

    frame, names = load_window(p, batch)
    if len(frame) == 0:
        return "not enough accepted data before this batch to train a challenger yet"
    tcol = p.cfg.data.time_column
    evald = labelled(p, batch_df)
    if len(evald) == 0:
        return f"batch {batch.name} has no labelled rows: no challenger can be judged on it"
    _, edges = assign_windows(evald[tcol], p.cfg.backtest)
    first = max(edges[0][0], pd.to_datetime(evald[tcol], utc=True).min())  # fixed windows may reach before it
    frame = frame[pd.to_datetime(frame[tcol], utc=True) < first - pd.Timedelta(p.cfg.backtest.gap)]
    X, y = data_mod.make_xy(frame, p.cfg)
    if len(X) < p.cfg.training.min_train_rows:
        return (f"only {len(X)} labelled rows in training window {','.join(names)} "
                f"(< training.min_train_rows {p.cfg.training.min_train_rows}): accumulating")
    if p.cfg.target.task == "classification" and y.nunique() < 2:
        return f"training window {','.join(names)} holds a single class: accumulating"
    model = build_model(p.cfg)
    t0 = time.perf_counter()
    model.fit(X, y)
    secs = time.perf_counter() - t0
    log.info("trained %s on %d rows from %s in %.1fs", p.cfg.model.type, len(X), names, secs)
    end = str(pd.to_datetime(frame[tcol], utc=True).max()) if len(frame) else None
    return Trained(model, len(X), names, secs, X.head(5), end)


@dataclass
class Evaluation:
    """Challenger, champion and baselines scored on the new batch, plus the back-test built on it."""

    metric: str
    champion_ref: Any | None
    rows: int
    backtest: Any                        # backtest.Backtest
    slices: list = field(default_factory=list)
    champion_error: str | None = None
    latency_ms_per_1k: float | None = None
    model_mb: float | None = None
    baselines: dict[str, float | None] = field(default_factory=dict)   # never_retrain / always_promote
    y: Any = None                        # labels and scores, kept for the plots
    challenger_scores: Any = None
    champion_scores: Any = None


def _latency_ms_per_1k(model, X: pd.DataFrame, task: str) -> float:
    from ctpipeline.core.evaluation import predict_for_metric

    sample = X.sample(n=1000, replace=len(X) < 1000, random_state=0)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        predict_for_metric(model, sample, task)
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def _model_mb(model) -> float:
    import pickle

    return len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6


def _score_ref(p: Pipeline, ref, X, y) -> tuple[Any, float | None, str | None]:
    from ctpipeline.core.evaluation import metric_value, predict_for_metric

    try:
        scores = predict_for_metric(p.registry.load_model(ref), X, p.cfg.target.task)
        return scores, metric_value(p.cfg.evaluation.metric, y, scores), None
    except Exception as exc:  # reported and handled by the policy, never fatal here
        return None, None, f"v{ref.version} could not be loaded or scored: {type(exc).__name__}: {exc}"


def evaluate(p: Pipeline, model, eval_df: pd.DataFrame, champion_ref=None, previous_challenger=None,
             champion_scores=None) -> Evaluation:
    """Score the challenger and the champion (from the registry) on the same back-test windows of the
    new batch; also score the two reference strategies (first model forever, newest model always)."""
    from ctpipeline.core.backtest import run_backtest, slice_scores
    from ctpipeline.core.evaluation import metric_value, predict_for_metric

    cfg = p.cfg
    df = labelled(p, eval_df)
    X, y = data_mod.make_xy(df, cfg)
    metric, task, higher = cfg.evaluation.metric, cfg.target.task, cfg.evaluation.higher_is_better
    chal_scores = predict_for_metric(model, X, task)
    champ_scores, champ, err = (None, None, None)
    if champion_ref is not None and champion_scores is not None:  # already scored by the monitoring step
        champ_scores, champ = champion_scores, metric_value(metric, y, champion_scores)
    elif champion_ref is not None:
        champ_scores, champ, err = _score_ref(p, champion_ref, X, y)
        if err:
            err = "champion " + err
            log.error(err)
    bt = run_backtest(y.to_numpy(), chal_scores, champ_scores, df[cfg.data.time_column], metric, higher, cfg.backtest,
                      timezone=cfg.data.timezone)
    slices = []
    for sc in cfg.promotion.slices:
        if sc.column not in df.columns:
            log.warning("slice column %r is not in the batch; slice check skipped", sc.column)
            continue
        slices += slice_scores(df[sc.column], y.to_numpy(), chal_scores, champ_scores, metric, higher, sc)
    baselines: dict[str, float | None] = {}
    first = p.registry.get_version("1")
    if first is not None:
        baselines["never_retrain"] = champ if (champion_ref and champion_ref.version == "1") else \
            _score_ref(p, first, X, y)[1]
    if previous_challenger is not None:
        baselines["always_promote"] = champ if (champion_ref and champion_ref.version == previous_challenger.version) \
            else _score_ref(p, previous_challenger, X, y)[1]
    return Evaluation(metric, champion_ref, len(X), bt, slices, err,
                      _latency_ms_per_1k(model, X, task), _model_mb(model), baselines,
                      y.to_numpy(), chal_scores, champ_scores)


@dataclass
class Monitoring:
    """Drift of the new batch against the champion's training window, the champion's metric on the
    batch, and whether that triggers retraining."""

    reference_batches: list[str]
    drift: Any | None                    # drift.DriftResult, None without a reference
    champion_metric: float | None
    champion_reference_metric: float | None
    champion_scores: Any | None
    decision: Any                        # triggers.TriggerDecision
    champion_error: str | None = None


def _since_last_training(p: Pipeline) -> tuple[int, datetime | None]:
    rows, last = 0, None
    for r in reversed(p.batch_log.records()):
        if r.get("status") != "accepted":
            continue
        if r.get("challenger_version"):
            last = datetime.fromisoformat(r["at"])
            break
        rows += int(r.get("rows") or 0)
    return rows, last


def monitor(p: Pipeline, batch: data_mod.Batch, df: pd.DataFrame, champion_ref, trigger: str) -> Monitoring:
    from ctpipeline.adapters.evidently import detect_drift
    from ctpipeline.core.triggers import Signals, should_retrain

    cfg = p.cfg
    tags = p.registry.get_version_tags(champion_ref) if champion_ref else {}
    ref_batches = [b for b in tags.get("ctp.train_batches", "").split(",") if b]
    frames = [pd.read_parquet(p.landing_dir / f"{b}.parquet") for b in ref_batches
              if (p.landing_dir / f"{b}.parquet").exists()]
    drift = None
    if frames:
        cols = cfg.drift.columns
        numeric = [c for c in cfg.features.numeric if cols is None or c in cols]
        categorical = [c for c in cfg.features.categorical if cols is None or c in cols]
        try:
            drift = detect_drift(pd.concat(frames, ignore_index=True), df, numeric, categorical, cfg.drift,
                                 seed=cfg.training.seed) if (numeric or categorical) else None
        except DataError as exc:  # nothing comparable: monitoring goes on without a drift signal
            log.warning("drift not measured: %s", exc)
        if drift is not None:
                log.info("drift vs champion's window %s: %s", ",".join(ref_batches), drift.summary().splitlines()[0])
    champ_metric = champ_scores = err = None
    lab = labelled(p, df)
    if champion_ref is not None and len(lab):
        champ_scores, champ_metric, err = _score_ref(p, champion_ref, *data_mod.make_xy(lab, cfg))
        if err:  # reported; the policy decides what a broken champion means
            err = "champion " + err
            log.error(err)
    ref_metric = tags.get(f"ctp.{cfg.evaluation.metric}")
    rows, last = _since_last_training(p)
    signals = Signals(
        drifted_share=drift.drifted_share if drift else None,
        drifted_columns=tuple(drift.drifted_columns()) if drift else (),
        champion_metric=champ_metric, champion_reference_metric=float(ref_metric) if ref_metric else None,
        higher_is_better=cfg.evaluation.higher_is_better, rows_since_training=rows + len(df),
        manual=trigger == "manual", webhook=trigger == "webhook", scheduled=trigger == "schedule",
        no_champion=champion_ref is None)
    decision = should_retrain(signals, cfg.triggers, last, datetime.now(timezone.utc))
    return Monitoring(ref_batches, drift, champ_metric, signals.champion_reference_metric, champ_scores, decision,
                      err)


def log_monitoring(p: Pipeline, run_id: str, mon: Monitoring, batch_ordinal: int) -> None:
    """Drift report and trigger decision on the cycle's run; the champion's metric over time on the
    pipeline's long-lived `monitoring` run (one step per batch, so MLflow draws the curve)."""
    reg = p.registry
    m = p.cfg.evaluation.metric
    reg.log_dict(run_id, mon.decision.to_dict(), "monitoring/trigger.json")
    reg.set_tags(run_id, {"ctp.trigger_fired": ",".join(mon.decision.fired) or "none",
                          "ctp.retrain": str(mon.decision.retrain).lower()})
    metrics = {f"champion_on_batch_{m}": mon.champion_metric}
    if mon.drift is not None:
        reg.log_dict(run_id, mon.drift.to_dict(), "monitoring/drift.json")
        if mon.drift.evidently_json:
            reg.log_dict(run_id, mon.drift.evidently_json, "monitoring/evidently.json")
        if mon.drift.html:
            reg.log_text(run_id, mon.drift.html, "monitoring/drift_report.html")
        metrics["drifted_share"] = mon.drift.drifted_share
        metrics.update({f"drift_{c.column}": c.score for c in mon.drift.columns})
    reg.log_metrics(run_id, metrics)
    mrun = reg.monitoring_run()
    reg.log_metrics(mrun, {f"champion_{m}": mon.champion_metric,
                           "drifted_share": mon.drift.drifted_share if mon.drift else None,
                           "retrain": float(mon.decision.retrain)}, step=batch_ordinal)


def make_decision(p: Pipeline, ev: Evaluation) -> Decision:
    from ctpipeline.core.policy import Evidence

    bt = ev.backtest
    evidence = Evidence(
        challenger=bt.challenger, champion=bt.champion if ev.champion_ref else None,
        champion_version=ev.champion_ref.version if ev.champion_ref else None, champion_error=ev.champion_error,
        ci_low=bt.ci_low, ci_high=bt.ci_high, confidence=bt.confidence, slices=tuple(ev.slices),
        latency_ms_per_1k=ev.latency_ms_per_1k, model_mb=ev.model_mb)
    return decide(evidence, p.cfg.promotion, ev.metric, p.cfg.evaluation.higher_is_better)


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


def log_training(p: Pipeline, run_id: str, trained: Trained, ev: Evaluation) -> None:
    """Params, metrics (back-test windows as steps, for the MLflow compare view) and plots."""
    from ctpipeline.core.models import DEFAULTS

    reg = p.registry
    reg.log_params(run_id, {"model_type": p.cfg.model.type, "model_device": p.cfg.model.device,
                            "model": {**DEFAULTS[p.cfg.model.type], **p.cfg.model.params},
                            "train_batches": ",".join(trained.train_batches), "train_rows": trained.train_rows,
                            "window_batches": p.cfg.training.window_batches, "metric": ev.metric,
                            "backtest": p.cfg.backtest.model_dump(), "promotion": p.cfg.promotion.model_dump(),
                            "config_hash": p.cfg.config_hash()})
    m, bt = ev.metric, ev.backtest
    reg.log_metrics(run_id, {f"challenger_{m}": bt.challenger, f"champion_{m}": bt.champion,
                             f"gain_{m}": bt.gain, "gain_ci_low": bt.ci_low, "gain_ci_high": bt.ci_high,
                             f"baseline_never_retrain_{m}": ev.baselines.get("never_retrain"),
                             f"baseline_always_promote_{m}": ev.baselines.get("always_promote"),
                             "eval_rows": float(ev.rows), "train_rows": float(trained.train_rows),
                             "fit_seconds": trained.fit_seconds, "latency_ms_per_1k": ev.latency_ms_per_1k,
                             "model_mb": ev.model_mb})
    for w in bt.windows:
        reg.log_metrics(run_id, {f"backtest_challenger_{m}": w.challenger, f"backtest_champion_{m}": w.champion},
                        step=w.index)
    _log_plots(p, run_id, ev)


def _log_plots(p: Pipeline, run_id: str, ev: Evaluation) -> None:
    import matplotlib.pyplot as plt

    from ctpipeline import plots

    label = f"champion v{ev.champion_ref.version}" if ev.champion_ref else "champion"
    figs = {"plots/challenger_vs_champion.png": plots.comparison_plot(
        p.cfg.target.task, ev.metric, ev.y, ev.challenger_scores, ev.champion_scores, ("challenger", label)),
        "plots/backtest_windows.png": plots.backtest_plot(ev.backtest, label)}
    if ev.slices:
        figs["plots/slices.png"] = plots.slices_plot(ev.slices, ev.metric)
    for name, fig in figs.items():
        p.registry.log_figure(run_id, fig, name)
        plt.close(fig)


def register_challenger(p: Pipeline, run_id: str, trained: Trained, ev: Evaluation, decision: Decision,
                        batch: data_mod.Batch):
    """Log the model, register it as a new version and point the `challenger` alias at it."""
    from ctpipeline.core.models import requirements_for
    from ctpipeline.adapters.mlflow import installed_requirements

    reg = p.registry
    bt = ev.backtest
    desc = (f"{p.cfg.model.type} trained on {', '.join(trained.train_batches)} ({trained.train_rows} rows); "
            f"back-tested on {len(bt.windows)} windows of {batch.name}: {ev.metric}={bt.challenger:.4f}"
            + (f" vs champion v{ev.champion_ref.version} {bt.champion:.4f}" if ev.champion_ref and bt.champion
               is not None else "") + f". Verdict: {decision.explain()}")
    expected = ev.champion_ref.version if ev.champion_ref else ""
    ref = reg.log_and_register_model(
        run_id, trained.model, trained.input_example, installed_requirements(requirements_for(p.cfg)),
        description=desc[:5000],
        tags={"ctp.batch": batch.name, "ctp.train_batches": ",".join(trained.train_batches),
              "ctp.verdict": decision.verdict, f"ctp.{ev.metric}": f"{bt.challenger:.4f}",
              "ctp.gain_ci": f"[{bt.ci_low}, {bt.ci_high}]" if bt.ci_low is not None else "n/a",
              "ctp.expected_champion": expected,
              "ctp.approval": "pending" if decision.verdict == "awaiting-approval" else "n/a",
              "ctp.run_id": run_id})
    reg.set_alias("challenger", ref)
    return ref


def promote(p: Pipeline, ref, expected_champion: str | None, *, reason: str, trigger: str,
            run_id: str | None, action: str = "promote") -> bool:
    """Move `champion` to `ref` only if it still points where it did at evaluation time (compare-and-swap);
    keep the champion it replaces under alias `previous`; write a ledger row."""
    from ctpipeline.store.ledger import Ledger
    from ctpipeline.adapters.mlflow.registry import ModelRef

    reg = p.registry
    ok = reg.compare_and_swap_alias("champion", ref, expected_champion)
    if not ok:
        now = reg.champion()
        log.warning("champion moved during evaluation (expected v%s, now v%s); v%s not promoted",
                    expected_champion, now.version if now else None, ref.version)
        return False
    if expected_champion:
        reg.set_alias("previous", ModelRef(p.name, expected_champion, None))
    Ledger(p.ledger_path).append(action=action, from_version=expected_champion, to_version=ref.version,
                                 reason=reason, trigger=trigger, run_id=run_id)
    reg.set_version_tags(ref, {"ctp.promoted_at": now_iso()})
    log.info("%s: %s v%s is champion (was %s)", action, p.name, ref.version, expected_champion or "none")
    return True


def decision_record(p: Pipeline, batch: data_mod.Batch, trained: Trained, ev: Evaluation, decision: Decision,
                    ref, res: CycleResult, trigger: str) -> dict[str, Any]:
    """Everything needed to understand (and audit) one promotion decision, JSON-serialisable."""
    return {
        "pipeline": p.name, "batch": batch.name, "batch_sha256": batch.sha256, "trigger": trigger,
        "run_id": res.run_id, "config_hash": p.cfg.config_hash(), "decided_at": now_iso(),
        "champion_version": ev.champion_ref.version if ev.champion_ref else None,
        "challenger_version": ref.version, "outcome": res.status, "verdict": decision.verdict,
        "reasons": list(res.reasons),
        "data": {"train_batches": trained.train_batches, "train_rows": trained.train_rows,
                 "train_end": trained.train_end, "backtest_rows": ev.backtest.rows,
                 "backtest_windows": [{"index": w.index, "start": w.start, "end": w.end, "rows": w.rows}
                                      for w in ev.backtest.windows]},
        "backtest": ev.backtest.to_dict(),
        "slices": [s.to_dict() for s in ev.slices],
        "guards": {"latency_ms_per_1k": ev.latency_ms_per_1k, "model_mb": ev.model_mb},
        "gates": [asdict(g) for g in decision.gates],
        "baselines": ev.baselines,
        "monitoring": {"fired": res.fired, "trigger_reasons": res.trigger_reasons,
                       "drifted_share": res.drifted_share, "drifted_columns": res.drifted_columns},
        "policy": {"promotion": p.cfg.promotion.model_dump(mode="json"),
                   "backtest": p.cfg.backtest.model_dump(mode="json"), "metric": ev.metric,
                   "higher_is_better": p.cfg.evaluation.higher_is_better},
    }


def log_decision(p: Pipeline, run_id: str, ref, record: dict[str, Any]) -> None:
    """The decision record on the run (JSON + markdown) and its gist on the model version."""
    from ctpipeline.core.report import decision_markdown

    reg = p.registry
    reg.log_dict(run_id, record, "decision/decision.json")
    reg.log_text(run_id, decision_markdown(record), "decision/decision.md")
    gates = {f"ctp.gate.{g['name']}": ("pass" if g["passed"] else "FAIL") for g in record["gates"]}
    reg.set_version_tags(ref, {"ctp.outcome": record["outcome"], **gates})
    reg.set_tags(run_id, {"ctp.outcome": record["outcome"], "mlflow.note.content": decision_markdown(record)[:5000]})


def record_accepted(p: Pipeline, batch: data_mod.Batch, result: CycleResult) -> None:
    p.batch_log.append({"batch": batch.name, "sha256": batch.sha256, "status": "accepted", "run_id": result.run_id,
                        "rows": result.rows, "outcome": result.status,
                        "challenger_version": result.challenger_version,
                        "champion_version": result.champion_version_after})


def quality_failure_message(batch: data_mod.Batch, result, target: Path) -> str:
    lines = [f"batch {batch.name} rejected by the quality gate and moved to {target}:"]
    lines += [f"  - {f.describe()}" for f in result.failed]
    return "\n".join(lines)


# --------------------------------------------------------------------------- human actions


def rollback(p: Pipeline, to_version: str | None = None, reason: str = "manual rollback") -> tuple[str, str]:
    """Point `champion` back at the previous champion (or `to_version`). Returns (from, to)."""
    from ctpipeline.errors import RegistryError

    reg = p.registry
    current = reg.champion()
    if current is None:
        raise RegistryError(f"{p.name} has no champion: nothing to roll back")
    if to_version is None:
        prev = reg.get_alias("previous")
        if prev is None:
            raise RegistryError(f"{p.name} has no 'previous' alias: pass --to-version N")
        to_version = prev.version
    target = reg.get_version(str(to_version))
    if target is None:
        raise RegistryError(f"{p.name} has no version {to_version}")
    if target.version == current.version:
        raise RegistryError(f"v{current.version} is already the champion")
    if not promote(p, target, current.version, reason=reason, trigger="rollback", run_id=None, action="rollback"):
        raise RegistryError("the champion changed while rolling back; run the command again")
    return current.version, target.version


def pending_approval(p: Pipeline):
    """The challenger waiting for approval, with the champion it was evaluated against."""
    from ctpipeline.errors import RegistryError

    ref = p.registry.get_alias("challenger")
    tags = p.registry.get_version_tags(ref) if ref else {}
    if ref is None or tags.get("ctp.approval") != "pending":
        raise RegistryError(f"{p.name} has no challenger awaiting approval")
    return ref, (tags.get("ctp.expected_champion") or None), tags


def approve(p: Pipeline, reason: str = "approved by hand") -> str:
    from ctpipeline.errors import RegistryError

    ref, expected, tags = pending_approval(p)
    if not promote(p, ref, expected, reason=reason, trigger="approval", run_id=tags.get("ctp.run_id"),
                   action="approve"):
        now = p.registry.champion()
        raise RegistryError(f"the champion moved since v{ref.version} was evaluated (against "
                            f"v{expected or 'none'}, now v{now.version if now else 'none'}): not promoted; "
                            "run a new cycle to re-evaluate")
    p.registry.set_version_tags(ref, {"ctp.approval": "approved"})
    return ref.version


def reject(p: Pipeline, reason: str = "rejected by hand") -> str:
    ref, _, _ = pending_approval(p)
    p.registry.set_version_tags(ref, {"ctp.approval": "rejected", "ctp.approval_reason": reason[:500]})
    return ref.version
