"""One cycle's lifecycle on its MLflow run, and the stages the flow wires as tasks.

`CycleRun` opens the MLflow run with the batch's inputs, keeps the cycle's frozen `CycleResult` as the stages
replace it, and closes the run: FINISHED with its status tags, or FAILED on a crash; a batch that passed the gate
but turns out unusable (DataError) is quarantined instead of retried forever. Each stage function below takes the
run and what the previous stage returned, calls the pure step, logs it, and returns the step's frozen result.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime

from ctpipeline.core.cycle import CycleResult, quality_failure_message, since_last_training, status_after_decision
from ctpipeline.core.data import labelled, make_xy
from ctpipeline.core.policy import Decision
from ctpipeline.core.record import decision_record
from ctpipeline.core.results import Evaluation, Monitoring, Scored, Skipped, Trained
from ctpipeline.errors import DataError
from ctpipeline.steps import evaluate as evaluate_step
from ctpipeline.steps import ingest, tracking
from ctpipeline.steps import promote as promote_step
from ctpipeline.steps.context import Pipeline
from ctpipeline.steps.ingest import Checked
from ctpipeline.steps.monitor import monitor as monitor_step
from ctpipeline.steps.scoring import score_model
from ctpipeline.steps.train import train_challenger, window_names
from ctpipeline.store.landing import Batch, read_landed
from ctpipeline.store.state import now_iso

log = logging.getLogger(__name__)


def next_batch(p: Pipeline) -> Batch | None:
    return ingest.next_batch(p.landing_dir, p.batch_log)


def gate(p: Pipeline, batch: Batch) -> Checked | CycleResult:
    """The batch validated by the GX suite; an unreadable file is quarantined at once (no MLflow run)."""
    try:
        return ingest.check_quality(batch, p.cfg.suite_path)
    except DataError as exc:
        target = ingest.quarantine(batch, p.quarantine_dir, p.batch_log, error=str(exc))
        return CycleResult(
            batch=batch.name, status="quarantined", gate="failed", reasons=(f"{exc}; moved to {target}",)
        )


class CycleRun:
    """The MLflow run of one cycle and the cycle's result so far (a context manager)."""

    def __init__(self, p: Pipeline, checked: Checked, trigger: str, dry_run: bool = False):
        self.p, self.checked, self.batch, self.trigger = p, checked, checked.batch, trigger
        self.dry_run = dry_run  # up to the decision: nothing registered, the batch neither recorded nor moved
        self.champion = p.registry.champion()  # what the challenger is judged against (compare-and-swap)
        self.previous_challenger = p.registry.get_alias("challenger")
        cv = self.champion.version if self.champion else None
        self.result = CycleResult(
            batch=self.batch.name,
            status="accumulating",
            rows=len(checked.df),
            gate="passed" if checked.passed else "failed",
            metric=p.cfg.evaluation.metric,
            champion_version_before=cv,
            champion_version_after=cv,
        )
        self.run_id = ""
        self._t0 = time.perf_counter()

    def update(self, **changes) -> None:
        self.result = replace(self.result, **changes)

    def __enter__(self) -> CycleRun:
        self.run_id = tracking.start_run(self.p, self.batch, self.trigger)
        if self.dry_run:
            self.p.tracking.set_tags(self.run_id, {"ctp.dry_run": "true"})
        self.update(run_id=self.run_id)
        tracking.log_inputs(self.p, self.run_id, self.checked.df, self.checked.quality)
        tracking.log_dataset(self.p, self.run_id, [self.checked.df], self.batch.path, self.batch.name, "evaluation")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, DataError):  # passed the gate, yet unusable: quarantine rather than retry forever
            self.quarantine(
                None,
                f"batch {self.batch.name} passed the quality gate but cannot be used: {exc}",
                "(an expectation in the suite should catch this)",
            )
        elif exc is not None:
            self.p.tracking.end_run(self.run_id, "FAILED")
            return False
        elif self.result.status != "quarantined" and not self.dry_run:
            self._record_accepted()
        self.update(seconds=round(time.perf_counter() - self._t0, 2))
        tracking.log_summary(self.p, self.run_id, self.result)
        self.p.tracking.set_tags(
            self.run_id, {"ctp.status": self.result.status, "ctp.verdict": self.result.verdict or "-"}
        )
        self.p.tracking.end_run(self.run_id, "FINISHED")
        return True

    def quarantine(self, quality, error: str | None, note: str = "") -> None:
        if self.dry_run:  # say what would happen; the file stays where it is, unrecorded
            failed = tuple(f.describe() for f in quality.failed) if quality is not None else ()
            why = "\n".join(
                [f"dry run: batch {self.batch.name} would be rejected; it stays in {self.batch.path}:"]
                + [f"  - {f}" for f in failed or (error,)]
            )
            self.update(status="quarantined", failed_expectations=failed, reasons=(why,))
            return
        target = ingest.quarantine(
            self.batch, self.p.quarantine_dir, self.p.batch_log, quality=quality, error=error, run_id=self.run_id
        )
        if quality is not None:
            failed = [f.describe() for f in quality.failed]
            self.update(
                status="quarantined",
                failed_expectations=tuple(failed),
                reasons=(quality_failure_message(self.batch.name, failed, str(target)),),
            )
        else:
            self.update(status="quarantined", reasons=(f"{error}; moved to {target} {note}".rstrip(),))

    def _record_accepted(self) -> None:
        r = self.result
        self.p.batch_log.append(
            {
                "batch": r.batch,
                "sha256": self.batch.sha256,
                "status": "accepted",
                "run_id": r.run_id,
                "rows": r.rows,
                "outcome": r.status,
                "challenger_version": r.challenger_version,
                "champion_version": r.champion_version_after,
            }
        )


