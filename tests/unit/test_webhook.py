"""The webhook receiver with a fake launcher: authentication, payload shapes, dedupe, cooldown, concurrency,
launch failures, restarts, and fuzzed input that must never give a 500."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from ctpipeline.errors import ConfigError, CtpError
from ctpipeline.webhook.app import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Alert,
    WebhookSettings,
    create_app,
    load_webhook_settings,
    normalise,
    sign,
    signed_headers,
)

SECRET = b"unit-test-secret-0123456789abcdef"
T0 = 1_750_000_000.0
MODELS = {"flights-delay": "continuous-training/flights-delay", "churn": "continuous-training/churn"}


class Clock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeLauncher:
    """Records launches; can fail on demand; sleeps a little so that concurrent requests overlap."""

    def __init__(self, delay: float = 0.0):
        self.calls: list[tuple[str, str, Alert]] = []
        self.fail: Exception | None = None
        self.delay = delay
        self._lock = threading.Lock()

    def launch(self, model: str, deployment: str, alert: Alert) -> str:
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        with self._lock:
            self.calls.append((model, deployment, alert))
            return f"run-{len(self.calls)}"


def make_settings(tmp_path, **kw) -> WebhookSettings:
    return WebhookSettings(models=MODELS, state_path=str(tmp_path / "webhook.db"), **kw)


@pytest.fixture(autouse=True)
def _restore_ctpipeline_logger():
    """CLI entry points configure the `ctpipeline` logger with a handler on the (captured) stderr: undo it."""
    import logging

    log = logging.getLogger("ctpipeline")
    saved = (list(log.handlers), log.level)
    yield
    log.handlers[:] = saved[0]
    log.setLevel(saved[1])


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def launcher():
    return FakeLauncher()


@pytest.fixture
def app(tmp_path, launcher, clock):
    return create_app(make_settings(tmp_path), launcher, now=clock, secret=SECRET)


@pytest.fixture
def client(app):
    return TestClient(app)


def body_of(payload) -> bytes:
    return json.dumps(payload).encode()


def post(client, payload=None, *, body: bytes | None = None, ts: float | None = None, secret: bytes = SECRET,
         headers: dict | None = None):
    body = body_of(payload) if body is None else body
    h = signed_headers(secret, body, timestamp=int(T0 if ts is None else ts))
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    return client.post("/alerts", content=body, headers=h)


GENERIC = {"model": "flights-delay", "reason": "drift share 0.4 > 0.3", "status": "firing", "dedupe_key": "drift-1"}


def alertmanager(status="firing", model="flights-delay", fingerprint="1a30ba71cca2921f",
                 starts="2026-02-06T13:08:45.828Z"):
    return {
        "receiver": "ctp", "status": status, "version": "4", "truncatedAlerts": 0,
        "groupKey": '{}/{severity="critical"}:{alertname="ModelDrift"}',
        "groupLabels": {"alertname": "ModelDrift"},
        "commonLabels": {"alertname": "ModelDrift", "severity": "critical"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "ModelDrift", "model": model, "severity": "critical"},
            "annotations": {"summary": "prediction drift above threshold", "description": "share 0.42"},
            "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=drift", "fingerprint": fingerprint,
        }],
    }


def grafana(status="firing", pipeline="churn", fingerprint="c6eadffa33fcdf37"):
    return {
        "receiver": "ctp", "status": status, "orgId": 1, "version": "1", "truncatedAlerts": 0,
        "groupKey": '{}:{alertname="Churn AUC drop"}', "groupLabels": {"alertname": "Churn AUC drop"},
        "commonLabels": {"alertname": "Churn AUC drop"}, "commonAnnotations": {},
        "externalURL": "https://grafana.example/", "title": f"[{status.upper()}:1] Churn AUC drop",
        "state": "alerting" if status == "firing" else "ok", "message": "AUC fell below 0.7",
        "alerts": [{
            "status": status, "labels": {"alertname": "Churn AUC drop", "pipeline": pipeline},
            "annotations": {"description": "AUC 0.66 on the last labelled batch"},
            "startsAt": "2026-03-01T09:51:03.157076+02:00", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://grafana.example/alerting/1afz29v7z/edit", "fingerprint": fingerprint,
            "silenceURL": "https://grafana.example/alerting/silence/new", "dashboardURL": "", "panelURL": "",
            "values": {"B": 0.66, "C": 1},
        }],
    }


# --------------------------------------------------------------------------- signing


def test_sign_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(SECRET, b"1700000000." + b'{"a":1}', hashlib.sha256).hexdigest()
    assert sign(SECRET, "1700000000", b'{"a":1}') == "sha256=" + expected


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_recipe_from_the_docs_gives_the_same_signature():
    body, ts = '{"model": "flights-delay", "reason": "test"}', "1700000000"
    out = subprocess.run(["sh", "-c", 'printf "%s.%s" "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -hex'],
                         env={"TS": ts, "BODY": body, "SECRET": SECRET.decode(), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    assert "sha256=" + out.strip().split()[-1] == sign(SECRET, ts, body.encode())


# --------------------------------------------------------------------------- the happy path and dedupe


def test_signed_generic_alert_starts_one_run(client, launcher):
    r = post(client, GENERIC)
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["accepted"] == 1
    (run,) = out["runs"]
    assert run["model"] == "flights-delay" and run["status"] == "started" and run["flow_run_id"] == "run-1"
    assert "drift share" in run["reason"]
    (model, deployment, alert), = launcher.calls
    assert (model, deployment) == ("flights-delay", "continuous-training/flights-delay")
    assert alert.source == "generic" and alert.status == "firing" and alert.dedupe_key == "generic:drift-1"
    assert alert.launch_id and alert.launch_id.startswith("ctp-webhook-")


def test_same_alert_100_more_times_sequentially_and_from_threads_starts_nothing(client, launcher, app):
    assert post(client, GENERIC).json()["runs"][0]["status"] == "started"
    for _ in range(50):
        r = post(client, GENERIC)
        assert r.status_code == 202 and r.json()["runs"][0]["status"] == "duplicate"
        assert r.json()["runs"][0]["flow_run_id"] == "run-1"

    def one(_):
        return post(TestClient(app), GENERIC)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(50)))
    assert {r.status_code for r in results} == {202}
    assert {r.json()["runs"][0]["status"] for r in results} == {"duplicate"}
    assert len(launcher.calls) == 1


def test_100_concurrent_identical_alerts_start_exactly_one_run(tmp_path, clock):
    launcher = FakeLauncher(delay=0.05)  # a slow launch: the other 99 requests arrive while it is under way
    app = create_app(make_settings(tmp_path), launcher, now=clock, secret=SECRET)
    body = body_of(GENERIC)

    async def storm():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            return await asyncio.gather(*[
                ac.post("/alerts", content=body, headers=signed_headers(SECRET, body, timestamp=int(T0)))
                for _ in range(100)])

    responses = asyncio.run(storm())
    statuses = [r.json()["runs"][0]["status"] for r in responses]
    assert {r.status_code for r in responses} == {202}
    assert statuses.count("started") == 1 and statuses.count("duplicate") == 99
    assert len(launcher.calls) == 1


def test_100_identical_alerts_from_threads_on_a_fresh_app_start_exactly_one_run(tmp_path, clock):
    launcher = FakeLauncher(delay=0.05)
    app = create_app(make_settings(tmp_path), launcher, now=clock, secret=SECRET)
    barrier = threading.Barrier(20)

    def one(i):
        c = TestClient(app)
        if i < 20:
            barrier.wait()
        return post(c, GENERIC)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(one, range(100)))
    statuses = [r.json()["runs"][0]["status"] for r in responses]
    assert statuses.count("started") == 1 and statuses.count("duplicate") == 99
    assert len(launcher.calls) == 1


def test_other_alert_within_cooldown_then_after_cooldown_and_after_dedupe_window(client, launcher, clock):
    assert post(client, GENERIC).json()["runs"][0]["status"] == "started"
    other = {**GENERIC, "dedupe_key": "perf-drop-7", "reason": "AUC dropped"}
    clock.t += 10 * 60
    r = post(client, other, ts=clock.t).json()["runs"][0]
    assert r["status"] == "cooldown" and "cooldown" in r["reason"] and r["flow_run_id"] == "run-1"
    # another model is not affected by this model's cooldown
    assert post(client, {**other, "model": "churn"}, ts=clock.t).json()["runs"][0]["status"] == "started"
    # cooldown (30 min) over: the other alert starts a run; the first one is still within its dedupe window
    clock.t = T0 + 31 * 60
    assert post(client, other, ts=clock.t).json()["runs"][0]["status"] == "started"
    clock.t = T0 + 45 * 60
    assert post(client, GENERIC, ts=clock.t).json()["runs"][0]["status"] == "duplicate"
    # dedupe window (60 min) and cooldown over: the same alert, still firing, starts a new run
    clock.t = T0 + 62 * 60
    assert post(client, GENERIC, ts=clock.t).json()["runs"][0]["status"] == "started"
    assert [c[0] for c in launcher.calls] == ["flights-delay", "churn", "flights-delay", "flights-delay"]


def test_generic_alert_without_dedupe_key_dedupes_on_its_content(client, launcher):
    a = {"model": "flights-delay", "reason": "volume: 3 new batches"}
    assert post(client, a).json()["runs"][0]["status"] == "started"
    assert post(client, a).json()["runs"][0]["status"] == "duplicate"
    assert len(launcher.calls) == 1


# --------------------------------------------------------------------------- authentication


def test_bad_signature_missing_headers_and_stale_timestamps_get_401(client, launcher, clock):
    body = body_of(GENERIC)
    cases = {
        "wrong secret": dict(secret=b"another-secret"),
        "tampered signature": dict(headers={SIGNATURE_HEADER: "sha256=" + "0" * 64}),
        "no sha256= prefix": dict(headers={SIGNATURE_HEADER: sign(SECRET, str(int(T0)), body)[7:]}),
        "missing signature": dict(headers={SIGNATURE_HEADER: None}),
        "missing timestamp": dict(headers={TIMESTAMP_HEADER: None}),
        "non-numeric timestamp": dict(headers={TIMESTAMP_HEADER: "yesterday"}),
        "signature for another timestamp": dict(headers={TIMESTAMP_HEADER: str(int(T0) + 1)}),
    }
    for name, kw in cases.items():
        r = post(client, body=body, **kw)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json()["error"]
    # signed properly, but too old / too far in the future
    for skew in (-301, +301, -86400):
        r = post(client, body=body, ts=T0 + skew)
        assert r.status_code == 401 and "stale timestamp" in r.json()["error"], (skew, r.text)
    # within the skew it is fine
    assert post(client, body=body, ts=T0 - 299).status_code == 202
    assert len(launcher.calls) == 1


def test_tampered_body_is_rejected(client, launcher):
    body = body_of(GENERIC)
    h = signed_headers(SECRET, body, timestamp=int(T0))
    r = client.post("/alerts", content=body.replace(b"drift-1", b"drift-2"), headers=h)
    assert r.status_code == 401 and r.json()["error"] == "signature mismatch"
    assert launcher.calls == []


def test_secret_comes_from_the_environment_variable(tmp_path, monkeypatch, launcher, clock):
    settings = make_settings(tmp_path, secret_env="MY_WEBHOOK_SECRET")
    monkeypatch.delenv("MY_WEBHOOK_SECRET", raising=False)
    with pytest.raises(CtpError, match="MY_WEBHOOK_SECRET"):
        create_app(settings, launcher, now=clock)
    monkeypatch.setenv("MY_WEBHOOK_SECRET", SECRET.decode())
    c = TestClient(create_app(settings, launcher, now=clock))
    assert post(c, GENERIC).status_code == 202


# --------------------------------------------------------------------------- bad input


def test_non_json_and_wrong_shapes_get_422_with_a_clear_message(client, launcher):
    cases = {
        b"not json": "not valid JSON",
        b"": "not valid JSON",
        b'{"model": "flights-delay",': "not valid JSON",
        b'{"model": NaN}': "NaN is not allowed",
        b"[1, 2, 3]": "must be a JSON object",
        b'"flights-delay"': "must be a JSON object",
        b"null": "must be a JSON object",
        b"{}": "model: Field required",
        b'{"modle": "flights-delay"}': "modle: Extra inputs are not permitted",
        b'{"model": 42}': "model: Input should be a valid string",
        b'{"model": "flights-delay", "status": "exploded"}': "status",
        b'{"model": "flights-delay", "labels": {"a": {"b": 1}}}': "labels",
        b'{"alerts": []}': "not a valid Alertmanager alert",
        b'{"alerts": "firing"}': "not a valid Alertmanager alert",
        b'{"orgId": 1, "alerts": [{"labels": {"model": 1}}]}': "not a valid Grafana alert",
        b"\xff\xfe\x00garbage": "not valid JSON",
        b"[" * 50_000: "not valid JSON",
    }
    for body, fragment in cases.items():
        r = post(client, body=body)
        assert r.status_code == 422, (body[:40], r.status_code, r.text)
        assert fragment in r.json()["error"], (body[:40], r.json())
    assert launcher.calls == []


def test_wrong_content_type_gets_415(client, launcher):
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonp", None):
        r = post(client, GENERIC, headers={"Content-Type": ctype})
        assert r.status_code == 415, (ctype, r.text)
    assert post(client, GENERIC, headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 202
    assert len(launcher.calls) == 1


def _asgi_post(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bytes]:
    """Drive the ASGI app directly: full control over Content-Length and chunking."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/alerts", "raw_path": b"/alerts", "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 12345), "server": ("127.0.0.1", 8787)}
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_oversized_bodies_get_413_by_header_and_by_actual_size(tmp_path, launcher, clock):
    app = create_app(make_settings(tmp_path, max_body_bytes=1000), launcher, now=clock, secret=SECRET)
    client = TestClient(app)
    big = body_of({**GENERIC, "reason": "x" * 1500})
    r = post(client, body=big)  # honest Content-Length
    assert r.status_code == 413 and "1000 bytes" in r.json()["error"]
    h = signed_headers(SECRET, big, timestamp=int(T0))
    base = [(k.lower().encode(), v.encode()) for k, v in h.items()]
    # no Content-Length, streamed in chunks
    status, _ = _asgi_post(app, base, [big[i:i + 100] for i in range(0, len(big), 100)])
    assert status == 413
    # a Content-Length that lies
    status, _ = _asgi_post(app, base + [(b"content-length", b"10")], [big])
    assert status == 413
    # garbage Content-Length
    status, _ = _asgi_post(app, base + [(b"content-length", b"ten")], [big])
    assert status == 400
    # a small body still works, also streamed without Content-Length
    small = body_of(GENERIC)
    h = [(k.lower().encode(), v.encode()) for k, v in signed_headers(SECRET, small, timestamp=int(T0)).items()]
    status, out = _asgi_post(app, h, [small[:10], small[10:]])
    assert status == 202, out
    assert len(launcher.calls) == 1


