"""Register and promote: the challenger version and its alias, the compare-and-swap of `champion` with its
ledger row, and the human actions (rollback, approve, reject)."""

from __future__ import annotations

import logging

from ctpipeline import faults
from ctpipeline.adapters.mlflow import ModelRef, installed_requirements
from ctpipeline.core.models import requirements_for
from ctpipeline.core.policy import Decision
from ctpipeline.core.record import version_description
from ctpipeline.core.results import Evaluation, Trained
from ctpipeline.core.verdicts import gate_tags
from ctpipeline.errors import RegistryError
from ctpipeline.locks import serialized
from ctpipeline.steps.context import Pipeline
from ctpipeline.steps.notify import notify_approval
from ctpipeline.store.ledger import champion_stack
from ctpipeline.store.state import now_iso

log = logging.getLogger(__name__)


def register_challenger(
    p: Pipeline, run_id: str, batch: str, trained: Trained, ev: Evaluation, decision: Decision
) -> ModelRef:
    """Log the model, register it as a new version and point the `challenger` alias at it."""
    bt = ev.backtest
    ref = p.models.log_and_register_model(
        run_id,
        trained.model,
        trained.input_example,
        installed_requirements(requirements_for(p.cfg)),
        description=version_description(p.cfg, batch, trained, ev, decision),
        tags={
            "ctp.batch": batch,
            "ctp.train_batches": ",".join(trained.train_batches),
            "ctp.verdict": decision.verdict,
            f"ctp.{ev.metric}": f"{bt.challenger:.4f}",
            "ctp.gain_ci": f"[{bt.ci_low}, {bt.ci_high}]" if bt.ci_low is not None else "n/a",
            "ctp.expected_champion": ev.champion_version or "",
            "ctp.approval": "pending" if decision.verdict == "awaiting-approval" else "n/a",
            "ctp.run_id": run_id,
            **gate_tags(decision.gates),  # with the version, in the call that creates it
        },
    )
    p.registry.set_alias(
        "shadow" if p.cfg.promotion.mode == "shadow" else "challenger", ref
    )  # shadow: live aliases stay
    return ref


@serialized(lambda p, *a, **k: p.paths.pipeline_dir(p.name) / "champion.lock", "moving the champion alias")
def promote(
    p: Pipeline,
    ref: ModelRef,
    expected_champion: str | None,
    *,
    reason: str,
    trigger: str,
    run_id: str | None,
    action: str = "promote",
) -> bool:
    """Move `champion` to `ref` only if it still points where it did at evaluation time (compare-and-swap);
    keep the champion it replaces under alias `previous`; write the ledger's intent row before the move and its
    move row after (a crash in between is repaired by :func:`reconcile`)."""
    reg = p.registry
    if p.ledger.champion() != expected_champion:  # out of step since an earlier crash: repair before the next move
        reconcile(p)
    move = dict(action=action, from_version=expected_champion, to_version=ref.version, reason=reason, trigger=trigger)
    p.ledger.append(**move, run_id=run_id, intent=True)
    if not reg.compare_and_swap_alias("champion", ref, expected_champion):
        now = reg.champion()
        log.warning(
            "champion moved during evaluation (expected v%s, now v%s); v%s not promoted",
            expected_champion,
            now.version if now else None,
            ref.version,
        )
        return False
    faults.checkpoint("after-champion-alias")
    if expected_champion:
        reg.set_alias("previous", ModelRef(p.name, expected_champion, None))
    p.ledger.append(**move, run_id=run_id)
    reg.set_version_tags(ref, {"ctp.promoted_at": now_iso()})
    log.info("%s: %s v%s is champion (was %s)", action, p.name, ref.version, expected_champion or "none")
    return True


def reconcile(p: Pipeline, champion: ModelRef | None = None) -> dict | None:
    """Make the ledger agree with the registry: when the registry's champion (`champion`, read now if not given)
    is not the ledger's last `to_version` (a process died, or the ledger write failed, after the alias moved; or
    someone moved the alias outside ctp), append an `action: reconcile` row naming both, and point `previous` at
    the champion it replaced. Returns the row, or None when they agreed."""
    champion = champion if champion is not None else p.registry.champion()
    ledger_says = p.ledger.champion()
    if champion is None or champion.version == ledger_says:
        if champion is None and ledger_says is not None:
            log.warning("the ledger says v%s is champion but the registry has no champion alias", ledger_says)
        return None
    intent = p.ledger.intent_for(champion.version)
    if intent is not None and intent.get("from_version") == ledger_says:
        why = (
            f"the {intent['action']} v{ledger_says or '-'} -> v{champion.version} moved the alias but its ledger row "
            f"was not written (the process stopped or the write failed); recorded now. Its reason: {intent['reason']}"
        )
    else:
        why = f"the champion alias was moved outside ctp (registry v{champion.version}, ledger v{ledger_says or '-'})"
    row = p.ledger.append(
        action="reconcile",
        from_version=ledger_says,
        to_version=champion.version,
        reason=why,
        trigger=(intent or {}).get("trigger", "reconcile"),
        run_id=(intent or {}).get("run_id"),
    )
    if ledger_says:
        p.registry.set_alias("previous", ModelRef(p.name, ledger_says, None))
    log.warning("ledger repaired: %s", why)
    return row


