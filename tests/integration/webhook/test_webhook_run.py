"""What a webhook run does, on a real Prefect test server, real GX and a real MLflow registry (flow in-process):

* no data at all: status `no-data` (Prefect state NoData), a warning, no MLflow run;
* no new batch: the newest accepted batch is re-run: a challenger trained on the window before it and
  back-tested on it, decided and recorded as a `rerun` (not accepted a second time);
* a new batch: processed as usual, with the alert on its batch-log row;
and in every case the alert's reason, name and sender in the MLflow tags and in the decision record.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ctpipeline.core import data
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

from conftest import make_flights_like

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALERT = {
    "reason": "AUC 0.61 below 0.65 on the last labelled day",
    "name": "FlightsDelayAucDrop",
    "sender": "grafana",
    "receiver": "ctp-retrain",
    "source": "grafana",
    "dedupe_key": "grafana:c6eadffa33fcdf37:2026-03-01T09:51:03Z",
    "model": "flights-delay",
}


def test_webhook_runs_without_data_on_the_newest_accepted_batch_and_on_a_new_one(
    prefect_server, small_pipeline, caplog
):
    from mlflow import MlflowClient

    from ctpipeline.flow import continuous_training

    cfg_path, state = small_pipeline
    p = Pipeline.open(cfg_path, state)

    def run(trigger="manual", alert=None):
        return continuous_training(
            config=str(cfg_path), state_dir=str(state), trigger=trigger, alert=alert, return_state=True
        )

    caplog.set_level(logging.INFO, logger="ctpipeline")
    none = run("webhook", ALERT)
    res = none.result()
    assert none.name == "NoData" and res["status"] == "no-data" and res["alert"] == ALERT
    assert ALERT["reason"] in res["reasons"][0] and str(p.landing_dir) in res["reasons"][0]
    assert any("no-data" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert p.batch_log.records() == []

    frames = data.split_batches(make_flights_like(9000, seed=21, months=3), p.cfg.data)
    landing.land({k: v for k, v in frames.items() if k != "2013-03"}, p.landing_dir)
    assert run().result()["status"] == "accumulating"
    assert run().result()["status"] == "promoted"  # v1, trained on 2013-01, back-tested on 2013-02

    # no new batch: the alert re-runs 2013-02: trained on the window before it, back-tested on it
    rerun = run("webhook", ALERT).result()
    assert rerun["batch"] == "2013-02" and rerun["rerun"] is True and rerun["alert"] == ALERT
    assert rerun["train_batches"] == ["2013-01"] and rerun["challenger_version"] == "2"
    assert rerun["status"] in ("promoted", "kept-champion") and rerun["champion_version_before"] == "1"
    assert "webhook" in rerun["fired"]
    recs = p.batch_log.records()
    assert [r["status"] for r in recs] == ["accepted", "accepted", "rerun"]
    assert recs[-1]["alert"] == ALERT and recs[-1]["trigger"] == "webhook"
    assert p.batch_log.accepted() == ["2013-01", "2013-02"]
    mlflow = MlflowClient(tracking_uri=p.tracking_uri)
    tags = mlflow.get_run(rerun["run_id"]).data.tags
    assert tags["ctp.alert.reason"] == ALERT["reason"] and tags["ctp.alert.name"] == "FlightsDelayAucDrop"
    assert tags["ctp.alert.sender"] == "grafana" and tags["ctp.rerun"] == "true" and tags["ctp.trigger"] == "webhook"
    local = mlflow.download_artifacts(rerun["run_id"], "decision/decision.json", str(state.parent / "dl"))
    record = json.loads(Path(local).read_text())
    assert record["alert"] == ALERT and record["rerun"] is True and record["trigger"] == "webhook"
    assert record["data"]["train_batches"] == ["2013-01"] and record["batch"] == "2013-02"

    # a new batch: processed (accepted) by the webhook run, the alert on its row
    landing.land({"2013-03": frames["2013-03"]}, p.landing_dir)
    fresh = run("webhook", {**ALERT, "dedupe_key": "grafana:other"}).result()
    assert fresh["batch"] == "2013-03" and fresh["rerun"] is False
    assert fresh["train_batches"] == ["2013-01", "2013-02"]
    recs = p.batch_log.records()
    assert [r["status"] for r in recs] == ["accepted", "accepted", "rerun", "accepted"]
    assert recs[-1]["alert"]["dedupe_key"] == "grafana:other"
    assert mlflow.get_run(fresh["run_id"]).data.tags["ctp.rerun"] == "false"
    # a run not started by an alert carries none of it
    manual = mlflow.get_run(recs[0]["run_id"]).data.tags
    assert not any(k.startswith("ctp.alert.") for k in manual) and "alert" not in recs[0]