# --------------------------------------------------------------------------- Alertmanager and Grafana


def test_alertmanager_firing_starts_and_resolved_is_ignored(client, launcher):
    r = post(client, alertmanager())
    assert r.status_code == 202
    (run,) = r.json()["runs"]
    assert run["status"] == "started" and run["model"] == "flights-delay"
    alert = launcher.calls[0][2]
    assert alert.source == "alertmanager" and alert.reason == "prediction drift above threshold"
    assert alert.dedupe_key == "alertmanager:1a30ba71cca2921f:2026-02-06T13:08:45.828Z"
    assert alert.labels["severity"] == "critical"
    # the same notification again (Alertmanager re-sends every repeat_interval): duplicate
    assert post(client, alertmanager()).json()["runs"][0]["status"] == "duplicate"
    r = post(client, alertmanager(status="resolved"))
    assert r.status_code == 202 and r.json()["runs"][0]["status"] == "resolved-ignored"
    assert len(launcher.calls) == 1


def test_alertmanager_without_model_label_is_unknown_model(client, launcher):
    payload = alertmanager()
    del payload["alerts"][0]["labels"]["model"]
    r = post(client, payload)
    assert r.status_code == 202
    assert r.json()["runs"][0]["status"] == "unknown-model" and "label" in r.json()["runs"][0]["reason"]
    assert launcher.calls == []