def current_champion(p: Pipeline) -> ModelRef | None:
    """The registry's champion, with the ledger reconciled to it first (what a cycle evaluates against)."""
    champion = p.registry.champion()
    reconcile(p, champion)
    return champion


def ledger_mismatch(p: Pipeline) -> str | None:
    """Read-only: why the ledger and the registry disagree about the champion, or None."""
    champion = p.registry.champion()
    ledger_says = p.ledger.champion()
    if (champion.version if champion else None) == ledger_says:
        return None
    return (
        f"the registry's champion is v{champion.version if champion else '(none)'} but the ledger's last move is to "
        f"v{ledger_says or '(none)'}: the next cycle, rollback or approval records a reconcile row"
    )


@serialized(lambda p, *a, **k: p.paths.pipeline_dir(p.name) / "champion.lock", "rolling the champion back")
def rollback(p: Pipeline, to_version: str | None = None, reason: str = "manual rollback") -> tuple[str, str]:
    """Point `champion` back at the champion the current one replaced (or `to_version`). Returns (from, to).

    The champion is read once; the ledger is reconciled with that reading, and the target is the version below it
    in :func:`champion_stack`, so a second rollback steps further back; the move is a compare-and-swap from the
    version read, so a promotion landing meanwhile makes the rollback fail instead of being overwritten."""
    reg = p.registry
    current = reg.champion()
    if current is None:
        raise RegistryError(f"{p.name} has no champion: nothing to roll back")
    repaired = reconcile(p, current)
    if to_version is None:
        to_version = _rollback_target(p, current, unknown=repaired is not None and not repaired["from_version"])
    target = reg.get_version(str(to_version))
    if target is None:
        raise RegistryError(f"{p.name} has no version {to_version}")
    if target.version == current.version:
        raise RegistryError(f"v{current.version} is already the champion")
    if not promote(p, target, current.version, reason=reason, trigger="rollback", run_id=None, action="rollback"):
        raise RegistryError("the champion changed while rolling back; run the command again")
    return current.version, target.version


def pending_approval(p: Pipeline) -> tuple[ModelRef, str | None, dict[str, str]]:
    """The challenger waiting for approval, the champion it was evaluated against, and its tags."""
    ref = p.registry.get_alias("challenger")
    tags = p.registry.get_version_tags(ref) if ref else {}
    if ref is None or tags.get("ctp.approval") != "pending":
        raise RegistryError(f"{p.name} has no challenger awaiting approval")
    return ref, (tags.get("ctp.expected_champion") or None), tags


def approve(p: Pipeline, reason: str = "approved by hand") -> str:
    ref, expected, tags = pending_approval(p)
    reconcile(p)
    if not promote(
        p, ref, expected, reason=reason, trigger="approval", run_id=tags.get("ctp.run_id"), action="approve"
    ):
        now = p.registry.champion()
        raise RegistryError(
            f"the champion moved since v{ref.version} was evaluated (against "
            f"v{expected or 'none'}, now v{now.version if now else 'none'}): not promoted; "
            "run a new cycle to re-evaluate"
        )
    p.registry.set_version_tags(ref, {"ctp.approval": "approved"})
    notify_approval(p, ref.version, expected, reason)
    return ref.version


def reject(p: Pipeline, reason: str = "rejected by hand") -> str:
    ref, _, _ = pending_approval(p)
    p.registry.set_version_tags(ref, {"ctp.approval": "rejected", "ctp.approval_reason": reason[:500]})
    return ref.version


def _rollback_target(p: Pipeline, current: ModelRef, unknown: bool) -> str:
    """The champion below `current` in the ledger; when the ledger knew no champion before this one (moved by hand
    in the MLflow UI), the `previous` alias."""
    stack = champion_stack(p.ledger.rows())
    if len(stack) >= 2:
        return stack[-2]
    previous = p.registry.get_alias("previous") if unknown else None
    if previous is not None and previous.version != current.version:
        return previous.version
    raise RegistryError(
        f"{p.name}: v{current.version} is the first champion the ledger recorded (no champion before "
        f"v{current.version} to roll back to); pass --to-version N"
    )
