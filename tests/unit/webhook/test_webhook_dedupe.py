"""Dedupe window and cooldown through the receiver: storms of one alert start one run (sequential, threads,
asyncio), launch failures give 503 and keep the launch id for the retry, and the state survives a restart."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient

from ctpipeline.webhook.app import create_app
from ctpipeline.webhook.auth import signed_headers

from conftest import (
    GENERIC_ALERT,
    WEBHOOK_SECRET,
    WEBHOOK_T0,
    FakeLauncher,
    body_of,
    make_webhook_settings,
    post_alert,
)


def test_same_alert_100_more_times_sequentially_and_from_threads_starts_nothing(
    webhook_client, webhook_launcher, webhook_app
):
    assert post_alert(webhook_client, GENERIC_ALERT).json()["runs"][0]["status"] == "started"
    for _ in range(50):
        r = post_alert(webhook_client, GENERIC_ALERT)
        assert r.status_code == 202 and r.json()["runs"][0]["status"] == "duplicate"
        assert r.json()["runs"][0]["flow_run_id"] == "run-1"

    def one(_):
        return post_alert(TestClient(webhook_app), GENERIC_ALERT)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(50)))
    assert {r.status_code for r in results} == {202}
    assert {r.json()["runs"][0]["status"] for r in results} == {"duplicate"}
    assert len(webhook_launcher.calls) == 1


def test_100_concurrent_identical_alerts_start_exactly_one_run(tmp_path, webhook_clock):
    launcher = FakeLauncher(delay=0.05)  # a slow launch: the other 99 requests arrive while it is under way
    app = create_app(make_webhook_settings(tmp_path), launcher, now=webhook_clock, secret=WEBHOOK_SECRET)
    body = body_of(GENERIC_ALERT)

    async def storm():
        transport = httpx.ASGITransport(app=app)
        headers = signed_headers(WEBHOOK_SECRET, body, timestamp=int(WEBHOOK_T0))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            return await asyncio.gather(*[ac.post("/alerts", content=body, headers=headers) for _ in range(100)])

    responses = asyncio.run(storm())
    statuses = [r.json()["runs"][0]["status"] for r in responses]
    assert {r.status_code for r in responses} == {202}
    assert statuses.count("started") == 1 and statuses.count("duplicate") == 99
    assert len(launcher.calls) == 1


def test_100_identical_alerts_from_threads_on_a_fresh_app_start_exactly_one_run(tmp_path, webhook_clock):
    launcher = FakeLauncher(delay=0.05)
    app = create_app(make_webhook_settings(tmp_path), launcher, now=webhook_clock, secret=WEBHOOK_SECRET)
    barrier = threading.Barrier(20)

    def one(i):
        c = TestClient(app)
        if i < 20:
            barrier.wait()
        return post_alert(c, GENERIC_ALERT)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(one, range(100)))
    statuses = [r.json()["runs"][0]["status"] for r in responses]
    assert statuses.count("started") == 1 and statuses.count("duplicate") == 99
    assert len(launcher.calls) == 1


def test_other_alert_within_cooldown_then_after_cooldown_and_after_dedupe_window(
    webhook_client, webhook_launcher, webhook_clock
):
    assert post_alert(webhook_client, GENERIC_ALERT).json()["runs"][0]["status"] == "started"
    other = {**GENERIC_ALERT, "dedupe_key": "perf-drop-7", "reason": "AUC dropped"}
    webhook_clock.t += 10 * 60
    r = post_alert(webhook_client, other, ts=webhook_clock.t).json()["runs"][0]
    assert r["status"] == "cooldown" and "cooldown" in r["reason"] and r["flow_run_id"] == "run-1"
    # another model is not affected by this model's cooldown
    r = post_alert(webhook_client, {**other, "model": "churn"}, ts=webhook_clock.t).json()["runs"][0]
    assert r["status"] == "started"
    # cooldown (30 min) over: the other alert starts a run; the first one is still within its dedupe window
    webhook_clock.t = WEBHOOK_T0 + 31 * 60
    assert post_alert(webhook_client, other, ts=webhook_clock.t).json()["runs"][0]["status"] == "started"
    webhook_clock.t = WEBHOOK_T0 + 45 * 60
    assert post_alert(webhook_client, GENERIC_ALERT, ts=webhook_clock.t).json()["runs"][0]["status"] == "duplicate"
    # dedupe window (60 min) and cooldown over: the same alert, still firing, starts a new run
    webhook_clock.t = WEBHOOK_T0 + 62 * 60
    assert post_alert(webhook_client, GENERIC_ALERT, ts=webhook_clock.t).json()["runs"][0]["status"] == "started"
    assert [c[0] for c in webhook_launcher.calls] == ["flights-delay", "churn", "flights-delay", "flights-delay"]


def test_generic_alert_without_dedupe_key_dedupes_on_its_content(webhook_client, webhook_launcher):
    a = {"model": "flights-delay", "reason": "volume: 3 new batches"}
    assert post_alert(webhook_client, a).json()["runs"][0]["status"] == "started"
    assert post_alert(webhook_client, a).json()["runs"][0]["status"] == "duplicate"
    assert len(webhook_launcher.calls) == 1


# --------------------------------------------------------------------------- launch failures and restarts


def test_launch_failure_is_503_and_a_retry_later_succeeds_with_the_same_launch_id(
    webhook_client, webhook_launcher, webhook_app
):
    seen_ids = []
    webhook_launcher.fail = ConnectionError("Prefect API http://127.0.0.1:4200/api unreachable")
    original = webhook_launcher.launch

    def spy(model, deployment, alert):
        seen_ids.append(alert.launch_id)
        return original(model, deployment, alert)

    webhook_launcher.launch = spy
    r = post_alert(webhook_client, GENERIC_ALERT)
    assert r.status_code == 503 and "unreachable" in r.json()["error"]
    assert r.headers["Retry-After"] == "30"
    assert r.json()["runs"][0]["status"] == "launch-failed"
    # nothing recorded: neither the dedupe key nor the cooldown
    assert webhook_app.state.webhook_state.launches() == []
    webhook_launcher.fail = None
    r = post_alert(webhook_client, GENERIC_ALERT)
    assert r.status_code == 202 and r.json()["runs"][0]["status"] == "started"
    assert len(webhook_launcher.calls) == 1
    # the retry reused the launch id: a webhook_launcher passing it as Prefect idempotency key cannot create two runs
    assert len(seen_ids) == 2 and seen_ids[0] == seen_ids[1]
    assert post_alert(webhook_client, GENERIC_ALERT).json()["runs"][0]["status"] == "duplicate"


def test_state_survives_a_restart(tmp_path, webhook_clock):
    first = FakeLauncher()
    c1 = TestClient(create_app(make_webhook_settings(tmp_path), first, now=webhook_clock, secret=WEBHOOK_SECRET))
    assert post_alert(c1, GENERIC_ALERT).json()["runs"][0]["status"] == "started"
    # a second app (a restarted receiver) on the same SQLite file
    second = FakeLauncher()
    app2 = create_app(make_webhook_settings(tmp_path), second, now=webhook_clock, secret=WEBHOOK_SECRET)
    c2 = TestClient(app2)
    assert post_alert(c2, GENERIC_ALERT).json()["runs"][0]["status"] == "duplicate"
    assert post_alert(c2, {**GENERIC_ALERT, "dedupe_key": "other"}).json()["runs"][0]["status"] == "cooldown"
    assert second.calls == []
    (row,) = app2.state.webhook_state.launches()
    assert row["model"] == "flights-delay" and row["flow_run_id"] == "run-1" and row["source"] == "generic"