def test_alertmanager_group_with_several_alerts_starts_one_run_per_model(client, launcher):
    payload = alertmanager()
    second = json.loads(json.dumps(payload["alerts"][0]))
    second["fingerprint"] = "ffff000011112222"
    third = json.loads(json.dumps(second))
    third["fingerprint"], third["labels"]["model"] = "aaaa", "churn"
    payload["alerts"] += [second, third]
    runs = post(client, payload).json()["runs"]
    assert [r["status"] for r in runs] == ["started", "cooldown", "started"]
    assert [c[0] for c in launcher.calls] == ["flights-delay", "churn"]


def test_grafana_firing_starts_and_resolved_is_ignored(client, launcher):
    r = post(client, grafana())
    assert r.status_code == 202, r.text
    (run,) = r.json()["runs"]
    assert run["status"] == "started" and run["model"] == "churn"
    alert = launcher.calls[0][2]
    assert alert.source == "grafana" and alert.dedupe_key.startswith("grafana:c6eadffa33fcdf37:")
    assert alert.reason == "AUC 0.66 on the last labelled batch"
    assert launcher.calls[0][1] == "continuous-training/churn"
    r = post(client, grafana(status="resolved"))
    assert r.json()["runs"][0]["status"] == "resolved-ignored"
    assert len(launcher.calls) == 1


