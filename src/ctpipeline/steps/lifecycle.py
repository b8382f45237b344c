"""One cycle's lifecycle on its MLflow run: which batch, its gate, and `CycleRun`.

`CycleRun` opens the MLflow run with the batch's inputs, keeps the cycle's frozen `CycleResult` as the stages
replace it, and closes the run: FINISHED with its status tags, or FAILED on a crash; a batch that passed the gate
but turns out unusable (DataError) is quarantined instead of retried forever.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from ctpipeline import faults
from ctpipeline.core.cycle import (
    CycleResult,
    alert_tags,
    quality_failure_message,
)
from ctpipeline.core.data import labelled, make_xy
from ctpipeline.core.quality import QualityResult
from ctpipeline.errors import CtpError, DataError
from ctpipeline.steps import ingest, tracking
from ctpipeline.steps import promote as promote_step
from ctpipeline.steps.context import Pipeline
from ctpipeline.steps.ingest import Checked
from ctpipeline.steps.notify import NOTIFIED, notify_cycle
from ctpipeline.steps.reports import Reports, logs_after_close
from ctpipeline.store.landing import Batch, landed_batches, read_landed

log = logging.getLogger(__name__)

REPORTS_PENDING = "ctp.reports_pending"  # on a closed run whose reports are still being drawn


def next_batch(p: Pipeline, trigger: str = "manual") -> Batch | None:
    """The oldest landed batch not processed yet. A webhook run without one re-runs the newest accepted batch:
    it retrains on the window before it and back-tests on it, and records a re-run, not a second acceptance."""
    batch = ingest.next_batch(p.landing_dir, p.batch_log)
    if batch is not None or trigger != "webhook":
        return batch
    accepted, done = p.batch_log.accepted(), p.batch_log.processed()
    landed = {b.name: b for b in landed_batches(p.landing_dir) if (b.name, b.sha256) in done}
    latest = next((landed[n] for n in reversed(accepted) if n in landed), None)
    if latest is not None:
        log.info("webhook run: no new batch in %s; re-running the newest accepted batch %s", p.landing_dir, latest.name)
    return latest


def nothing_to_do(p: Pipeline, trigger: str, alert: dict | None = None) -> CycleResult:
    """No batch to work on: ``no-batch``, or for a webhook run (nothing landed or accepted at all) ``no-data``."""
    if trigger != "webhook":
        log.info("no new batch in %s", p.landing_dir)
        return CycleResult(batch=None, status="no-batch")
    why = f"webhook alert ({(alert or {}).get('reason') or 'no reason given'}): no data at all in {p.landing_dir}"
    log.warning("%s: nothing landed or accepted to retrain on (no-data)", why)
    return CycleResult(batch=None, status="no-data", reasons=(why + ": nothing to retrain on",), alert=alert)


def is_rerun(p: Pipeline, batch: Batch) -> bool:
    """Whether `batch` (same name and content) was processed before: a webhook run re-running it."""
    return (batch.name, batch.sha256) in p.batch_log.processed()


def gate(p: Pipeline, batch: Batch) -> Checked | CycleResult:
    """The batch validated by the GX suite; an unreadable file is quarantined at once (no MLflow run), unless it
    was accepted before (a re-run): then it is left where it is."""
    faults.checkpoint("ingest")
    try:
        return ingest.check_quality(batch, p.cfg.suite_path, p.cfg, p.landing_dir, config_file=p.config_file)
    except DataError as exc:
        if is_rerun(p, batch):
            return CycleResult(batch=batch.name, status="gate-failed", gate="failed", reasons=(str(exc),), rerun=True)
        target = ingest.quarantine(batch, p.quarantine_dir, p.batch_log, error=str(exc))
        res = CycleResult(batch=batch.name, status="quarantined", gate="failed", reasons=(f"{exc}; moved to {target}",))
        notify_cycle(p, res)  # no MLflow run to tag: the warning, if any, is in the log
        return res


class CycleRun:
    """The MLflow run of one cycle and the cycle's result so far (a context manager)."""

    def __init__(self, p: Pipeline, checked: Checked, trigger: str, alert: dict | None = None, dry_run: bool = False):
        faults.checkpoint("validated")
        self.p, self.checked, self.batch, self.trigger = p, checked, checked.batch, trigger
        self.dry_run = dry_run  # up to the decision: nothing registered, the batch neither recorded nor moved
        self.rerun = is_rerun(p, checked.batch)
        self.champion = promote_step.current_champion(p)  # judged against (compare-and-swap); ledger reconciled
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
            alert=alert,
            rerun=self.rerun,
        )
        self.run_id = ""
        self._landed: dict = {}  # batch name -> frame (None: not in the landing folder), read once per cycle
        self._xy: tuple | None = None  # labelled_xy
        self.reports = Reports()  # drift HTML and plots, drawn in the background; logged before the run closes,
        # or after it (steps.reports.log_after_close: a command of many cycles), under the REPORTS_PENDING tag
        self._t0 = time.perf_counter()

    def update(self, **changes) -> None:
        self.result = replace(self.result, **changes)

    def landed(self, names: list[str]) -> tuple[list, list[str]]:
        """`store.landing.read_landed` with each batch read once per cycle: the drift reference (the champion's
        window) and the training window are often the same batches. The frames are shared: nothing modifies them."""
        todo = [n for n in dict.fromkeys(names) if n not in self._landed]
        frames, missing = read_landed(self.p.landing_dir, todo)
        read = iter(frames)
        self._landed.update({n: None if n in missing else next(read) for n in todo})
        return [self._landed[n] for n in names if self._landed[n] is not None], [
            n for n in names if self._landed[n] is None
        ]

    def labelled_xy(self) -> tuple:
        """The batch's labelled rows and their model inputs and labels (`core.data.labelled`, `make_xy`), made once
        per cycle: the monitor scores the champion on them and the back-test the challenger."""
        if self._xy is None:
            lab = labelled(self.checked.df, self.p.cfg)
            self._xy = (lab, *make_xy(lab, self.p.cfg))
        return self._xy

    def __enter__(self) -> CycleRun:
        self.run_id = tracking.start_run(self.p, self.batch, self.trigger)
        if self.dry_run:
            self.p.tracking.set_tags(self.run_id, {"ctp.dry_run": "true"})
        self.update(run_id=self.run_id)
        self.p.tracking.set_tags(self.run_id, {**alert_tags(self.result.alert), "ctp.rerun": str(self.rerun).lower()})
        tracking.log_inputs(self.p, self.run_id, self.checked.df, self.checked.quality)
        tracking.log_dataset(self.p, self.run_id, [self.checked.df], self.batch.path, self.batch.name, "evaluation")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        after_close = logs_after_close() and self.reports.pending  # logged onto the closed run (many cycles)
        try:
            return self._close(exc, after_close)
        finally:
            if after_close:
                self.reports.hand_off(self._log_report_files, self._reports_done)

    def _log_report_files(self, files) -> None:
        tracking.log_report_files(self.p, self.run_id, files)

    def _reports_done(self, failed: list[str]) -> None:
        """After reports logged onto the closed run: the failed ones named, the pending tag removed."""
        self._tag_failed_reports(failed)
        self.p.tracking.delete_tag(self.run_id, REPORTS_PENDING)

    def _tag_failed_reports(self, failed: list[str]) -> None:
        if failed:
            self.p.tracking.set_tags(self.run_id, {"ctp.reports_failed": ",".join(failed)})

    def _close(self, exc: BaseException | None, after_close: bool) -> bool:
        if after_close:
            self.p.tracking.set_tags(self.run_id, {REPORTS_PENDING: "true"})
        else:
            self._tag_failed_reports(self.reports.wait(self._log_report_files))
        if self.checked.spark is not None:  # engine: spark: the batch's cache is not needed now
            self.checked.spark.release()
        if isinstance(exc, DataError):  # passed the gate, yet unusable: quarantine rather than retry forever
            self.quarantine(
                None,
                f"batch {self.batch.name} passed the quality gate but cannot be used: {exc}",
                "(an expectation in the suite should catch this)",
            )
        elif exc is not None and not self._give_up(exc):
            self._notify(exc)
            self.p.tracking.end_run(self.run_id, "FAILED")
            return False
        elif exc is not None:  # the same crash on every try: quarantined so that later batches are reached
            self.quarantine(None, f"batch {self.batch.name}: every cycle on it crashed ({type(exc).__name__}: {exc})")
        elif self.result.status not in ("quarantined", "gate-failed") and not self.dry_run:
            self._record_accepted()
        self.update(seconds=round(time.perf_counter() - self._t0, 2))
        tracking.log_summary(self.p, self.run_id, self.result)
        self.p.tracking.set_tags(
            self.run_id, {"ctp.status": self.result.status, "ctp.verdict": self.result.verdict or "-"}
        )
        self._notify(exc)
        self.p.tracking.end_run(self.run_id, "FINISHED")
        return True

    def _notify(self, exc: BaseException | None) -> None:
        """The outcome to `notifications:` (not for a dry run or an interrupt), and `ctp.notified` on the run.
        A crash is named by its type only; a DataError is a rejection, not a crash."""
        if self.dry_run or (exc is not None and not isinstance(exc, Exception)):
            return
        crashed = type(exc).__name__ if exc is not None and not isinstance(exc, DataError) else None
        notified = notify_cycle(self.p, self.result, failed_with=crashed)
        if exc is not None:
            setattr(exc, NOTIFIED, True)  # the flow's failures_announced sends nothing more for it
        if notified:
            try:
                self.p.tracking.set_tags(self.run_id, {"ctp.notified": notified})
            except Exception as tag_exc:  # the run's close below reports a store that is down
                log.warning("could not tag MLflow run %s ctp.notified: %s", self.run_id, type(tag_exc).__name__)

    def _give_up(self, exc: BaseException) -> bool:
        """An unexpected crash (not an interrupt, not a registry or config error) is recorded; the batch is retried
        until it has crashed `ingest.MAX_FAILURES` times."""
        if isinstance(exc, CtpError) or not isinstance(exc, Exception):
            return False
        return ingest.record_failure(self.batch, self.p.batch_log, exc, self.run_id) >= ingest.MAX_FAILURES

    def quarantine(self, quality: QualityResult | None, error: str | None, note: str = "") -> None:
        if self.dry_run:  # say what would happen; the file stays where it is, unrecorded
            failed = tuple(f.describe() for f in quality.failed) if quality is not None else ()
            why = "\n".join(
                [f"dry run: batch {self.batch.name} would be rejected; it stays in {self.batch.path}:"]
                + [f"  - {f}" for f in failed or (error,)]
            )
            self.update(status="quarantined", failed_expectations=failed, reasons=(why,))
            return
        if self.rerun:  # accepted before: report, but neither move it nor record it rejected
            failed = [f.describe() for f in quality.failed] if quality is not None else [str(error)]
            why = f"batch {self.batch.name}, accepted earlier, fails the quality gate now; left in place: "
            self.update(status="gate-failed", failed_expectations=tuple(failed), reasons=(why + "; ".join(failed),))
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
        """The batch accepted, or (a webhook re-run) the re-run: the batch is not processed a second time."""
        r = self.result
        self.p.batch_log.append(
            {
                "batch": r.batch,
                "sha256": self.batch.sha256,
                "status": "rerun" if self.rerun else "accepted",
                "trigger": self.trigger,
                **({"alert": r.alert} if r.alert else {}),
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
