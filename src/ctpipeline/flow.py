"""The continuous-training loop as a Prefect flow: ingest, gate, monitor, train, back-test, decide, register,
promote. Wiring only: each task is one stage of `ctpipeline.steps.cycle`; the run lifecycle lives there."""

from __future__ import annotations

from types import SimpleNamespace

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
# the stages of `ctpipeline.steps.cycle` (by function name) as Prefect tasks (by task name in the UI)
TASK_NAMES = dict(next_batch="ingest", gate="quality-gate", reject="quarantine", monitor="monitor")
TASK_NAMES |= dict(
    train="train-challenger", backtest="backtest", decide="decide", register="register", promote="promote"
)
TASKS = SimpleNamespace(**{fn: task(name=name, **TASK)(getattr(stage, fn)) for fn, name in TASK_NAMES.items()})


def cycle(s, p: Pipeline, batch, trigger: str, alert: dict | None = None, dry_run: bool = False) -> CycleResult:
    """One batch through gate, monitor, train, back-test, decide, register and promote. `s` holds the stages:
    Prefect tasks in the flow (TASKS), the plain functions of `steps.cycle` in `run_stages`."""
    checked = s.gate(p, batch)
    if isinstance(checked, CycleResult):  # unreadable file: quarantined before any MLflow run
        return checked
    with stage.CycleRun(p, checked, trigger, alert, dry_run) as run:  # the MLflow run: opened, tagged, closed
        if not checked.passed:
            s.reject(run)
        elif (mon := s.monitor(run)).decision.retrain:
            trained = s.train(run)
            if isinstance(trained, Trained):
                ev = s.backtest(run, trained, mon)
                decision = s.decide(run, trained, ev)
                if dry_run:
                    stage.dry_run_result(run, decision)
                else:
                    s.promote(run, trained, ev, decision, s.register(run, trained, ev, decision))
    return run.result


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
    slot = training_slot(p.name, p.paths.pipeline_dir(p.name), p.paths.prefect_home)  # one cycle at a time
    with stage.failures_announced(p), slot:  # a failure outside the MLflow run sends `failed` too
        batch = TASKS.next_batch(p, trigger)  # a webhook run (`alert`) without a new batch: the newest accepted one
        label_run(p.name, batch.name if batch else None)  # `<pipeline>/<batch>` in the Prefect UI from now on
        if batch is None:
            return publish(p.name, "", stage.nothing_to_do(p, trigger, alert))
        return publish(p.name, p.cfg.config_hash(), cycle(TASKS, p, batch, trigger, alert, dry_run))


def run_stages(p: Pipeline, batch, trigger: str = "manual") -> CycleResult:
    """The same cycle in this process without Prefect tasks (benchmarks, and tests that drive the cycle itself)."""
    return cycle(stage, p, batch, trigger)
