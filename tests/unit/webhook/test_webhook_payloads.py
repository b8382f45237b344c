"""Payloads: strict JSON, and the generic shape, Alertmanager and Grafana normalised to Alert objects."""

from __future__ import annotations

import dataclasses

import pytest

from ctpipeline.webhook.payloads import MAX_REASON_CHARS, Alert, PayloadError, normalise, parse_body

from conftest import alertmanager_payload, grafana_payload


def test_normalise_shapes():
    (a,) = normalise(alertmanager_payload())
    assert (a.model, a.status, a.source) == ("flights-delay", "firing", "alertmanager")
    (g,) = normalise(grafana_payload())
    assert (g.model, g.source) == ("churn", "grafana")
    no_fp = alertmanager_payload()
    del no_fp["alerts"][0]["fingerprint"]  # old Alertmanager versions sent no fingerprint
    (n,) = normalise(no_fp)
    assert n.dedupe_key.startswith("alertmanager:") and n.dedupe_key.endswith(":2026-02-06T13:08:45.828Z")
    # the alert's status wins over the group's
    mixed = alertmanager_payload()
    mixed["status"] = "firing"
    mixed["alerts"][0]["status"] = "resolved"
    assert normalise(mixed)[0].status == "resolved"
    (p,) = normalise({"model": "m", "labels": {"n": 3, "ok": True, "none": None}})
    assert p.labels == {"n": "3", "ok": "True", "none": ""}


def test_generic_alert_fields_and_default_dedupe_key():
    (a,) = normalise({"model": "flights-delay", "reason": "  drift\n share  0.4 ", "dedupe_key": "drift-1"})
    assert a == Alert(
        model="flights-delay",
        status="firing",
        dedupe_key="generic:drift-1",
        reason="drift share 0.4",
        labels={},
        source="generic",
        launch_id=None,
    )
    # without a dedupe key: a digest of model, reason and labels (the same alert twice is the same key)
    b1, b2 = (normalise({"model": "m", "reason": "r", "labels": {"a": 1}})[0] for _ in range(2))
    assert b1.dedupe_key == b2.dedupe_key and b1.dedupe_key.startswith("generic:")
    assert normalise({"model": "m", "reason": "other", "labels": {"a": 1}})[0].dedupe_key != b1.dedupe_key
    # long reasons are cut
    (c,) = normalise({"model": "m", "reason": "x" * 1500})
    assert len(c.reason) == MAX_REASON_CHARS and c.reason.endswith("…")


def test_alertmanager_and_grafana_fields():
    (a,) = normalise(alertmanager_payload())
    assert a.dedupe_key == "alertmanager:1a30ba71cca2921f:2026-02-06T13:08:45.828Z"
    assert a.reason == "prediction drift above threshold"
    assert a.labels == {"alertname": "ModelDrift", "model": "flights-delay", "severity": "critical"}
    (g,) = normalise(grafana_payload())
    assert g.dedupe_key == "grafana:c6eadffa33fcdf37:2026-03-01T09:51:03.157076+02:00"
    assert g.reason == "AUC 0.66 on the last labelled batch" and g.labels["pipeline"] == "churn"
    bare = grafana_payload()
    bare["alerts"][0]["annotations"] = {}
    assert normalise(bare)[0].reason == "[FIRING:1] Churn AUC drop"  # Grafana's title next
    no_model = alertmanager_payload()
    del no_model["alerts"][0]["labels"]["model"]
    assert normalise(no_model)[0].model == ""  # the receiver answers unknown-model


def test_alert_is_frozen():
    (a,) = normalise({"model": "m"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.model = "other"  # type: ignore[misc]
    assert dataclasses.replace(a, launch_id="ctp-webhook-1").launch_id == "ctp-webhook-1" and a.launch_id is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "body is not valid JSON: Expecting value"),
        (b"", "body is not valid JSON"),
        (b'{"a": NaN}', "body is not valid JSON: NaN is not allowed"),
        (b"[Infinity]", "body is not valid JSON: Infinity is not allowed"),
        (b"[" * 50_000, "body is not valid JSON"),
        (b"\xff\xfe\x00garbage", "body is not valid JSON"),
    ],
)
def test_parse_body_rejects_what_is_not_strict_json(body, fragment):
    with pytest.raises(PayloadError) as info:
        parse_body(body)
    assert fragment in str(info.value)


def test_parse_body_accepts_json():
    assert parse_body(b'{"model": "m", "n": [1, 2.5, null]}') == {"model": "m", "n": [1, 2.5, None]}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "body must be a JSON object (generic alert, Alertmanager or Grafana webhook), got list"),
        (None, "got NoneType"),
        ({}, 'not a valid generic alert: model: Field required (expected {"model": ...'),
        ({"model": "m", "modle": 1}, "modle: Extra inputs are not permitted"),
        ({"model": "m", "status": "exploded"}, "status: Input should be 'firing' or 'resolved'"),
        ({"alerts": []}, "not a valid Alertmanager alert: alerts: List should have at least 1 item"),
        ({"orgId": 1, "alerts": [{"labels": {"model": 1}}]}, "not a valid Grafana alert: alerts.0.labels.model"),
    ],
)
def test_normalise_says_what_is_wrong(payload, message):
    with pytest.raises(PayloadError) as info:
        normalise(payload)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
