"""The continuous-training loop as a Prefect flow: ingest, gate, monitor, train, back-test, decide, register,
promote. Wiring only: each task is one stage of `ctpipeline.steps.cycle`; the run lifecycle lives there."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ctpipeline.adapters.prefect.concurrency import ensure_concurrency_limit, slot_name, training_slot
from ctpipeline.adapters.prefect.results import label_run, publish
from ctpipeline.core.cycle import CycleResult
from ctpipeline.core.results import Trained
from ctpipeline.env import configure_flow_logging
from ctpipeline.steps import cycle as stage
from ctpipeline.steps.context import Pipeline

# Frames and models pass between tasks in memory: hashing them for cache keys would cost time for nothing.
TASK = dict(cache_policy=NO_CACHE, persist_result=False)

ingest = task(name="ingest", **TASK)(stage.next_batch)
quality_gate = task(name="quality-gate", **TASK)(stage.gate)
quarantine = task(name="quarantine", **TASK)(stage.reject)
monitor = task(name="monitor", **TASK)(stage.monitor)
train = task(name="train-challenger", **TASK)(stage.train)
backtest = task(name="backtest", **TASK)(stage.backtest)
decide = task(name="decide", **TASK)(stage.decide)
register = task(name="register", **TASK)(stage.register)
promote = task(name="promote", **TASK)(stage.promote)


@flow(name="continuous-training", log_prints=True)
def continuous_training(
    config: str = "configs/flights.yaml",
    state_dir: str | None = None,
    trigger: str = "manual",
    alert: dict | None = None,
    dry_run: bool = False,
):
    """Process the next landed batch of the pipeline described by `config` (`dry_run`: up to the decision only)."""
    configure_flow_logging()  # a worker's or `ctp serve`'s child process would drop our INFO lines
    p = Pipeline.open(config, state_dir)
    ensure_concurrency_limit(slot_name(p.name), 1)
    with training_slot(p.name, p.paths.pipeline_dir(p.name), p.paths.prefect_home):  # one cycle at a time
        batch = ingest(p, trigger)  # a webhook run (`alert`) without a new batch: the newest accepted one again
        label_run(p.name, batch.name if batch else None)  # `<pipeline>/<batch>` in the Prefect UI from now on
        if batch is None:
            return publish(p.name, "", stage.nothing_to_do(p, trigger, alert))
        checked = quality_gate(p, batch)
        if isinstance(checked, CycleResult):  # unreadable file: quarantined before any MLflow run
            return publish(p.name, p.cfg.config_hash(), checked)
        with stage.CycleRun(p, checked, trigger, alert, dry_run) as run:  # the MLflow run: opened, tagged, closed
            if not checked.passed:
                quarantine(run)
            elif (mon := monitor(run)).decision.retrain:
                trained = train(run)
                if isinstance(trained, Trained):
                    ev = backtest(run, trained, mon)
                    decision = decide(run, trained, ev)
                    if dry_run:
                        stage.dry_run_result(run, decision)
                    else:
                        ref = register(run, trained, ev, decision)
                        promote(run, trained, ev, decision, ref)
    return publish(p.name, p.cfg.config_hash(), run.result)
