"""Prefect wiring for one continuous-training cycle: ingest -> validate -> train -> evaluate -> register/promote.

Only orchestration lives here; each task calls one step of `ctpipeline.pipeline`.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from ctpipeline.steps import pipeline as steps
from ctpipeline.errors import DataError
from ctpipeline.steps.pipeline import CycleResult, Pipeline
from ctpipeline.core.report import cycle_markdown

# DataFrames and models flow between tasks in memory: hashing them for cache keys would cost
# time for nothing, so caching is off.
TASK = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="ingest", **TASK)
def ingest(p: Pipeline):
    return steps.next_batch(p)


@task(name="quality-gate", **TASK)
def quality_gate(p: Pipeline, batch):
    return steps.check_quality(p, batch)


@task(name="quarantine", **TASK)
def quarantine(p: Pipeline, batch, result, run_id: str | None, error: str | None = None):
    return steps.quarantine(p, batch, result, run_id, error)


@task(name="monitor", **TASK)
def monitor(p: Pipeline, batch, batch_df, champion, trigger: str):
    return steps.monitor(p, batch, batch_df, champion, trigger)


@task(name="train-challenger", **TASK)
def train(p: Pipeline, batch, batch_df):
    return steps.train_challenger(p, batch, batch_df)


@task(name="backtest", **TASK)
def evaluate(p: Pipeline, trained, batch_df, champion, previous_challenger, champion_scores):
    return steps.evaluate(p, trained.model, batch_df, champion, previous_challenger, champion_scores)


@task(name="decide-register-promote", **TASK)
def decide_register_promote(p: Pipeline, run_id: str, batch, trained, ev, res: CycleResult,
                            trigger: str) -> CycleResult:
    decision = steps.make_decision(p, ev)
    steps.log_training(p, run_id, trained, ev)
    ref = steps.register_challenger(p, run_id, trained, ev, decision, batch)
    res.challenger_version, res.verdict, res.reasons = ref.version, decision.verdict, list(decision.reasons)
    expected = ev.champion_ref.version if ev.champion_ref else None
    if decision.promote:
        if steps.promote(p, ref, expected, reason=decision.summary, trigger=trigger, run_id=run_id):
            res.status, res.champion_version_after = "promoted", ref.version
        else:
            res.status = "kept-champion"
            res.reasons.append("the champion alias moved while this challenger was evaluated: promotion skipped "
                               "(compare-and-swap); the next cycle re-evaluates against the new champion")
    else:
        res.status = {"register_only": "registered", "awaiting-approval": "awaiting-approval"}.get(
            decision.verdict, "kept-champion")
    res.record = steps.decision_record(p, batch, trained, ev, decision, ref, res, trigger)
    steps.log_decision(p, run_id, ref, res.record)
    return res


@flow(name="continuous-training", log_prints=True)
def continuous_training(config: str = "configs/flights.yaml", state_dir: str | None = None,
                        trigger: str = "manual"):
    """Process the next landed batch of the pipeline described by `config`."""
    from ctpipeline.adapters.prefect.orchestration import ensure_concurrency_limit, slot_name, training_slot

    p = Pipeline.open(config, state_dir)
    ensure_concurrency_limit(slot_name(p.name), 1)
    with training_slot(p.name):               # one cycle per pipeline at a time (Prefect limit, strict)
        return _cycle(p, trigger)


def _cycle(p: Pipeline, trigger: str):
    import time

    t0 = time.perf_counter()
    batch = ingest(p)
    if batch is None:
        return CycleResult(batch=None, status="no-batch").to_dict()

    try:
        df, result = quality_gate(p, batch)
    except DataError as exc:                 # unreadable file: quarantined, never retried in a loop
        target = quarantine(p, batch, None, None, error=str(exc))
        res = CycleResult(batch=batch.name, status="quarantined", gate="failed", reasons=[f"{exc}; moved to {target}"])
        return Completed(name="Rejected", message=str(exc), data=res.to_dict())
    champion = p.registry.champion()          # what the challenger is judged against (compare-and-swap)
    previous_challenger = p.registry.get_alias("challenger")
    res = CycleResult(batch=batch.name, status="accumulating", rows=len(df),
                      gate="passed" if result.success else "failed", metric=p.cfg.evaluation.metric,
                      champion_version_before=champion.version if champion else None,
                      champion_version_after=champion.version if champion else None)
    run_id = res.run_id = steps.start_run(p, batch, trigger)
    try:
        steps.log_inputs(p, run_id, batch, df, result)
        if not result.success:
            target = quarantine(p, batch, result, run_id)
            res.status = "quarantined"
            res.failed_expectations = [f.describe() for f in result.failed]
            res.reasons = [steps.quality_failure_message(batch, result, target)]
        else:
            mon = monitor(p, batch, df, champion, trigger)
            steps.log_monitoring(p, run_id, mon, len(p.batch_log.accepted()) + 1)
            res.fill_monitoring(mon)
            trained = train(p, batch, df) if mon.decision.retrain else None
            if isinstance(trained, str):
                res.reasons = [trained]
            elif trained is not None:
                ev = evaluate(p, trained, df, champion, previous_challenger, mon.champion_scores)
                res.fill_evaluation(trained, ev)
                res = decide_register_promote(p, run_id, batch, trained, ev, res, trigger)
            steps.record_accepted(p, batch, res)
        res.seconds = round(time.perf_counter() - t0, 2)
        p.registry.set_tags(run_id, {"ctp.status": res.status, "ctp.verdict": res.verdict or "-"})
        p.registry.end_run(run_id, "FINISHED")
    except DataError as exc:                 # passed the gate, yet unusable: quarantine rather than retry forever
        target = quarantine(p, batch, None, run_id, error=str(exc))
        res.status = "quarantined"
        res.reasons = [f"batch {batch.name} passed the quality gate but cannot be used: {exc}; moved to {target} "
                       "(an expectation in the suite should catch this)"]
        p.registry.set_tags(run_id, {"ctp.status": res.status})
        p.registry.end_run(run_id, "FINISHED")
    except BaseException:
        p.registry.end_run(run_id, "FAILED")
        raise
    create_markdown_artifact(cycle_markdown(p, res), key=f"{p.name}-cycle".lower().replace("_", "-").replace(".", "-"),
                             description=f"{p.name} batch {batch.name}: {res.status}")
    if res.status == "quarantined":
        return Completed(name="Rejected", message=res.reasons[0].splitlines()[0], data=res.to_dict())
    if res.status == "awaiting-approval":
        return Completed(name="AwaitingApproval", message=f"v{res.challenger_version} waits for `ctp approve`",
                         data=res.to_dict())
    return res.to_dict()