def test_unknown_model_is_reported_not_started(client, launcher):
    r = post(client, {"model": "no-such-model", "reason": "?"})
    assert r.status_code == 202
    (run,) = r.json()["runs"]
    assert run["status"] == "unknown-model" and "unknown model 'no-such-model'" in run["reason"]
    assert "flow_run_id" not in run
    assert launcher.calls == []


def test_resolved_generic_alert_is_acknowledged_and_ignored(client, launcher):
    r = post(client, {**GENERIC, "status": "resolved"})
    assert r.status_code == 202 and r.json()["runs"][0]["status"] == "resolved-ignored"
    assert launcher.calls == []


# --------------------------------------------------------------------------- launch failures and restarts


def test_launch_failure_is_503_and_a_retry_later_succeeds_with_the_same_launch_id(client, launcher, app):
    seen_ids = []
    launcher.fail = ConnectionError("Prefect API http://127.0.0.1:4200/api unreachable")
    original = launcher.launch

    def spy(model, deployment, alert):
        seen_ids.append(alert.launch_id)
        return original(model, deployment, alert)

    launcher.launch = spy
    r = post(client, GENERIC)
    assert r.status_code == 503 and "unreachable" in r.json()["error"]
    assert r.headers["Retry-After"] == "30"
    assert r.json()["runs"][0]["status"] == "launch-failed"
    # nothing recorded: neither the dedupe key nor the cooldown
    assert app.state.webhook_state.launches() == []
    launcher.fail = None
    r = post(client, GENERIC)
    assert r.status_code == 202 and r.json()["runs"][0]["status"] == "started"
    assert len(launcher.calls) == 1
    # the retry reused the launch id: a launcher passing it as Prefect idempotency key cannot create two runs
    assert len(seen_ids) == 2 and seen_ids[0] == seen_ids[1]
    assert post(client, GENERIC).json()["runs"][0]["status"] == "duplicate"


