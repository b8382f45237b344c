"""Notifications from real cycles (real GX, MLflow, Evidently, Apprise; the flow's stages run in this process, as
`ctpipeline.flow.run_stages` does for the flow) to a real HTTP endpoint on 127.0.0.1, its URL in an environment
variable: a promotion, a gate rejection and a crash each send their message; a closed port changes nothing but a
warning that names the scheme, never the URL."""

import logging
import time

import mlflow
import pytest
import yaml

from ctpipeline.core import data
from ctpipeline.core.cycle import CycleResult
from ctpipeline.core.notify import cycle_notice
from ctpipeline.flow import run_stages
from ctpipeline.steps import cycle as stage
from ctpipeline.steps import notify as notify_step
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing
from notify_support import LogLines, Receiver

from conftest import free_port, make_flights_like

pytestmark = pytest.mark.integration

ENV = "CTP_TEST_NOTIFY_URL"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def with_notifications(cfg_path, *destinations):
    d = yaml.safe_load(cfg_path.read_text())
    d["notifications"] = list(destinations)
    cfg_path.write_text(yaml.safe_dump(d, sort_keys=False))


def run_of(p: Pipeline, run_id: str):
    return mlflow.MlflowClient(p.tracking_uri).get_run(run_id)


def one_cycle(p: Pipeline) -> CycleResult:
    batch = stage.next_batch(p)
    assert batch is not None
    return run_stages(p, batch, "test")


def land_broken(p: Pipeline, month: str) -> None:
    """A month without its `carrier` column: the GX suite fails it."""
    bad = make_flights_like(1500, seed=12, start=f"{month}-01").drop(columns=["carrier"])
    landing.write_parquet_atomic(bad, p.landing_dir / f"{month}.parquet")


def test_deliver_posts_json_to_the_url_in_the_named_variable(receiver, small_pipeline, monkeypatch):
    cfg, state = small_pipeline
    with_notifications(cfg, {"url_env": ENV}, {"url_env": "CTP_TEST_NOTIFY_ONLY_FAILED", "events": ["failed"]})
    monkeypatch.setenv(ENV, receiver.url("/ctp"))
    monkeypatch.setenv("CTP_TEST_NOTIFY_ONLY_FAILED", receiver.url("/failures"))
    p = Pipeline.open(cfg, state)
    res = CycleResult(batch="2013-05", status="promoted", challenger_version="2", champion_version_before="1")
    assert notify_step.deliver(p.cfg.notifications, cycle_notice(p.name, res, "promoted")) == (1, 0, 0)
    (body,) = receiver.wait_for(1)
    assert receiver.posts[0][0] == "/ctp"  # the other destination only takes failures
    assert body["title"] == "ctp flights-delay 2013-05: v2 promoted" and body["type"] == "success"
    assert body["message"].startswith("pipeline flights-delay, batch 2013-05: promoted")


def test_a_promotion_and_a_gate_rejection_each_send_their_message(receiver, small_pipeline, monkeypatch):
    cfg, state = small_pipeline
    with_notifications(cfg, {"url_env": ENV})
    monkeypatch.setenv(ENV, receiver.url())
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(5000, seed=21, months=2), p.cfg.data), p.landing_dir)
    land_broken(p, "2013-03")

    assert one_cycle(p).status == "accumulating" and receiver.bodies() == []  # no event, no message
    promoted = one_cycle(p)
    assert promoted.status == "promoted", promoted.reasons
    rejected = one_cycle(p)
    assert rejected.status == "quarantined"

    first, second = receiver.wait_for(2)
    assert first["title"] == f"ctp flights-delay 2013-02: v{promoted.challenger_version} promoted"
    assert "batch 2013-02: promoted" in first["message"] and promoted.run_id in first["message"]
    assert second["title"] == "ctp flights-delay 2013-03: batch rejected" and second["type"] == "warning"
    assert "batch 2013-03: rejected" in second["message"] and "carrier" in second["message"]
    tags = {r: run_of(p, r).data.tags for r in (promoted.run_id, rejected.run_id)}
    assert tags[promoted.run_id]["ctp.notified"] == "promoted: 1 sent, 0 failed"
    assert tags[rejected.run_id]["ctp.notified"] == "rejected: 1 sent, 0 failed"


def test_a_wait_for_approval_and_its_approval_each_send_their_message(receiver, small_pipeline, monkeypatch):
    from ctpipeline.steps import promote as promote_step

    cfg, state = small_pipeline
    d = yaml.safe_load(cfg.read_text())
    d["promotion"] = {**d.get("promotion", {}), "cold_start": "manual"}
    cfg.write_text(yaml.safe_dump(d, sort_keys=False))
    with_notifications(cfg, {"url_env": ENV, "events": ["awaiting_approval", "promoted"]})
    monkeypatch.setenv(ENV, receiver.url())
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(5000, seed=21, months=2), p.cfg.data), p.landing_dir)

    one_cycle(p)
    waiting = one_cycle(p)
    assert waiting.status == "awaiting-approval", waiting.reasons
    (body,) = receiver.wait_for(1)
    assert body["title"] == f"ctp flights-delay 2013-02: v{waiting.challenger_version} awaits approval"
    assert "`ctp approve`" in body["message"] and body["type"] == "info"
    assert run_of(p, waiting.run_id).data.tags["ctp.notified"] == "awaiting_approval: 1 sent, 0 failed"

    assert promote_step.approve(p, reason="checked the slices") == waiting.challenger_version
    _, approved = receiver.wait_for(2)
    assert approved["title"] == f"ctp flights-delay: v{waiting.challenger_version} promoted (approved)"
    assert "reason: checked the slices" in approved["message"]


