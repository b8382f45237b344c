"""A REAL Alertmanager (Debian's prometheus-alertmanager) drives retraining through the receiver.

Topology, all on 127.0.0.1, all stopped at the end:

* the session's Prefect test server, and `python -m ctpipeline serve` serving `continuous-training/<pipeline>`;
* the receiver under uvicorn in a thread, with a real PrefectLauncher, senders `alertmanager` (Authorization:
  Bearer, the token Alertmanager reads from `credentials_file`) and `grafana` (Grafana's HMAC with timestamp);
* `prometheus-alertmanager` with a webhook receiver pointing at it (short group_wait / group_interval /
  repeat_interval), clustering off.

An alert POSTed to Alertmanager's API (/api/v2/alerts) is delivered, accepted, and starts exactly one flow run,
whose MLflow run carries the alert's reason, name and sender in its tags; Alertmanager repeating the alert
(repeat_interval) starts no second run inside the dedupe window. A Grafana-format payload signed with Grafana's
scheme is accepted; a tampered one is refused. Printed: alert-to-run-start and alert-to-run-completed seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import yaml
from webhook_support import (
    RUN_TIMEOUT_S,
    Recorder,
    alertmanager_process,
    runs_of,
    serve_process,
    tail,
    uvicorn_app,
    wait_until,
)

from ctpipeline.adapters.prefect.launcher import PrefectLauncher
from ctpipeline.core import data
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing
from ctpipeline.webhook.app import create_app
from ctpipeline.webhook.settings import WebhookSettings

from conftest import ROOT, grafana_payload, require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AM_TOKEN = "alertmanager-bearer-token-" + uuid.uuid4().hex
GRAFANA_SECRET = "grafana-hmac-secret-" + uuid.uuid4().hex
SUMMARY = "drift share 0.41 above 0.30 (integration)"


def alertmanager_binary() -> str:
    return require_binary(
        "prometheus-alertmanager",
        shutil.which("alertmanager") or "/usr/bin/alertmanager",
        "/usr/bin/prometheus-alertmanager",
    )


def amtool_binary() -> str:
    return require_binary("amtool", "/usr/bin/amtool", "/usr/local/bin/amtool")


def alertmanager_config(receiver_url: str, token_file: Path) -> dict:
    return {
        "route": {
            "receiver": "ctp-retrain",  # the root route's default receiver: amtool check-config demands one
            "group_by": ["alertname", "model"],
            "group_wait": "1s",
            "group_interval": "2s",
            "repeat_interval": "4s",
        },
        "receivers": [
            {
                "name": "ctp-retrain",
                "webhook_configs": [
                    {
                        "url": receiver_url,
                        "send_resolved": False,
                        "max_alerts": 50,
                        "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}},
                    }
                ],
            }
        ],
    }


def amtool_check(amtool: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def docs_alertmanager_snippet() -> str:
    """The `alertmanager.yml` block of docs/webhook.md (the yaml block holding `webhook_configs`)."""
    text = (ROOT / "docs" / "webhook.md").read_text()
    blocks = [b.split("\n", 1)[1] for b in text.split("```yaml")[1:]]
    (snippet,) = [b.split("```", 1)[0] for b in blocks if "webhook_configs:" in b]
    return snippet


def test_amtool_accepts_the_docs_snippet_and_refuses_one_without_a_default_receiver(tmp_path):
    amtool = amtool_binary()
    snippet = tmp_path / "alertmanager.yml"
    snippet.write_text(docs_alertmanager_snippet())
    out = amtool_check(amtool, snippet)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout
    broken = yaml.safe_load(snippet.read_text())
    del broken["route"]["receiver"]
    snippet.write_text(yaml.safe_dump(broken))
    out = amtool_check(amtool, snippet)
    assert out.returncode != 0 and "default receiver" in out.stdout + out.stderr


def _pipeline(small_pipeline) -> Pipeline:
    from conftest import make_flights_like

    cfg_path, state = small_pipeline
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["name"] = f"am-it-{uuid.uuid4().hex[:8]}"  # a deployment of its own in the session's Prefect server
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    p = Pipeline.open(cfg_path, state)
    assert len(landing.land(data.split_batches(make_flights_like(1500, seed=5, months=1), p.cfg.data), p.landing_dir))
    return p


def _grafana_signed(body: bytes) -> dict:
    ts = str(int(time.time()))
    sig = hmac.new(GRAFANA_SECRET.encode(), ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Grafana-Alerting-Signature": sig,
        "X-Grafana-Alerting-Timestamp": ts,
    }


def test_a_real_alertmanager_alert_starts_exactly_one_run_and_its_repeats_none(
    prefect_server, small_pipeline, tmp_path, monkeypatch
):
    import mlflow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    am_binary, amtool = alertmanager_binary(), amtool_binary()
    p = _pipeline(small_pipeline)
    api_url = PREFECT_API_URL.value()
    deployment = f"continuous-training/{p.name}"
    monkeypatch.setenv("CTP_IT_AM_TOKEN", AM_TOKEN)
    monkeypatch.setenv("CTP_IT_GRAFANA_SECRET", GRAFANA_SECRET)
    settings = WebhookSettings(
        models={p.name: deployment},
        state_path=str(tmp_path / "webhook.db"),
        dedupe_window_minutes=60,
        cooldown_minutes=30,
        senders=[
            {"name": "alertmanager", "auth": "authorization", "secret_env": "CTP_IT_AM_TOKEN"},
            {
                "name": "grafana",
                "auth": "grafana-hmac",
                "secret_env": "CTP_IT_GRAFANA_SECRET",
                "timestamp_header": "X-Grafana-Alerting-Timestamp",
            },
        ],
    )
    app = create_app(settings, PrefectLauncher(api_url=api_url))
    recorder = Recorder(app)
    token_file = tmp_path / "am-token"
    token_file.write_text(AM_TOKEN + "\n")  # Alertmanager trims the file's content
    token_file.chmod(0o600)

    with (
        serve_process(Path(p.config_file), p.paths.root, api_url, tmp_path) as (proc, serve_log),
        get_client(sync_client=True) as client,
        uvicorn_app(recorder) as base,
    ):
        am_cfg = tmp_path / "alertmanager.yml"
        am_cfg.write_text(yaml.safe_dump(alertmanager_config(f"{base}/alerts", token_file)))
        check = amtool_check(amtool, am_cfg)
        assert check.returncode == 0, check.stdout + check.stderr
        dep = wait_until(
            f"deployment {deployment}",
            lambda: _deployment(client, deployment),
            90,
            0.5,
            lambda: tail(serve_log),
        )
        with alertmanager_process(am_binary, am_cfg, tmp_path) as (am, am_log):
            alert = {
                "labels": {"alertname": "FlightsDelayDrift", "model": p.name, "retrain": "true"},
                "annotations": {"summary": SUMMARY},
                "generatorURL": "http://127.0.0.1/graph",
            }
            t_alert = time.time()
            r = httpx.post(f"{am}/api/v2/alerts", json=[alert], timeout=10)
            assert r.status_code == 200, r.text

            def started():
                return next((x for x in recorder.alerts() if x["status"] == 202), None)

            first = wait_until("delivery from Alertmanager", started, 60, on_fail=lambda: tail(am_log))
            t_delivered = first["t"]
            assert first["agent"].startswith("Alertmanager/"), first["agent"]
            (run,) = first["answer"]["runs"]
            assert run["status"] == "started" and run["source"] == "alertmanager", run
            flow_run_id = run["flow_run_id"]

            def final():
                fr = client.read_flow_run(flow_run_id)
                assert proc.poll() is None, f"serve exited:\n{tail(serve_log)}"
                return fr if fr.state and fr.state.is_final() else None

            fr = wait_until("the flow run to finish", final, RUN_TIMEOUT_S, 1, lambda: tail(serve_log))
            t_final_seen = time.time()
            # Alertmanager re-sends the still-firing alert every repeat_interval: each is a duplicate
            repeats = wait_until(
                "a repeated notification", lambda: recorder.alerts()[1:], 40, on_fail=lambda: tail(am_log)
            )

        assert fr.state.is_completed(), f"{fr.state.name}: {fr.state.message}\n{tail(serve_log)}"
        assert fr.deployment_id == dep.id and fr.parameters["trigger"] == "webhook"
        assert fr.parameters["alert"]["reason"] == SUMMARY
        assert fr.parameters["alert"]["name"] == "FlightsDelayDrift"
        assert fr.parameters["alert"]["sender"] == "alertmanager"
        assert fr.parameters["alert"]["receiver"] == "ctp-retrain"
        assert "sender:alertmanager" in fr.tags and "source:alertmanager" in fr.tags
        for rep in repeats:
            assert rep["status"] == 202, rep
            assert [x["status"] for x in rep["answer"]["runs"]] == ["duplicate"]
            assert rep["answer"]["runs"][0]["flow_run_id"] == flow_run_id
        assert all(x["status"] == 202 for x in recorder.alerts())  # Alertmanager's token was right every time

        # the MLflow run of the cycle carries the alert; the batch log says which alert caused it
        (rec,) = p.batch_log.records()
        assert rec["status"] == "accepted" and rec["trigger"] == "webhook" and rec["alert"]["reason"] == SUMMARY
        tags = mlflow.MlflowClient(tracking_uri=p.tracking_uri).get_run(rec["run_id"]).data.tags
        assert tags["ctp.trigger"] == "webhook" and tags["ctp.alert.reason"] == SUMMARY
        assert tags["ctp.alert.name"] == "FlightsDelayDrift" and tags["ctp.alert.sender"] == "alertmanager"

        # a Grafana notification signed with Grafana's scheme is accepted (the model is in its cooldown now)
        with httpx.Client(base_url=base, timeout=30) as http:
            body = json.dumps(grafana_payload(pipeline=p.name)).encode()
            r = http.post("/alerts", content=body, headers=_grafana_signed(body))
            assert r.status_code == 202 and r.json()["runs"][0]["status"] == "cooldown", r.text
            tampered = body.replace(b"AUC fell below 0.7", b"AUC fell below 0.1")
            r = http.post("/alerts", content=tampered, headers=_grafana_signed(body))
            assert r.status_code == 401 and r.json()["error"] == "signature mismatch"
            wrong = {"Content-Type": "application/json", "Authorization": "Bearer wrong-token-0123456789"}
            r = http.post("/alerts", content=body, headers=wrong)
            assert r.status_code == 401 and r.json()["error"] == "credentials do not match"

        runs = runs_of(client, dep.id)
        assert [str(x.id) for x in runs] == [flow_run_id], [(x.name, x.state_name) for x in runs]
        assert len(app.state.webhook_state.launches()) == 1

    to_start = _seconds(fr.start_time) - t_alert
    to_done = _seconds(fr.end_time) - t_alert
    print(
        f"\nalertmanager -> run: delivered {t_delivered - t_alert:.1f}s, alert-to-run-start {to_start:.1f}s, "
        f"alert-to-run-completed {to_done:.1f}s (seen {t_final_seen - t_alert:.1f}s); "
        f"{len(repeats)} repeat(s) from Alertmanager, all duplicates"
    )


def _deployment(client, name: str):
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(name)
    except ObjectNotFound:
        return None


def _seconds(ts: datetime) -> float:
    return ts.timestamp()
