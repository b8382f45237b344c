"""What a webhook run does, in its pure and file-only parts (no MLflow, no Prefect): which batch it works on, the
`no-data` result, the alert carried into the flow-run parameters and tags, the MLflow tags, and how a re-run
counts for the trigger cooldown. The whole run on real MLflow and Prefect: tests/integration/webhook/."""

from __future__ import annotations

import logging

import pytest

from ctpipeline.adapters.prefect.launcher import MAX_PARAM_CHARS, run_parameters, run_tags
from ctpipeline.core import data
from ctpipeline.core.cycle import CycleResult, alert_tags, final_state, since_last_training
from ctpipeline.steps import cycle as stage
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing
from ctpipeline.webhook.payloads import Alert

from conftest import make_flights_like, write_pipeline_config

ALERT = Alert(
    model="flights-delay",
    status="firing",
    dedupe_key="alertmanager:abc:2026-01-01T00:00:00Z",
    reason="drift share 0.41 > 0.30",
    labels={"model": "flights-delay"},
    source="alertmanager",
    name="FlightsDelayDrift",
    receiver="ctp-retrain",
    sender="alertmanager",
    launch_id="ctp-webhook-1",
)


def test_the_flow_run_gets_the_alert_as_a_parameter_and_tags():
    params = run_parameters(ALERT)
    assert params == {
        "trigger": "webhook",
        "alert": {
            "reason": "drift share 0.41 > 0.30",
            "name": "FlightsDelayDrift",
            "sender": "alertmanager",
            "receiver": "ctp-retrain",
            "source": "alertmanager",
            "dedupe_key": "alertmanager:abc:2026-01-01T00:00:00Z",
            "model": "flights-delay",
        },
    }
    long = run_parameters(Alert(**{**ALERT.__dict__, "reason": "r" * 2000}))
    assert len(long["alert"]["reason"]) == MAX_PARAM_CHARS
    assert run_tags(ALERT) == [
        "ctp-webhook",
        "source:alertmanager",
        "alert:alertmanager:abc:2026-01-01T00:00:00Z",
        "sender:alertmanager",
    ]


def test_alert_tags_for_the_mlflow_run():
    tags = alert_tags(ALERT.describe())
    assert tags["ctp.alert.reason"] == "drift share 0.41 > 0.30"
    assert tags["ctp.alert.name"] == "FlightsDelayDrift" and tags["ctp.alert.sender"] == "alertmanager"
    assert tags["ctp.alert.receiver"] == "ctp-retrain" and tags["ctp.alert.dedupe_key"].startswith("alertmanager:")
    assert alert_tags(None) == {} and alert_tags({"name": "", "reason": "x"}) == {"ctp.alert.reason": "x"}
    assert len(alert_tags({"reason": "y" * 9000})["ctp.alert.reason"]) == 500


def test_a_rerun_that_trained_counts_as_the_last_training_but_adds_no_rows():
    recs = [
        {"status": "accepted", "rows": 10, "challenger_version": "1", "at": "2026-01-01T00:00:00+00:00"},
        {"status": "accepted", "rows": 20, "at": "2026-01-02T00:00:00+00:00"},
        {"status": "rerun", "rows": 20, "challenger_version": "2", "at": "2026-01-03T00:00:00+00:00"},
        {"status": "accepted", "rows": 5, "at": "2026-01-04T00:00:00+00:00"},
    ]
    rows, last = since_last_training(recs)
    assert rows == 5 and last.isoformat() == "2026-01-03T00:00:00+00:00"
    rows, last = since_last_training(recs[:2] + [{**recs[2], "challenger_version": None}])
    assert rows == 20 and last.day == 1  # a re-run that trained nothing is no training


def test_no_data_and_gate_failed_are_named_states():
    spec = final_state(CycleResult(batch=None, status="no-data", reasons=("webhook alert (x): no data at all",)))
    assert spec.name == "NoData" and "no data" in spec.message
    assert final_state(CycleResult(batch="2013-01", status="gate-failed", reasons=("r",))).name == "GateFailed"
    assert final_state(CycleResult(batch=None, status="no-batch")) is None


@pytest.fixture
def pipeline(tmp_path):
    return Pipeline.open(write_pipeline_config(tmp_path), tmp_path / "state")


def test_which_batch_a_webhook_run_works_on(pipeline, caplog):
    p = pipeline
    caplog.set_level(logging.INFO, logger="ctpipeline")
    # nothing landed: no batch, and a webhook run says no-data (a warning)
    assert stage.next_batch(p, "webhook") is None
    res = stage.nothing_to_do(p, "webhook", {"reason": "drift 0.4"})
    assert res.status == "no-data" and res.alert == {"reason": "drift 0.4"}
    assert "drift 0.4" in res.reasons[0] and "no data at all" in res.reasons[0]
    assert any(r.levelname == "WARNING" and "no-data" in r.getMessage() for r in caplog.records)
    assert stage.nothing_to_do(p, "schedule").status == "no-batch"

    batches = data.split_batches(make_flights_like(600, seed=3, months=2), p.cfg.data)
    landed = landing.land(batches, p.landing_dir)
    assert len(landed) == 2
    first = stage.next_batch(p, "webhook")
    assert first.name == "2013-01" and not stage.is_rerun(p, first)  # a new batch goes first, oldest first
    for b in landing.landed_batches(p.landing_dir):
        p.batch_log.append({"batch": b.name, "sha256": b.sha256, "status": "accepted", "rows": 300})
    # no new batch: a manual or scheduled run finds nothing, a webhook run re-runs the newest accepted one
    assert stage.next_batch(p, "manual") is None and stage.next_batch(p, "schedule") is None
    latest = stage.next_batch(p, "webhook")
    assert latest.name == "2013-02" and stage.is_rerun(p, latest)
    assert any("re-running the newest accepted batch 2013-02" in r.getMessage() for r in caplog.records)
    # a re-run is recorded as such: the batch is not processed twice, nor accepted twice
    p.batch_log.append({"batch": "2013-02", "sha256": latest.sha256, "status": "rerun", "challenger_version": "3"})
    assert p.batch_log.accepted() == ["2013-01", "2013-02"]
    assert stage.next_batch(p, "webhook").name == "2013-02"
    # the newest accepted batch was deleted from landing: the one before it
    latest.path.unlink()
    assert stage.next_batch(p, "webhook").name == "2013-01"


def test_an_unreadable_batch_that_was_accepted_before_is_left_in_place(pipeline):
    p = pipeline
    p.landing_dir.mkdir(parents=True)
    (p.landing_dir / "2013-03.parquet").write_bytes(b"not parquet")
    (batch,) = landing.landed_batches(p.landing_dir)
    p.batch_log.append({"batch": batch.name, "sha256": batch.sha256, "status": "accepted", "rows": 1})
    res = stage.gate(p, batch)
    assert isinstance(res, CycleResult) and res.status == "gate-failed" and res.rerun
    assert batch.path.exists() and not p.quarantine_dir.exists()
    assert [r["status"] for r in p.batch_log.records()] == ["accepted"]
