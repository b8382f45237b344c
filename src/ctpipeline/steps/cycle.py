"""The stages the flow wires as tasks. Each takes the cycle's run (`steps.lifecycle.CycleRun`) and what the previous
stage returned, calls the pure step, logs it, and returns the step's frozen result.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ctpipeline import faults
from ctpipeline.adapters.mlflow import ModelRef
from ctpipeline.core.cycle import (
    CycleResult,
    since_last_training,
    status_after_decision,
)
from ctpipeline.core.policy import Decision
from ctpipeline.core.record import decision_record
from ctpipeline.core.results import Evaluation, Monitoring, Scored, Skipped, Trained
from ctpipeline.steps import evaluate as evaluate_step
from ctpipeline.steps import promote as promote_step
from ctpipeline.steps import renderers, tracking
from ctpipeline.steps.context import Pipeline
from ctpipeline.steps.lifecycle import CycleRun, gate, is_rerun, next_batch, nothing_to_do, reject
from ctpipeline.steps.monitor import monitor as monitor_step
from ctpipeline.steps.notify import failures_announced
from ctpipeline.steps.scoring import score_model
from ctpipeline.steps.train import train_challenger, window_names
from ctpipeline.store.landing import Batch
from ctpipeline.store.state import now_iso

log = logging.getLogger(__name__)

__all__ = [
    "CycleRun",
    "backtest",
    "decide",
    "dry_run_result",
    "failures_announced",
    "gate",
    "is_rerun",
    "monitor",
    "next_batch",
    "nothing_to_do",
    "promote",
    "register",
    "reject",
    "train",
]


def _score(run: CycleRun, version: str, X, y) -> Scored:
    return score_model(run.p.cfg, version, lambda: run.p.models.load_model(run.p.registry.get_version(version)), X, y)


def _spark():
    from ctpipeline.steps import spark_cycle  # only under engine: spark (pyspark is never imported otherwise)

    return spark_cycle


def monitor(run: CycleRun) -> Monitoring:
    """Drift against the champion's training window, the champion on the labelled batch, the trigger rules."""
    if run.checked.spark is not None:  # engine: spark
        return _spark().monitor(run)
    p, df = run.p, run.checked.df
    tags = p.registry.get_version_tags(run.champion) if run.champion else {}
    ref_batches = tuple(b for b in tags.get("ctp.train_batches", "").split(",") if b)
    reference, _ = run.landed(list(ref_batches))
    lab, X, y = run.labelled_xy()
    champion = _score(run, run.champion.version, X, y) if run.champion and len(lab) else None
    return monitored(run, df, reference, ref_batches, tags, champion)


def monitored(run: CycleRun, df, reference, ref_batches, tags: dict, champion, unseen_rows: int = 0) -> Monitoring:
    """The monitor step on what the engine gathered (`df`: the batch's rows, or the Spark engine's sample of them,
    `unseen_rows` the rest), logged on the run; the drift HTML report handed to the background reports."""
    p = run.p
    ref_metric = tags.get(f"ctp.{p.cfg.evaluation.metric}")
    records = p.batch_log.records()
    rows, last = since_last_training(records)
    mon = monitor_step(
        p.cfg,
        df,
        reference=reference,
        reference_batches=ref_batches,
        champion=champion,
        has_champion=run.champion is not None,
        champion_reference_metric=float(ref_metric) if ref_metric else None,
        rows_since_training=rows + unseen_rows,
        last_training=last,
        trigger=run.trigger,
        now=datetime.now(UTC),
        html=False,  # the HTML report is drawn in the background, from the same samples (steps.reports)
    )
    tracking.log_monitoring(p, run.run_id, mon, sum(r.get("status") == "accepted" for r in records) + 1)
    if mon.drift is not None and p.cfg.drift.report_html:
        # drawn once the challenger is fitted (the fit uses every core), or when the run closes if none is
        run.reports.draw_later("drift-report", renderers.drift_report, mon.drift)
    run.result = run.result.with_monitoring(mon)
    return mon


def train(run: CycleRun) -> Trained | Skipped:
    """The challenger fitted on the newest accepted batches before this one."""
    if run.checked.spark is not None:  # engine: spark
        return _spark().train(run)
    p = run.p
    names = window_names(p.cfg, p.batch_log.accepted(), run.batch.name)
    frames, missing = run.landed(names)
    for name in missing:
        log.warning("accepted batch %s is no longer in %s; training without it", name, p.landing_dir)
    kept = [n for n in names if n not in missing]
    if kept:  # the training window, as an MLflow dataset input
        tracking.log_dataset(
            p, run.run_id, frames, p.landing_dir, "..".join(dict.fromkeys([kept[0], kept[-1]])), "training"
        )
    trained = train_challenger(p.cfg, run.batch.name, run.checked.df, frames, kept, run.labelled_xy()[0])
    run.reports.release()  # the drift report, held while the challenger was fitted
    if isinstance(trained, Skipped):
        run.update(reasons=(trained.reason,))
    faults.checkpoint("trained")
    return trained


