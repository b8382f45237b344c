"""Alertmanager and Grafana notifications through the receiver: firing starts, resolved is ignored, the model
comes from a label, and a group starts at most one run per model."""

from __future__ import annotations

import json

from conftest import alertmanager_payload, grafana_payload, post_alert


def test_alertmanager_firing_starts_and_resolved_is_ignored(webhook_client, webhook_launcher):
    r = post_alert(webhook_client, alertmanager_payload())
    assert r.status_code == 202
    (run,) = r.json()["runs"]
    assert run["status"] == "started" and run["model"] == "flights-delay"
    alert = webhook_launcher.calls[0][2]
    assert alert.source == "alertmanager" and alert.reason == "prediction drift above threshold"
    assert alert.dedupe_key == "alertmanager:1a30ba71cca2921f:2026-02-06T13:08:45.828Z"
    assert alert.labels["severity"] == "critical"
    # the same notification again (Alertmanager re-sends every repeat_interval): duplicate
    assert post_alert(webhook_client, alertmanager_payload()).json()["runs"][0]["status"] == "duplicate"
    r = post_alert(webhook_client, alertmanager_payload(status="resolved"))
    assert r.status_code == 202 and r.json()["runs"][0]["status"] == "resolved-ignored"
    assert len(webhook_launcher.calls) == 1


def test_alertmanager_without_model_label_is_unknown_model(webhook_client, webhook_launcher):
    payload = alertmanager_payload()
    del payload["alerts"][0]["labels"]["model"]
    r = post_alert(webhook_client, payload)
    assert r.status_code == 202
    assert r.json()["runs"][0]["status"] == "unknown-model" and "label" in r.json()["runs"][0]["reason"]
    assert webhook_launcher.calls == []


def test_alertmanager_group_with_several_alerts_starts_one_run_per_model(webhook_client, webhook_launcher):
    payload = alertmanager_payload()
    second = json.loads(json.dumps(payload["alerts"][0]))
    second["fingerprint"] = "ffff000011112222"
    third = json.loads(json.dumps(second))
    third["fingerprint"], third["labels"]["model"] = "aaaa", "churn"
    payload["alerts"] += [second, third]
    runs = post_alert(webhook_client, payload).json()["runs"]
    assert [r["status"] for r in runs] == ["started", "cooldown", "started"]
    assert [c[0] for c in webhook_launcher.calls] == ["flights-delay", "churn"]


def test_grafana_firing_starts_and_resolved_is_ignored(webhook_client, webhook_launcher):
    r = post_alert(webhook_client, grafana_payload())
    assert r.status_code == 202, r.text
    (run,) = r.json()["runs"]
    assert run["status"] == "started" and run["model"] == "churn"
    alert = webhook_launcher.calls[0][2]
    assert alert.source == "grafana" and alert.dedupe_key.startswith("grafana:c6eadffa33fcdf37:")
    assert alert.reason == "AUC 0.66 on the last labelled batch"
    assert webhook_launcher.calls[0][1] == "continuous-training/churn"
    r = post_alert(webhook_client, grafana_payload(status="resolved"))
    assert r.json()["runs"][0]["status"] == "resolved-ignored"
    assert len(webhook_launcher.calls) == 1