def test_state_survives_a_restart(tmp_path, clock):
    first = FakeLauncher()
    c1 = TestClient(create_app(make_settings(tmp_path), first, now=clock, secret=SECRET))
    assert post(c1, GENERIC).json()["runs"][0]["status"] == "started"
    # a second app (a restarted receiver) on the same SQLite file
    second = FakeLauncher()
    app2 = create_app(make_settings(tmp_path), second, now=clock, secret=SECRET)
    c2 = TestClient(app2)
    assert post(c2, GENERIC).json()["runs"][0]["status"] == "duplicate"
    assert post(c2, {**GENERIC, "dedupe_key": "other"}).json()["runs"][0]["status"] == "cooldown"
    assert second.calls == []
    (row,) = app2.state.webhook_state.launches()
    assert row["model"] == "flights-delay" and row["flow_run_id"] == "run-1" and row["source"] == "generic"


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "models": ["churn", "flights-delay"]}
    assert client.get("/alerts").status_code == 405


# --------------------------------------------------------------------------- fuzzing


def _random_json(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "float", "bool", "null"] + (["list", "dict"] * 2 if depth < 4 else [])
    k = rng.choice(kinds)
    if k == "str":
        return "".join(rng.choice("abcé\u2603\x00\"\\ model alerts firing resolved") for _ in range(rng.randint(0, 12)))
    if k == "int":
        return rng.choice([0, -1, 1, 2**70, rng.randint(-10**6, 10**6)])
    if k == "float":
        return rng.uniform(-1e308, 1e308)
    if k == "bool":
        return rng.random() < 0.5
    if k == "null":
        return None
    if k == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["model", "reason", "status", "dedupe_key", "labels", "alerts", "orgId", "version", "fingerprint",
            "startsAt", "annotations", "commonLabels", "pipeline", "x"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _mutate(rng: random.Random, obj):
    """Replace one random node of a valid payload with random JSON."""
    if isinstance(obj, dict) and obj and rng.random() < 0.8:
        k = rng.choice(list(obj))
        return {**obj, k: _mutate(rng, obj[k])}
    if isinstance(obj, list) and obj and rng.random() < 0.8:
        i = rng.randrange(len(obj))
        return obj[:i] + [_mutate(rng, obj[i])] + obj[i + 1:]
    return _random_json(rng)


def test_fuzzed_bodies_and_headers_never_give_500(tmp_path, clock):
    launcher = FakeLauncher()
    app = create_app(make_settings(tmp_path, max_body_bytes=4000), launcher, now=clock, secret=SECRET)
    client = TestClient(app, raise_server_exceptions=False)
    rng = random.Random(20240607)
    seeds = [GENERIC, alertmanager(), grafana(), {"model": "churn"}]
    seen = set()
    for i in range(400):
        r = rng.random()
        if r < 0.2:
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        elif r < 0.5:
            body = json.dumps(_random_json(rng)).encode()
        else:
            body = json.dumps(_mutate(rng, rng.choice(seeds))).encode()
        headers = signed_headers(SECRET, body, timestamp=int(T0))
        if rng.random() < 0.25:  # break one header at random
            name = rng.choice([SIGNATURE_HEADER, TIMESTAMP_HEADER, "Content-Type"])
            headers[name] = rng.choice(["", " ", "sha256=", "sha256=" + "g" * 64, "-1", "1e9", "99999999999999",
                                        "application/json;;", "\t", "x" * 300, "ünïcödé".encode()])
        res = client.post("/alerts", content=body, headers=headers)
        seen.add(res.status_code)
        assert res.status_code in {202, 400, 401, 413, 415, 422}, (i, body[:100], res.status_code, res.text)
        res.json()  # always a JSON answer
    # raw ASGI with arbitrary header bytes
    for i in range(100):
        body = json.dumps(_mutate(rng, GENERIC)).encode()
        hdrs = [(k.lower().encode(), v.encode()) for k, v in signed_headers(SECRET, body, timestamp=int(T0)).items()]
        hdrs.append((rng.choice([b"x-ctp-signature", b"x-ctp-timestamp", b"content-type", b"content-length"]),
                     bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))))
        status, out = _asgi_post(app, hdrs, [body])
        assert status in {202, 400, 401, 413, 415, 422}, (i, status, out)
    assert {202, 401, 422} <= seen


