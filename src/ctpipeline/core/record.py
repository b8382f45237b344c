"""The decision record: everything needed to understand (and audit) one promotion decision, as plain JSON."""

from __future__ import annotations

from typing import Any

from ctpipeline.config.schema import PipelineConfig
from ctpipeline.core.cycle import CycleResult
from ctpipeline.core.policy import Decision
from ctpipeline.core.results import Evaluation, Trained


def decision_record(
    cfg: PipelineConfig,
    res: CycleResult,
    *,
    batch_sha256: str,
    trigger: str,
    trained: Trained,
    ev: Evaluation,
    decision: Decision,
    challenger_version: str,
    decided_at: str,
) -> dict[str, Any]:
    """JSON-serialisable record of the cycle `res` that trained `trained`, evaluated as `ev`, decided `decision`."""
    bt = ev.backtest
    return {
        "pipeline": cfg.name,
        "batch": res.batch,
        "batch_sha256": batch_sha256,
        "trigger": trigger,
        "alert": res.alert,
        "rerun": res.rerun,
        "run_id": res.run_id,
        "config_hash": cfg.config_hash(),
        "decided_at": decided_at,
        "champion_version": ev.champion_version,
        "challenger_version": challenger_version,
        "outcome": res.status,
        "verdict": decision.verdict,
        "reasons": list(res.reasons),
        "data": {
            "train_batches": list(trained.train_batches),
            "train_rows": trained.train_rows,
            "train_end": trained.train_end,
            "backtest_rows": bt.rows,
            "backtest_windows": [
                {"index": w.index, "start": w.start, "end": w.end, "rows": w.rows} for w in bt.windows
            ],
        },
        "backtest": bt.to_dict(),
        "slices": [s.to_dict() for s in decision.slices],
        "guards": {"latency_ms_per_1k": ev.latency_ms_per_1k, "model_mb": ev.model_mb},
        "gates": [g.to_dict() for g in decision.gates],
        "baselines": dict(ev.baselines),
        "monitoring": {
            "fired": list(res.fired),
            "trigger_reasons": list(res.trigger_reasons),
            "drifted_share": res.drifted_share,
            "drifted_columns": list(res.drifted_columns),
        },
        "policy": {
            "promotion": cfg.promotion.model_dump(mode="json"),
            "backtest": cfg.backtest.model_dump(mode="json"),
            "metric": ev.metric,
            "higher_is_better": cfg.evaluation.higher_is_better,
        },
    }


def version_description(cfg: PipelineConfig, batch: str, trained: Trained, ev: Evaluation, decision: Decision) -> str:
    """The registry version's description: what it was trained on, how it back-tested, the verdict."""
    bt = ev.backtest
    vs = (
        f" vs champion v{ev.champion_version} {bt.champion:.4f}"
        if ev.champion_version and bt.champion is not None
        else ""
    )
    return (
        f"{cfg.model.type} trained on {', '.join(trained.train_batches)} ({trained.train_rows} rows); "
        f"back-tested on {len(bt.windows)} windows of {batch}: {ev.metric}={bt.challenger:.4f}{vs}. "
        f"Verdict: {decision.explain()}"
    )[:5000]
