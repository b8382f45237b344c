"""The receiver's HTTP contract with a fake launcher: 202 on a signed alert, 413/400/415/422 on bad requests,
unknown models and resolved alerts acknowledged, /healthz, and fuzzed input that must never give a 500."""

from __future__ import annotations

import json
import random

from fastapi.testclient import TestClient

from ctpipeline.webhook.app import create_app
from ctpipeline.webhook.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers

from conftest import (
    GENERIC_ALERT,
    WEBHOOK_SECRET,
    WEBHOOK_T0,
    FakeLauncher,
    alertmanager_payload,
    asgi_post,
    body_of,
    grafana_payload,
    make_webhook_settings,
    post_alert,
)


def test_signed_generic_alert_starts_one_run(webhook_client, webhook_launcher):
    r = post_alert(webhook_client, GENERIC_ALERT)
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["accepted"] == 1
    (run,) = out["runs"]
    assert run["model"] == "flights-delay" and run["status"] == "started" and run["flow_run_id"] == "run-1"
    assert "drift share" in run["reason"]
    ((model, deployment, alert),) = webhook_launcher.calls
    assert (model, deployment) == ("flights-delay", "continuous-training/flights-delay")
    assert alert.source == "generic" and alert.status == "firing" and alert.dedupe_key == "generic:drift-1"
    assert alert.launch_id and alert.launch_id.startswith("ctp-webhook-")


def test_unknown_model_is_reported_not_started(webhook_client, webhook_launcher):
    r = post_alert(webhook_client, {"model": "no-such-model", "reason": "?"})
    assert r.status_code == 202
    (run,) = r.json()["runs"]
    assert run["status"] == "unknown-model" and "unknown model 'no-such-model'" in run["reason"]
    assert "flow_run_id" not in run
    assert webhook_launcher.calls == []


def test_resolved_generic_alert_is_acknowledged_and_ignored(webhook_client, webhook_launcher):
    r = post_alert(webhook_client, {**GENERIC_ALERT, "status": "resolved"})
    assert r.status_code == 202 and r.json()["runs"][0]["status"] == "resolved-ignored"
    assert webhook_launcher.calls == []


def test_healthz(webhook_client):
    r = webhook_client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "models": ["churn", "flights-delay"]}
    assert webhook_client.get("/alerts").status_code == 405


# --------------------------------------------------------------------------- bad input


def test_non_json_and_wrong_shapes_get_422_with_a_clear_message(webhook_client, webhook_launcher):
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
        r = post_alert(webhook_client, body=body)
        assert r.status_code == 422, (body[:40], r.status_code, r.text)
        assert fragment in r.json()["error"], (body[:40], r.json())
    assert webhook_launcher.calls == []


def test_wrong_content_type_gets_415(webhook_client, webhook_launcher):
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonp", None):
        r = post_alert(webhook_client, GENERIC_ALERT, headers={"Content-Type": ctype})
        assert r.status_code == 415, (ctype, r.text)
    json_utf8 = {"Content-Type": "application/json; charset=utf-8"}
    assert post_alert(webhook_client, GENERIC_ALERT, headers=json_utf8).status_code == 202
    assert len(webhook_launcher.calls) == 1


def test_oversized_bodies_get_413_by_header_and_by_actual_size(tmp_path, webhook_launcher, webhook_clock):
    settings = make_webhook_settings(tmp_path, max_body_bytes=1000)
    app = create_app(settings, webhook_launcher, now=webhook_clock, secret=WEBHOOK_SECRET)
    client = TestClient(app)
    big = body_of({**GENERIC_ALERT, "reason": "x" * 1500})
    r = post_alert(client, body=big)  # honest Content-Length
    assert r.status_code == 413 and "1000 bytes" in r.json()["error"]
    h = signed_headers(WEBHOOK_SECRET, big, timestamp=int(WEBHOOK_T0))
    base = [(k.lower().encode(), v.encode()) for k, v in h.items()]
    # no Content-Length, streamed in chunks
    status, _ = asgi_post(app, base, [big[i : i + 100] for i in range(0, len(big), 100)])
    assert status == 413
    # a Content-Length that lies
    status, _ = asgi_post(app, base + [(b"content-length", b"10")], [big])
    assert status == 413
    # garbage Content-Length
    status, _ = asgi_post(app, base + [(b"content-length", b"ten")], [big])
    assert status == 400
    # a small body still works, also streamed without Content-Length
    small = body_of(GENERIC_ALERT)
    h = [
        (k.lower().encode(), v.encode())
        for k, v in signed_headers(WEBHOOK_SECRET, small, timestamp=int(WEBHOOK_T0)).items()
    ]
    status, out = asgi_post(app, h, [small[:10], small[10:]])
    assert status == 202, out
    assert len(webhook_launcher.calls) == 1


