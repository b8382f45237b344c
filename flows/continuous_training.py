"""Prefect wiring for one continuous-training cycle: ingest -> validate -> train -> evaluate -> register/promote.

Only orchestration lives here; each task calls one step of `ctpipeline.pipeline`.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from ctpipeline import pipeline as steps
from ctpipeline.pipeline import CycleResult, Pipeline
from ctpipeline.report import cycle_markdown

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
def quarantine(p: Pipeline, batch, result, run_id: str):
    return steps.quarantine(p, batch, result, run_id)


@task(name="train-challenger", **TASK)
def train(p: Pipeline, batch):
    return steps.train_challenger(p, batch)


@task(name="evaluate", **TASK)
def evaluate(p: Pipeline, trained, eval_df):
    return steps.evaluate(p, trained.model, eval_df)


@task(name="register-and-promote", **TASK)
def register_and_promote(p: Pipeline, run_id: str, batch, trained, ev, res: CycleResult) -> CycleResult:
    decision = steps.make_decision(p, ev)
    steps.log_training(p, run_id, trained, ev, decision)
    ref = steps.register_challenger(p, run_id, trained, ev, decision, batch)
    res.challenger_version = ref.version
    res.reasons = list(decision.reasons)
    expected = ev.champion_ref.version if ev.champion_ref else None
    if decision.promote and steps.promote(p, ref, expected):
        res.status, res.champion_version_after = "promoted", ref.version
    elif decision.promote:
        res.status = "kept-champion"
        res.reasons.append("champion changed during evaluation: promotion skipped (compare-and-swap)")
    else:
        res.status = "registered" if decision.verdict == "register_only" else "kept-champion"
    return res


@flow(name="continuous-training", log_prints=True)
def continuous_training(config: str = "configs/flights.yaml", state_dir: str | None = None,
                        trigger: str = "manual"):
    """Process the next landed batch of the pipeline described by `config`."""
    import time

    t0 = time.perf_counter()
    p = Pipeline.open(config, state_dir)
    batch = ingest(p)
    if batch is None:
        return CycleResult(batch=None, status="no-batch").to_dict()

    df, result = quality_gate(p, batch)
    champion = p.registry.champion()
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
            trained = train(p, batch)
            if trained is not None:
                ev = evaluate(p, trained, df)
                res.train_rows, res.train_batches = trained.train_rows, trained.train_batches
                res.challenger_metric, res.champion_metric = ev.challenger, ev.champion
                res = register_and_promote(p, run_id, batch, trained, ev, res)
            else:
                res.reasons = ["not enough accepted data before this batch to train a challenger yet"]
            steps.record_accepted(p, batch, res)
        res.seconds = round(time.perf_counter() - t0, 2)
        p.registry.set_tags(run_id, {"ctp.status": res.status})
        p.registry.log_text(run_id, cycle_markdown(p, res), "decision/summary.md")
        p.registry.end_run(run_id, "FINISHED")
    except BaseException:
        p.registry.end_run(run_id, "FAILED")
        raise
    create_markdown_artifact(cycle_markdown(p, res), key=f"{p.name}-cycle".lower().replace("_", "-").replace(".", "-"),
                             description=f"{p.name} batch {batch.name}: {res.status}")
    if res.status == "quarantined":
        return Completed(name="Rejected", message=res.reasons[0].splitlines()[0], data=res.to_dict())
    return res.to_dict()
