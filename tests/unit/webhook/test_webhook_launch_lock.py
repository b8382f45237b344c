"""A launch holds no lock while the launcher talks to Prefect: the launch is claimed (pending id with a lease),
the lock released, the launcher called, the result recorded. Meanwhile the SQLite file is free for other
writers, other models launch, a copy of the alert is a duplicate and another alert of the model a cooldown;
a failed launch releases its claim and keeps its id; a claim whose lease ran out (receiver died) counts no more."""

from __future__ import annotations

import sqlite3
import threading
import time

from fastapi.testclient import TestClient

from ctpipeline.core.admission import LAUNCH_LEASE_SECONDS
from ctpipeline.webhook.app import create_app
from ctpipeline.webhook.store import PendingLaunch, WebhookState

from conftest import GENERIC_ALERT, WEBHOOK_SECRET, WEBHOOK_T0, Clock, FakeLauncher, make_webhook_settings, post_alert


class BlockingLauncher(FakeLauncher):
    """The first launch for `model` waits until released (a slow Prefect API)."""

    def __init__(self, model: str = "flights-delay"):
        super().__init__()
        self.model, self.entered, self.release = model, threading.Event(), threading.Event()
        self.ids: list[str | None] = []

    def launch(self, model, deployment, alert):
        self.ids.append(alert.launch_id)
        if model == self.model and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
        return super().launch(model, deployment, alert)


def test_no_lock_is_held_while_prefect_is_called(tmp_path):
    clock, launcher = Clock(), BlockingLauncher()
    settings = make_webhook_settings(tmp_path)
    app = create_app(settings, launcher, now=clock, secret=WEBHOOK_SECRET)
    first: dict = {}
    t = threading.Thread(target=lambda: first.setdefault("r", post_alert(TestClient(app), GENERIC_ALERT)))
    t.start()
    try:
        assert launcher.entered.wait(10)
        # the SQLite file is free: another writer gets its write lock at once
        conn = sqlite3.connect(settings.state_path, timeout=0.5, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        conn.close()
        client = TestClient(app)
        t0 = time.monotonic()
        other_model = post_alert(client, {**GENERIC_ALERT, "model": "churn"}).json()["runs"][0]
        copy = post_alert(client, GENERIC_ALERT).json()["runs"][0]
        other_alert = post_alert(client, {**GENERIC_ALERT, "dedupe_key": "perf-1"}).json()["runs"][0]
        assert time.monotonic() - t0 < 5  # none of them waited for the launch in flight
        assert other_model["status"] == "started"
        assert copy["status"] == "duplicate" and "in flight" in copy["reason"] and copy["flow_run_id"] is None
        assert other_alert["status"] == "cooldown" and "being started" in other_alert["reason"]
        assert [c[0] for c in launcher.calls] == ["churn"]
    finally:
        launcher.release.set()
        t.join(30)
    assert first["r"].status_code == 202 and first["r"].json()["runs"][0]["status"] == "started"
    again = post_alert(TestClient(app), GENERIC_ALERT).json()["runs"][0]
    assert again["status"] == "duplicate" and again["flow_run_id"] == "run-2"
    with WebhookState(settings.state_path).transaction("flights-delay") as tx:
        assert tx.pending("flights-delay", "generic:drift-1") is None  # the claim is gone once recorded
    assert len(launcher.calls) == 2


def test_a_failed_launch_releases_its_claim_and_the_retry_reuses_the_id(tmp_path):
    clock, launcher = Clock(), FakeLauncher()
    settings = make_webhook_settings(tmp_path)
    app = create_app(settings, launcher, now=clock, secret=WEBHOOK_SECRET)
    client = TestClient(app)
    ids = []
    original = launcher.launch
    launcher.launch = lambda m, d, a: (ids.append(a.launch_id), original(m, d, a))[1]
    launcher.fail = ConnectionError("refused")
    assert post_alert(client, GENERIC_ALERT).status_code == 503
    with WebhookState(settings.state_path).transaction("flights-delay") as tx:
        pending = tx.pending("flights-delay", "generic:drift-1")
        assert pending.in_flight_until is None and pending.launch_id == ids[0]
        assert tx.in_flight_for_model("flights-delay") is None
    # another alert of the model is not held back by the failed launch
    launcher.fail = None
    clock.t += 5
    assert post_alert(client, GENERIC_ALERT, ts=clock.t).json()["runs"][0]["status"] == "started"
    assert ids[0] == ids[1]


def test_a_claim_left_by_a_receiver_that_died_lapses_after_its_lease(tmp_path):
    clock, launcher = Clock(), FakeLauncher()
    settings = make_webhook_settings(tmp_path)
    with WebhookState(settings.state_path).transaction("flights-delay") as tx:
        tx.set_pending(
            "flights-delay", "generic:drift-1", PendingLaunch("ctp-webhook-dead", WEBHOOK_T0, WEBHOOK_T0 + 120)
        )
    client = TestClient(create_app(settings, launcher, now=clock, secret=WEBHOOK_SECRET))
    r = post_alert(client, GENERIC_ALERT).json()["runs"][0]
    assert r["status"] == "duplicate" and "in flight" in r["reason"]
    assert post_alert(client, {**GENERIC_ALERT, "dedupe_key": "x"}).json()["runs"][0]["status"] == "cooldown"
    clock.t = WEBHOOK_T0 + LAUNCH_LEASE_SECONDS + 1
    r = post_alert(client, GENERIC_ALERT, ts=clock.t).json()["runs"][0]
    assert r["status"] == "started"
    # the id of the dead receiver's launch is reused: if it had created the run, Prefect returns that same run
    assert launcher.calls[0][2].launch_id == "ctp-webhook-dead"


def test_an_older_state_file_gets_the_new_columns(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE pending (model TEXT NOT NULL, dedupe_key TEXT NOT NULL, launch_id TEXT NOT NULL,"
        " created_at REAL NOT NULL, PRIMARY KEY (model, dedupe_key));"
        "CREATE TABLE launches (launched_at REAL NOT NULL, model TEXT NOT NULL, dedupe_key TEXT NOT NULL,"
        " flow_run_id TEXT NOT NULL, source TEXT, reason TEXT);"
        "INSERT INTO pending VALUES ('m', 'k', 'id-1', 1.0);"
    )
    conn.commit()
    conn.close()
    state = WebhookState(path)
    WebhookState(path)  # opening again is a no-op
    with state.transaction("m") as tx:
        assert tx.pending("m", "k") == PendingLaunch("id-1", 1.0, None)