# --------------------------------------------------------------------------- fuzzing


def _random_json(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "float", "bool", "null"] + (["list", "dict"] * 2 if depth < 4 else [])
    k = rng.choice(kinds)
    if k == "str":
        alphabet = 'abcé\u2603\x00"\\ model alerts firing resolved'
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if k == "int":
        return rng.choice([0, -1, 1, 2**70, rng.randint(-(10**6), 10**6)])
    if k == "float":
        return rng.uniform(-1e308, 1e308)
    if k == "bool":
        return rng.random() < 0.5
    if k == "null":
        return None
    if k == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [
        "model",
        "reason",
        "status",
        "dedupe_key",
        "labels",
        "alerts",
        "orgId",
        "version",
        "fingerprint",
        "startsAt",
        "annotations",
        "commonLabels",
        "pipeline",
        "x",
    ]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _mutate(rng: random.Random, obj):
    """Replace one random node of a valid payload with random JSON."""
    if isinstance(obj, dict) and obj and rng.random() < 0.8:
        k = rng.choice(list(obj))
        return {**obj, k: _mutate(rng, obj[k])}
    if isinstance(obj, list) and obj and rng.random() < 0.8:
        i = rng.randrange(len(obj))
        return obj[:i] + [_mutate(rng, obj[i])] + obj[i + 1 :]
    return _random_json(rng)


def test_fuzzed_bodies_and_headers_never_give_500(tmp_path, webhook_clock):
    launcher = FakeLauncher()
    settings = make_webhook_settings(tmp_path, max_body_bytes=4000)
    app = create_app(settings, launcher, now=webhook_clock, secret=WEBHOOK_SECRET)
    client = TestClient(app, raise_server_exceptions=False)
    rng = random.Random(20240607)
    seeds = [GENERIC_ALERT, alertmanager_payload(), grafana_payload(), {"model": "churn"}]
    seen = set()
    for i in range(400):
        r = rng.random()
        if r < 0.2:
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        elif r < 0.5:
            body = json.dumps(_random_json(rng)).encode()
        else:
            body = json.dumps(_mutate(rng, rng.choice(seeds))).encode()
        headers = signed_headers(WEBHOOK_SECRET, body, timestamp=int(WEBHOOK_T0))
        if rng.random() < 0.25:  # break one header at random
            name = rng.choice([SIGNATURE_HEADER, TIMESTAMP_HEADER, "Content-Type"])
            headers[name] = rng.choice(
                [
                    "",
                    " ",
                    "sha256=",
                    "sha256=" + "g" * 64,
                    "-1",
                    "1e9",
                    "99999999999999",
                    "application/json;;",
                    "\t",
                    "x" * 300,
                    "ünïcödé".encode(),
                ]
            )
        res = client.post("/alerts", content=body, headers=headers)
        seen.add(res.status_code)
        assert res.status_code in {202, 400, 401, 413, 415, 422}, (i, body[:100], res.status_code, res.text)
        res.json()  # always a JSON answer
    # raw ASGI with arbitrary header bytes
    for i in range(100):
        body = json.dumps(_mutate(rng, GENERIC_ALERT)).encode()
        hdrs = [
            (k.lower().encode(), v.encode())
            for k, v in signed_headers(WEBHOOK_SECRET, body, timestamp=int(WEBHOOK_T0)).items()
        ]
        hdrs.append(
            (
                rng.choice([b"x-ctp-signature", b"x-ctp-timestamp", b"content-type", b"content-length"]),
                bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))),
            )
        )
        status, out = asgi_post(app, hdrs, [body])
        assert status in {202, 400, 401, 413, 415, 422}, (i, status, out)
    assert {202, 401, 422} <= seen