# --------------------------------------------------------------------------- normalisation and settings


def test_normalise_shapes():
    (a,) = normalise(alertmanager())
    assert (a.model, a.status, a.source) == ("flights-delay", "firing", "alertmanager")
    (g,) = normalise(grafana())
    assert (g.model, g.source) == ("churn", "grafana")
    no_fp = alertmanager()
    del no_fp["alerts"][0]["fingerprint"]  # old Alertmanager versions sent no fingerprint
    (n,) = normalise(no_fp)
    assert n.dedupe_key.startswith("alertmanager:") and n.dedupe_key.endswith(":2026-02-06T13:08:45.828Z")
    # the alert's status wins over the group's
    mixed = alertmanager()
    mixed["status"] = "firing"
    mixed["alerts"][0]["status"] = "resolved"
    assert normalise(mixed)[0].status == "resolved"
    (p,) = normalise({"model": "m", "labels": {"n": 3, "ok": True, "none": None}})
    assert p.labels == {"n": "3", "ok": "True", "none": ""}


def test_settings_validation_and_yaml(tmp_path):
    with pytest.raises(ValueError, match="flow-name/deployment-name"):
        WebhookSettings(models={"m": "just-a-name"}, state_path="x.db")
    with pytest.raises(ValueError):
        WebhookSettings(models={}, state_path="x.db")
    s = WebhookSettings(models=MODELS, state_path="x.db")
    with pytest.raises(Exception):
        s.cooldown_minutes = 1  # frozen
    f = tmp_path / "wh.yaml"
    f.write_text("models: {m: flow/dep}\nstate_path: state/wh.db\ncooldown_minute: 5\n")
    with pytest.raises(ConfigError, match="did you mean 'cooldown_minutes'"):
        load_webhook_settings(f)
    f.write_text("models: {m: flow/dep}\nstate_path: state/wh.db\n")
    s = load_webhook_settings(f)
    assert s.state_path == str(tmp_path / "state" / "wh.db")
    from pathlib import Path

    shipped = load_webhook_settings(Path(__file__).resolve().parents[2] / "configs" / "webhook.yaml")
    assert shipped.models["flights-delay"] == "continuous-training/flights-delay" and shipped.host == "127.0.0.1"