def reject(run: CycleRun) -> None:
    """The gate failed: quarantine the batch beside its GX result."""
    run.quarantine(run.checked.quality, None)


def _score(run: CycleRun, version: str, X, y) -> Scored:
    return score_model(run.p.cfg, version, lambda: run.p.models.load_model(run.p.registry.get_version(version)), X, y)


def monitor(run: CycleRun) -> Monitoring:
    """Drift against the champion's training window, the champion on the labelled batch, the trigger rules."""
    p, df = run.p, run.checked.df
    tags = p.registry.get_version_tags(run.champion) if run.champion else {}
    ref_batches = tuple(b for b in tags.get("ctp.train_batches", "").split(",") if b)
    reference, _ = read_landed(p.landing_dir, list(ref_batches))
    lab = labelled(df, p.cfg)
    champion = _score(run, run.champion.version, *make_xy(lab, p.cfg)) if run.champion and len(lab) else None
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
        rows_since_training=rows,
        last_training=last,
        trigger=run.trigger,
        now=datetime.now(UTC),
    )
    tracking.log_monitoring(p, run.run_id, mon, sum(r.get("status") == "accepted" for r in records) + 1)
    run.result = run.result.with_monitoring(mon)
    return mon


def train(run: CycleRun) -> Trained | Skipped:
    """The challenger fitted on the newest accepted batches before this one."""
    p = run.p
    names = window_names(p.cfg, p.batch_log.accepted(), run.batch.name)
    frames, missing = read_landed(p.landing_dir, names)
    for name in missing:
        log.warning("accepted batch %s is no longer in %s; training without it", name, p.landing_dir)
    kept = [n for n in names if n not in missing]
    if kept:  # the training window, as an MLflow dataset input
        tracking.log_dataset(
            p, run.run_id, frames, p.landing_dir, "..".join(dict.fromkeys([kept[0], kept[-1]])), "training"
        )
    trained = train_challenger(p.cfg, run.batch.name, run.checked.df, frames, kept)
    if isinstance(trained, Skipped):
        run.update(reasons=(trained.reason,))
    return trained


def backtest(run: CycleRun, trained: Trained, mon: Monitoring) -> Evaluation:
    """Challenger against champion on the batch's windows; the two baselines scored on the same rows."""
    first = run.p.registry.get_version("1")
    baselines = {
        "never_retrain": first.version if first else None,
        "always_promote": run.previous_challenger.version if run.previous_challenger else None,
    }
    champion = mon.champion if run.champion else None
    ev = evaluate_step.evaluate(
        run.p.cfg, trained.model, run.checked.df, champion, lambda v, X, y: _score(run, v, X, y), baselines
    )
    run.result = run.result.with_evaluation(trained, ev)
    return ev


def decide(run: CycleRun, trained: Trained, ev: Evaluation) -> Decision:
    """The promotion rule applied; params, metrics and plots (which show the slices' verdicts) on the run."""
    decision = evaluate_step.make_decision(run.p.cfg, ev)
    run.update(verdict=decision.verdict, reasons=decision.reasons)
    tracking.log_training(run.p, run.run_id, trained, ev, decision)
    return decision


def register(run: CycleRun, trained: Trained, ev: Evaluation, decision: Decision):
    ref = promote_step.register_challenger(run.p, run.run_id, run.batch.name, trained, ev, decision)
    run.update(challenger_version=ref.version)
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


def promote(run: CycleRun, trained: Trained, ev: Evaluation, decision: Decision, ref) -> CycleResult:
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
