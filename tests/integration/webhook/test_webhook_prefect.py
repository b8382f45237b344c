"""The webhook receiver against a REAL Prefect server and a REAL served deployment of `continuous_training`.

Topology (everything on 127.0.0.1, everything stopped at the end):

* the session's Prefect test server (`prefect_server` fixture: `prefect_test_harness`, SQLite);
* `python -m ctpipeline serve --config <pipeline.yaml>` in a subprocess (its own session, so the
  whole process group, flow-run children included, is stopped with one signal): it registers the deployment
  `continuous-training/<pipeline>` and runs it as `prefect.serve` does; flow runs execute in child processes;
* the webhook app under uvicorn in a thread of this process, with a real `PrefectLauncher`.

A signed alert must start exactly one flow run, which reaches Completed; 100 copies of it within seconds, and
bad signatures, stale timestamps and malformed JSON, must start nothing more.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from webhook_support import RUN_TIMEOUT_S, runs_of, serve_process, tail, uvicorn_app, wait_for_deployment

from ctpipeline.adapters.prefect.launcher import LaunchError, PrefectLauncher
from ctpipeline.core import data
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing
from ctpipeline.webhook.app import create_app
from ctpipeline.webhook.auth import signed_headers
from ctpipeline.webhook.payloads import Alert
from ctpipeline.webhook.settings import WebhookSettings

from conftest import free_port

pytestmark = pytest.mark.integration

SECRET = b"integration-test-secret-5f1d2c"


def test_signed_alert_starts_one_served_flow_run_and_storms_start_nothing(prefect_server, small_pipeline, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from conftest import make_flights_like

    t_start = time.monotonic()
    cfg_path, state = small_pipeline
    # a pipeline (= deployment) name of its own: other tests of the session may serve `flights-delay` too
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["name"] = f"webhook-it-{uuid.uuid4().hex[:8]}"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    p = Pipeline.open(cfg_path, state)
    batches = data.split_batches(make_flights_like(1500, seed=5, months=1), p.cfg.data)
    assert len(landing.land(batches, p.landing_dir)) == 1
    api_url = PREFECT_API_URL.value()
    deployment_name = f"continuous-training/{p.name}"
    timings: dict[str, float] = {}

    with serve_process(cfg_path, state, api_url, tmp_path) as (proc, log_path), get_client(sync_client=True) as client:
        dep = wait_for_deployment(client, deployment_name, proc, log_path)
        timings["deployment registered"] = time.monotonic() - t_start
        assert dep.parameters["trigger"] == "schedule" and dep.parameters["config"] == str(Path(cfg_path).resolve())
        # serve_deployments created the per-model training slot (one), so strict acquisition can find it
        assert client.read_global_concurrency_limit_by_name(f"train-{p.name}").limit == 1
        assert runs_of(client, dep.id) == []

        settings = WebhookSettings(
            models={p.name: deployment_name},
            state_path=str(tmp_path / "webhook.db"),
            cooldown_minutes=30,
            dedupe_window_minutes=60,
        )
        app = create_app(settings, PrefectLauncher(api_url=api_url), secret=SECRET)
        with uvicorn_app(app) as base, httpx.Client(base_url=base, timeout=30) as http:
            alert = json.dumps(
                {"model": p.name, "reason": "integration: drift share 0.5", "dedupe_key": "drift-2013-01"}
            ).encode()
            t0 = time.monotonic()
            r = http.post("/alerts", content=alert, headers=signed_headers(SECRET, alert))
            timings["first answer"] = time.monotonic() - t0
            assert r.status_code == 202, r.text
            (run,) = r.json()["runs"]
            assert run["status"] == "started", run
            flow_run_id = run["flow_run_id"]

            # the served deployment picks the run up and completes it
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while True:
                fr = client.read_flow_run(flow_run_id)
                if fr.state and fr.state.is_final():
                    break
                assert proc.poll() is None, f"serve exited with {proc.returncode}:\n{tail(log_path)}"
                assert time.monotonic() < deadline, (
                    f"flow run still {fr.state.name if fr.state else None} after {RUN_TIMEOUT_S}s:\n{tail(log_path)}"
                )
                time.sleep(1)
            timings["run final"] = time.monotonic() - t0
            assert fr.state.is_completed(), f"{fr.state.name}: {fr.state.message}\n{tail(log_path)}"
            assert fr.deployment_id == dep.id
            assert fr.parameters["trigger"] == "webhook"
            assert fr.parameters["config"] == str(Path(cfg_path).resolve())  # the deployment's default, merged
            assert "ctp-webhook" in fr.tags and "source:generic" in fr.tags
            assert "alert:generic:drift-2013-01" in fr.tags
            # the cycle really ran, and recorded the trigger on its MLflow run
            (rec,) = p.batch_log.records()
            assert rec["status"] == "accepted" and rec["outcome"] == "accumulating"
            import mlflow

            tags = mlflow.MlflowClient(tracking_uri=p.tracking_uri).get_run(rec["run_id"]).data.tags
            assert tags["ctp.trigger"] == "webhook"

            # a storm: the same alert 100 times within a few seconds, concurrently
            t1 = time.monotonic()
            headers = signed_headers(SECRET, alert)
            with ThreadPoolExecutor(max_workers=16) as pool:
                storm = list(pool.map(lambda _: http.post("/alerts", content=alert, headers=headers), range(100)))
            timings["100 duplicates"] = time.monotonic() - t1
            assert {s.status_code for s in storm} == {202}
            assert {s.json()["runs"][0]["status"] for s in storm} == {"duplicate"}
            assert {s.json()["runs"][0]["flow_run_id"] for s in storm} == {flow_run_id}
            # another alert for the same model, within the cooldown
            other = json.dumps({"model": p.name, "reason": "volume", "dedupe_key": "volume-1"}).encode()
            r = http.post("/alerts", content=other, headers=signed_headers(SECRET, other))
            assert r.status_code == 202 and r.json()["runs"][0]["status"] == "cooldown"

            # bad input: each gets its 4xx
            fresh = json.dumps({"model": p.name, "reason": "attack", "dedupe_key": "never-1"}).encode()
            bad_sig = {**signed_headers(SECRET, fresh), "X-CTP-Signature": "sha256=" + "ab" * 32}
            assert http.post("/alerts", content=fresh, headers=bad_sig).status_code == 401
            stale = signed_headers(SECRET, fresh, timestamp=int(time.time()) - 3600)
            r = http.post("/alerts", content=fresh, headers=stale)
            assert r.status_code == 401 and "stale timestamp" in r.json()["error"]
            malformed = b'{"model": "' + p.name.encode() + b'", "reason": '
            r = http.post("/alerts", content=malformed, headers=signed_headers(SECRET, malformed))
            assert r.status_code == 422 and "not valid JSON" in r.json()["error"]
            assert http.get("/healthz").json()["status"] == "ok"

        # exactly one flow run of the deployment, whatever came after
        runs = runs_of(client, dep.id)
        assert [str(r.id) for r in runs] == [flow_run_id], [(r.name, r.state_name) for r in runs]
        assert len(app.state.webhook_state.launches()) == 1
    timings["total"] = time.monotonic() - t_start
    print("\nwebhook integration timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def test_launcher_reports_unreachable_prefect_and_missing_deployment(prefect_server):
    from prefect.settings import PREFECT_API_URL

    alert = Alert(model="m", status="firing", dedupe_key="generic:x", reason="r", labels={}, source="generic")
    t0 = time.monotonic()
    with pytest.raises(LaunchError, match="unavailable"):
        PrefectLauncher(api_url=f"http://127.0.0.1:{free_port()}/api").launch("m", "continuous-training/m", alert)
    assert time.monotonic() - t0 < 15  # a refused connection fails fast: no retry storm while an alert waits
    with pytest.raises(LaunchError, match="not found"):
        PrefectLauncher(api_url=PREFECT_API_URL.value()).launch("m", "continuous-training/no-such-deployment", alert)


def test_training_slot_is_strict_and_holds_one_run_per_model(prefect_server):
    from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError

    from ctpipeline.adapters.prefect.concurrency import ensure_concurrency_limit, slot_name, training_slot

    # strict: a missing limit is an error, not a silent no-op
    with pytest.raises(ConcurrencySlotAcquisitionError, match="must be created"):
        with training_slot("model-without-limit", timeout_seconds=5):
            pass

    ensure_concurrency_limit(slot_name("slot-test"), 1)
    ensure_concurrency_limit(slot_name("slot-test"), 1)  # idempotent
    outcome: dict[str, object] = {}

    def contender():
        try:
            with training_slot("slot-test", timeout_seconds=2):
                outcome["got"] = True
        except TimeoutError as exc:
            outcome["timeout"] = exc

    with training_slot("slot-test"):
        t = threading.Thread(target=contender)
        t.start()
        t.join(timeout=60)
    assert not t.is_alive()
    assert "timeout" in outcome and "got" not in outcome
    with training_slot("slot-test", timeout_seconds=10):  # released: free again
        pass

    from prefect.client.orchestration import get_client

    ensure_concurrency_limit(slot_name("slot-test"), 2)  # resized
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("train-slot-test").limit == 2
