"""The replay's baselines (the first model kept forever, the newest challenger always promoted) are scored where
`backtest.baselines` says: on replayed batches by default, every cycle with `always`, never with `never`. They are
recorded only: the decision is the same either way."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from ctpipeline.core import data
from ctpipeline.flow import run_stages
from ctpipeline.steps import cycle as stage
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

from conftest import make_flights_like, write_pipeline_config


def _third_cycle(tmp_path, trigger: str, baselines: str | None):
    backtest = {"baselines": baselines} if baselines else {}
    cfg = write_pipeline_config(
        tmp_path, training={"min_train_rows": 500}, triggers={"every_batch": True}, backtest=backtest
    )
    p = Pipeline.open(cfg, tmp_path / "state")
    landing.land(data.split_batches(make_flights_like(6000, seed=11, months=3), p.cfg.data), p.landing_dir)
    run_stages(p, stage.next_batch(p), trigger)  # cold start
    run_stages(p, stage.next_batch(p), trigger)  # v1: the first champion
    res = run_stages(p, stage.next_batch(p), trigger)
    metrics = MlflowClient(p.tracking_uri).get_run(res.run_id).data.metrics
    return res, {k for k in metrics if k.startswith("baseline_")}


@pytest.mark.parametrize(
    ("trigger", "baselines", "scored"),
    [("replay", None, True), ("manual", None, False), ("manual", "always", True), ("replay", "never", False)],
)
def test_baselines_are_scored_where_the_config_says(tmp_path, trigger, baselines, scored):
    res, logged = _third_cycle(tmp_path, trigger, baselines)
    assert res.challenger_version is not None
    if scored:
        assert res.never_retrain_metric is not None and res.always_promote_metric is not None
        assert logged == {"baseline_never_retrain_roc_auc", "baseline_always_promote_roc_auc"}
    else:
        assert res.never_retrain_metric is None and res.always_promote_metric is None and logged == set()