def baseline_versions(run: CycleRun) -> dict[str, str | None]:
    """The registry versions of the baselines this cycle scores (`backtest.baselines`): the first model kept
    forever, and the newest challenger always promoted; none when the config says not to score them here."""
    when = run.p.cfg.backtest.baselines
    if when == "never" or (when == "replay" and run.trigger != "replay"):
        return {}
    first = run.p.registry.get_version("1")
    return {
        "never_retrain": first.version if first else None,
        "always_promote": run.previous_challenger.version if run.previous_challenger else None,
    }


def backtest(run: CycleRun, trained: Trained, mon: Monitoring) -> Evaluation:
    """Challenger against champion on the batch's windows; the two baselines scored on the same rows."""
    if run.checked.spark is not None:  # engine: spark
        return _spark().backtest(run, trained, mon)
    baselines = baseline_versions(run)
    champion = mon.champion if run.champion else None
    ev = evaluate_step.evaluate(
        run.p.cfg,
        trained.model,
        run.checked.df,
        champion,
        lambda v, X, y: _score(run, v, X, y),
        baselines,
        labelled_xy=run.labelled_xy(),
    )
    run.result = run.result.with_evaluation(trained, ev)
    faults.checkpoint("backtested")
    return ev


def decide(run: CycleRun, trained: Trained, ev: Evaluation) -> Decision:
    """The promotion rule applied; params, metrics and plots (which show the slices' verdicts) on the run."""
    decision = evaluate_step.make_decision(run.p.cfg, ev)
    run.update(verdict=decision.verdict, reasons=decision.reasons)
    tracking.log_training(run.p, run.run_id, trained, ev, decision)
    run.reports.draw("plots", renderers.plots, *tracking.plots_args(run.p, ev, decision))  # in the background
    return decision


def register(run: CycleRun, trained: Trained, ev: Evaluation, decision: Decision) -> ModelRef:
    ref = promote_step.register_challenger(run.p, run.run_id, run.batch.name, trained, ev, decision)
    run.update(challenger_version=ref.version)
    faults.checkpoint("after-register")
    return ref


def dry_run_result(run: CycleRun, decision: Decision) -> None:
    """A dry run stops at the decision: say what the policy would have done; nothing is registered or moved."""
    would = "promote the challenger" if decision.promote else f"keep v{run.result.champion_version_before or '-'}"
    run.update(
        status="dry-run", reasons=(*run.result.reasons, f"dry run: the policy would {would}; nothing registered")
    )


def shadow_note(decision: Decision, version: str, champion: str | None) -> str:
    would = f"would have promoted v{version}" if decision.promote else f"would have kept v{champion or '-'}"
    return f"shadow mode: the policy {would} ({decision.verdict}); no alias moved, champion v{champion or '-'} stays"


def promote(run: CycleRun, trained: Trained, ev: Evaluation, decision: Decision, ref: ModelRef) -> CycleResult:
    """Move `champion` when the decision says so (compare-and-swap), then write the decision record."""
    shadow = run.p.cfg.promotion.mode == "shadow"  # the policy's verdict is recorded, no alias moves
    moved = (
        decision.promote
        and not shadow
        and promote_step.promote(
            run.p, ref, ev.champion_version, reason=decision.summary, trigger=run.trigger, run_id=run.run_id
        )
    )
    status, extra = status_after_decision(decision.verdict, decision.promote, moved)
    if shadow:
        status, extra = "shadow", (shadow_note(decision, ref.version, ev.champion_version),)
        run.p.registry.set_version_tags(ref, {"ctp.shadow": "would-promote" if decision.promote else "would-keep"})
    run.update(
        status=status,
        reasons=run.result.reasons + extra,
        champion_version_after=ref.version if moved else run.result.champion_version_after,
    )
    record = decision_record(
        run.p.cfg,
        run.result,
        batch_sha256=run.batch.sha256,
        trigger=run.trigger,
        trained=trained,
        ev=ev,
        decision=decision,
        challenger_version=ref.version,
        decided_at=now_iso(),
    )
    run.update(record=record)
    tracking.log_decision(run.p, run.run_id, ref, record)
    return run.result


def warm_up(p: Pipeline, batch: Batch) -> None:
    """What the first cycles of a process pay once, paid now (a command calls it while it waits for the embedded
    Prefect server, which takes seconds to come up): MLflow's embedded database and the experiment created, GX
    run once on a few rows of `batch`, the next one (its context, registry and the suite's column groups) and Evidently
    imported. Changes nothing a cycle decides or records; a failure is only logged (the cycle meets it again and
    reports it)."""
    from ctpipeline.adapters.evidently import import_evidently
    from ctpipeline.adapters.gx import validate
    from ctpipeline.store.landing import read_landed

    try:
        if p.embedded:  # SQLite in the state folder (a tracking server is not waited for here)
            p.stores  # noqa: B018 - opens MLflow (a fresh state folder: its tables) and creates the experiment
        if p.cfg.engine == "pandas":
            frames, _ = read_landed(p.landing_dir, [batch.name])
            if frames:
                validate(frames[0].head(100), p.cfg.suite_path)
        import_evidently()
    except Exception as exc:  # the cycle meets the same problem and reports it properly
        log.debug("warm-up skipped: %s: %s", type(exc).__name__, exc)