def test_an_unreadable_file_quarantined_before_any_run_sends_rejected(receiver, small_pipeline, monkeypatch):
    cfg, state = small_pipeline
    with_notifications(cfg, {"url_env": ENV, "events": ["rejected"]})
    monkeypatch.setenv(ENV, receiver.url())
    p = Pipeline.open(cfg, state)
    p.landing_dir.mkdir(parents=True, exist_ok=True)
    (p.landing_dir / "2013-01.parquet").write_bytes(b"")  # 0 bytes: not Parquet
    res = one_cycle(p)
    assert res.status == "quarantined" and res.run_id is None
    (body,) = receiver.wait_for(1)
    assert body["title"] == "ctp flights-delay 2013-01: batch rejected"
    assert "reason: " in body["message"] and "MLflow run" not in body["message"]


def test_a_closed_port_changes_nothing_but_a_warning_without_the_url(small_pipeline, monkeypatch, caplog):
    cfg, state = small_pipeline
    with_notifications(cfg, {"url_env": ENV, "timeout_seconds": 2})
    monkeypatch.setenv(ENV, f"json://user:TOPSECRET@127.0.0.1:{free_port()}/hook")
    p = Pipeline.open(cfg, state)
    land_broken(p, "2013-01")
    caplog.set_level(logging.INFO, logger="ctpipeline")

    with LogLines("ctpipeline.steps.notify") as lines:
        res = one_cycle(p)
    assert res.status == "quarantined" and res.gate == "failed"
    assert (p.quarantine_dir / "2013-01.parquet").exists() and [r["status"] for r in p.batch_log.records()] == [
        "rejected"
    ]
    warnings = [r.getMessage() for r in lines.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"notification rejected to json:// (${ENV}) not sent: the destination refused it or did not answer within 2 s"
    ]
    assert "TOPSECRET" not in caplog.text
    tags = run_of(p, res.run_id).data.tags
    assert tags["ctp.notified"] == "rejected: 0 sent, 1 failed" and tags["ctp.status"] == "quarantined"


def test_a_crashed_cycle_sends_failed_with_the_error_type_only(receiver, small_pipeline, monkeypatch):
    cfg, state = small_pipeline
    with_notifications(cfg, {"url_env": ENV, "events": ["failed"]})
    monkeypatch.setenv(ENV, receiver.url())
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(2500, seed=21, months=1), p.cfg.data), p.landing_dir)

    def crash(*args, **kwargs):  # an unexpected error inside the cycle's MLflow run
        raise RuntimeError("lost connection to postgresql://ctp:TOPSECRET@db/ctp")

    monkeypatch.setattr(stage, "monitor_step", crash)
    with pytest.raises(RuntimeError):
        one_cycle(p)
    (body,) = receiver.wait_for(1)
    assert body["title"] == "ctp flights-delay 2013-01: cycle failed" and body["type"] == "failure"
    assert "the cycle crashed (RuntimeError)" in body["message"] and "TOPSECRET" not in body["message"]
    (run_id,) = p.tracking.search_run_ids("tags.`ctp.batch` = '2013-01'")
    run = run_of(p, run_id)
    assert run.info.status == "FAILED" and run.data.tags["ctp.notified"] == "failed: 1 sent, 0 failed"


def test_a_failure_outside_the_run_sends_failed_once(receiver, small_pipeline, monkeypatch):
    """What the flow wraps around the training slot and the cycle: a failure before the MLflow run opens (here
    the slot not granted) sends `failed`; one the run's close already announced sends nothing more."""
    cfg, state = small_pipeline
    with_notifications(cfg, {"url_env": ENV, "events": ["failed"]})
    monkeypatch.setenv(ENV, receiver.url())
    p = Pipeline.open(cfg, state)
    with pytest.raises(TimeoutError), stage.failures_announced(p):
        raise TimeoutError("gave up waiting for the training slot train-flights-delay")
    (body,) = receiver.wait_for(1)
    assert body["title"] == "ctp flights-delay -: cycle failed" and "(TimeoutError)" in body["message"]
    assert "gave up" not in body["message"]  # the type only: an error's text may carry a URI

    landing.land(data.split_batches(make_flights_like(2500, seed=21, months=1), p.cfg.data), p.landing_dir)
    monkeypatch.setattr(stage, "monitor_step", lambda *a, **k: 1 / 0)  # inside the run: its close announces it
    with pytest.raises(ZeroDivisionError), stage.failures_announced(p):
        one_cycle(p)
    bodies = receiver.wait_for(2)
    assert len(bodies) == 2 and "2013-01" in bodies[1]["title"]
    time.sleep(1.0)
    assert len(receiver.posts) == 2  # not a third from the outer guard