# --------------------------------------------------------------------------- CLI


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_webhook_send_against_a_live_receiver(tmp_path, monkeypatch, capsys, clock):
    import uvicorn

    from ctpipeline.cli.main import build_parser, main

    monkeypatch.setenv("CTP_WEBHOOK_SECRET", SECRET.decode())
    launcher = FakeLauncher()
    app = create_app(make_settings(tmp_path), launcher, secret=SECRET)  # real clock: `send` signs with it
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        url = f"http://127.0.0.1:{port}/alerts"
        assert main(["webhook", "send", "--model", "flights-delay", "--reason", "cli test", "--url", url]) == 0
        out = capsys.readouterr().out
        assert "HTTP 202" in out and '"started"' in out
        assert main(["webhook", "send", "--model", "flights-delay", "--reason", "cli test", "--url", url]) == 0
        assert '"duplicate"' in capsys.readouterr().out
        monkeypatch.setenv("OTHER_SECRET", "wrong")
        assert main(["webhook", "send", "-m", "flights-delay", "--url", url, "--secret-env", "OTHER_SECRET"]) == 1
        assert "HTTP 401" in capsys.readouterr().out
        monkeypatch.delenv("OTHER_SECRET")
        assert main(["webhook", "send", "-m", "flights-delay", "--url", url, "--secret-env", "OTHER_SECRET"]) == 1
        assert "OTHER_SECRET" in capsys.readouterr().err
        assert main(["webhook", "send", "-m", "x", "--url", f"http://127.0.0.1:{_free_port()}/alerts"]) == 1
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert len(launcher.calls) == 1 and launcher.calls[0][2].reason == "cli test"

    args = build_parser().parse_args(["serve", "-c", "a.yaml", "--config", "b.yaml", "--cron", "0 6 * * *"])
    assert args.config == ["a.yaml", "b.yaml"] and args.cron == "0 6 * * *" and callable(args.func)
    args = build_parser().parse_args(["webhook", "serve"])
    assert args.config == "configs/webhook.yaml" and args.func.__name__ == "cmd_webhook_serve"


def test_add_commands_plugs_into_an_existing_parser():
    import argparse

    from ctpipeline.cli.webhook import add_commands

    ap = argparse.ArgumentParser(prog="ctp")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("run")
    add_commands(sub)
    args = ap.parse_args(["webhook", "send", "--model", "m"])
    assert args.url == "http://127.0.0.1:8787/alerts" and args.func.__name__ == "cmd_webhook_send"


def test_cli_webhook_serve_fails_early_without_secret_or_prefect(tmp_path, monkeypatch, capsys):
    from ctpipeline.cli.main import main

    cfg = tmp_path / "wh.yaml"
    cfg.write_text(f"models: {{m: flow/dep}}\nstate_path: {tmp_path / 'wh.db'}\n")
    monkeypatch.delenv("CTP_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    assert main(["webhook", "serve", "--config", str(cfg), "--state-dir", str(tmp_path / "state")]) == 1
    assert "CTP_WEBHOOK_SECRET" in capsys.readouterr().err
    assert main(["webhook", "serve", "--config", str(tmp_path / "missing.yaml")]) == 2


# --------------------------------------------------------------------------- deployment specs (no server)


def test_deploy_specs(tmp_path):
    from pathlib import Path

    from ctpipeline.adapters.prefect.orchestration import deploy_specs

    flights = Path(__file__).resolve().parents[2] / "configs" / "flights.yaml"
    (spec,) = deploy_specs([str(flights)], tmp_path / "state", cron="0 6 * * *")
    assert spec.full_name == "continuous-training/flights-delay" and spec.cron == "0 6 * * *"
    assert spec.parameters == {"config": str(flights), "state_dir": str(tmp_path / "state"), "trigger": "schedule"}
    (spec,) = deploy_specs([str(flights)], tmp_path / "state")
    assert spec.cron == "0 6 1 * *"  # the YAML's triggers.schedule when no --cron is given
    with pytest.raises(ConfigError, match="invalid cron"):
        deploy_specs([str(flights)], tmp_path, cron="every day at six")
    with pytest.raises(ConfigError, match="already defined"):
        deploy_specs([str(flights), str(flights)], tmp_path)
    with pytest.raises(CtpError, match="one per config"):
        deploy_specs([str(flights)], tmp_path, cron=["0 6 * * *", None])
    with pytest.raises(CtpError, match="no pipeline config"):
        deploy_specs([], tmp_path)
