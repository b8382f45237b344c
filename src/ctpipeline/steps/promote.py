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
from ctpipeline.errors import RegistryError
from ctpipeline.locks import serialized
from ctpipeline.steps.context import Pipeline
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
        },
    )
    p.registry.set_alias("challenger", ref)
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
    keep the champion it replaces under alias `previous`; write a ledger row."""
    reg = p.registry
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
    p.ledger.append(
        action=action,
        from_version=expected_champion,
        to_version=ref.version,
        reason=reason,
        trigger=trigger,
        run_id=run_id,
    )
    reg.set_version_tags(ref, {"ctp.promoted_at": now_iso()})
    log.info("%s: %s v%s is champion (was %s)", action, p.name, ref.version, expected_champion or "none")
    return True


@serialized(lambda p, *a, **k: p.paths.pipeline_dir(p.name) / "champion.lock", "rolling the champion back")
def rollback(p: Pipeline, to_version: str | None = None, reason: str = "manual rollback") -> tuple[str, str]:
    """Point `champion` back at the previous champion (or `to_version`). Returns (from, to)."""
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


def pending_approval(p: Pipeline) -> tuple[ModelRef, str | None, dict[str, str]]:
    """The challenger waiting for approval, the champion it was evaluated against, and its tags."""
    ref = p.registry.get_alias("challenger")
    tags = p.registry.get_version_tags(ref) if ref else {}
    if ref is None or tags.get("ctp.approval") != "pending":
        raise RegistryError(f"{p.name} has no challenger awaiting approval")
    return ref, (tags.get("ctp.expected_champion") or None), tags


def approve(p: Pipeline, reason: str = "approved by hand") -> str:
    ref, expected, tags = pending_approval(p)
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
    return ref.version


def reject(p: Pipeline, reason: str = "rejected by hand") -> str:
    ref, _, _ = pending_approval(p)
    p.registry.set_version_tags(ref, {"ctp.approval": "rejected", "ctp.approval_reason": reason[:500]})
    return ref.version
