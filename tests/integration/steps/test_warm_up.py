"""`steps.cycle.warm_up`: what a command does while the embedded Prefect server comes up. It pays the first
cycle's one-time costs and changes nothing a cycle decides or records."""

from __future__ import annotations

import sys

from mlflow import MlflowClient

from ctpipeline.core import data
from ctpipeline.flow import run_stages
from ctpipeline.steps import cycle as stage
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

from conftest import make_flights_like


def test_warm_up_creates_the_experiment_runs_nothing_and_the_cycle_proceeds(small_pipeline):
    cfg, state = small_pipeline
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(4000, seed=3, months=2), p.cfg.data), p.landing_dir)
    landed = sorted(f.name for f in p.landing_dir.iterdir())
    stage.warm_up(p, stage.next_batch(p))
    client = MlflowClient(p.tracking_uri)
    exp = client.get_experiment_by_name(p.cfg.experiment_name)
    assert exp is not None and client.search_runs([exp.experiment_id]) == []  # created, and no run in it
    assert "evidently" in sys.modules and "great_expectations" in sys.modules
    assert p.batch_log.records() == [] and sorted(f.name for f in p.landing_dir.iterdir()) == landed
    assert not p.quarantine_dir.exists() or not any(p.quarantine_dir.iterdir())
    first = run_stages(Pipeline.open(cfg, state), stage.next_batch(p))
    assert first.status == "accumulating" and first.batch == landed[0].removesuffix(".parquet")


def test_warm_up_with_an_unreadable_batch_only_logs(small_pipeline):
    cfg, state = small_pipeline
    p = Pipeline.open(cfg, state)
    p.landing_dir.mkdir(parents=True)
    (p.landing_dir / "2013-01.parquet").write_bytes(b"not parquet")
    stage.warm_up(
        p, stage.next_batch(p)
    )  # no exception: the cycle meets the broken file and quarantines it with the reason
    assert p.batch_log.records() == [] and (p.landing_dir / "2013-01.parquet").exists()
