"""One cycle's lifecycle as data: what it did (`CycleResult`), how each outcome maps to a status and to an
orchestrator state, and how the rows since the last training are counted. Pure: no tool, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from ctpipeline.core.results import Evaluation, Monitoring, Trained

# status values: no-batch | no-data | quarantined | gate-failed | accumulating | monitored | promoted
#                | kept-champion | registered | awaiting-approval
# (no-data: a webhook run found no batch at all; gate-failed: a re-run batch no longer passes the gate, left in place)

ALERT_TAG_CHARS = 500


@dataclass(frozen=True)
class CycleResult:
    """What one cycle did: the row of the replay table and the flow's return value."""

    batch: str | None
    status: str
    rows: int = 0
    gate: str = "-"  # passed | failed | -
    train_rows: int = 0
    train_batches: tuple[str, ...] = ()
    metric: str = ""
    challenger_metric: float | None = None
    champion_metric: float | None = None
    challenger_version: str | None = None
    champion_version_before: str | None = None
    champion_version_after: str | None = None
    run_id: str | None = None
    reasons: tuple[str, ...] = ()
    failed_expectations: tuple[str, ...] = ()
    seconds: float = 0.0
    verdict: str | None = None
    fired: tuple[str, ...] = ()  # which retraining triggers fired
    trigger_reasons: tuple[str, ...] = ()
    drifted_share: float | None = None
    drifted_columns: tuple[str, ...] = ()
    gain: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    served_metric: float | None = None  # the champion of the month, scored on the whole month
    never_retrain_metric: float | None = None  # baseline: the first model forever
    always_promote_metric: float | None = None  # baseline: the newest challenger, always promoted
    record: dict[str, Any] | None = field(default=None, compare=False)  # the decision record
    alert: dict[str, str] | None = field(default=None, compare=False)  # the alert of a webhook run (reason, name...)
    rerun: bool = False  # a webhook run re-ran an accepted batch (no new one): not recorded as processed again

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def with_monitoring(self, mon: Monitoring) -> CycleResult:
        drift = mon.drift
        res = replace(
            self,
            fired=mon.decision.fired,
            trigger_reasons=mon.decision.reasons,
            drifted_share=getattr(drift, "drifted_share", None),
            drifted_columns=tuple(drift.drifted_columns()) if drift is not None else (),
            served_metric=mon.champion_metric,
        )
        if not mon.decision.retrain:
            res = replace(res, status="monitored", reasons=("no retraining: " + "; ".join(mon.decision.reasons),))
        return res

    def with_evaluation(self, trained: Trained, ev: Evaluation) -> CycleResult:
        bt = ev.backtest
        return replace(
            self,
            train_rows=trained.train_rows,
            train_batches=trained.train_batches,
            challenger_metric=bt.challenger,
            champion_metric=bt.champion,
            gain=bt.gain,
            ci_low=bt.ci_low,
            ci_high=bt.ci_high,
            never_retrain_metric=ev.baselines.get("never_retrain"),
            always_promote_metric=ev.baselines.get("always_promote"),
        )


CAS_LOST = (
    "the champion alias moved while this challenger was evaluated: promotion skipped (compare-and-swap); "
    "the next cycle re-evaluates against the new champion"
)


def status_after_decision(verdict: str, promote: bool, moved: bool) -> tuple[str, tuple[str, ...]]:
    """The cycle's status once the decision is carried out, and any reason to add."""
    if promote:
        return ("promoted", ()) if moved else ("kept-champion", (CAS_LOST,))
    return {"register_only": "registered", "awaiting-approval": "awaiting-approval"}.get(verdict, "kept-champion"), ()


@dataclass(frozen=True)
class StateSpec:
    """How the orchestrator should show a finished cycle: a named state and its message."""

    name: str
    message: str


def final_state(res: CycleResult) -> StateSpec | None:
    """None for an ordinary completed cycle; a named state for a rejection or a wait for approval."""
    if res.status == "quarantined":
        return StateSpec("Rejected", res.reasons[0].splitlines()[0] if res.reasons else "batch rejected")
    if res.status in ("no-data", "gate-failed"):
        return StateSpec("NoData" if res.status == "no-data" else "GateFailed", res.reasons[0] if res.reasons else "")
    if res.status == "awaiting-approval":
        return StateSpec("AwaitingApproval", f"v{res.challenger_version} waits for `ctp approve`")
    return None


def since_last_training(records: list[dict[str, Any]]) -> tuple[int, datetime | None]:
    """Rows accepted since the last cycle that trained a challenger (a re-run included), and when that cycle was
    recorded."""
    rows = 0
    for r in reversed(records):
        if r.get("status") not in ("accepted", "rerun"):
            continue
        if r.get("challenger_version"):
            return rows, datetime.fromisoformat(r["at"])
        if r.get("status") == "accepted":  # a re-run brings no new rows
            rows += int(r.get("rows") or 0)
    return rows, None


def alert_tags(alert: dict[str, Any] | None) -> dict[str, str]:
    """MLflow tags for the alert that started a webhook run: ``ctp.alert.<key>`` for each non-empty value."""
    return {f"ctp.alert.{k}": str(v)[:ALERT_TAG_CHARS] for k, v in (alert or {}).items() if v not in (None, "")}


def quality_failure_message(batch: str, failed: list[str], target: str) -> str:
    lines = [f"batch {batch} rejected by the quality gate and moved to {target}:"]
    lines += [f"  - {f}" for f in failed]
    return "\n".join(lines)
