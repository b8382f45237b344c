"""Senders as the tools ship them: the receiver's HMAC, an Authorization header (Alertmanager's
``http_config.authorization``, Grafana's *Authorization header*), basic auth (Alertmanager's ``basic_auth``,
Grafana's *Basic auth*) and Grafana's HMAC signature. Each is accepted with the right credentials, gets 401 and
starts nothing with wrong or missing ones, compares in constant time, and refuses a short secret at start.

The Grafana vectors are computed here, independently, per github.com/grafana/alerting http/hmac.go: hex of
HMAC-SHA256(secret, timestamp + ":" + body) in ``X-Grafana-Alerting-Signature`` (or the configured header), the
Unix-seconds timestamp in the configured timestamp header; without a timestamp header, HMAC of the body alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient

from ctpipeline.errors import CtpError
from ctpipeline.webhook.app import create_app
from ctpipeline.webhook.auth import grafana_sign
from ctpipeline.webhook.settings import SenderSettings, WebhookSettings

from conftest import (
    GENERIC_ALERT,
    WEBHOOK_MODELS,
    WEBHOOK_SECRET,
    WEBHOOK_T0,
    FakeLauncher,
    alertmanager_payload,
    body_of,
    grafana_payload,
    post_alert,
)

TOKEN = "am-bearer-token-0123456789abcdef"
PASSWORD = "basic-password-0123456789abcdef"
GRAFANA_SECRET = "grafana-hmac-secret-0123456789"
SENDERS = (
    {"name": "ctp", "auth": "hmac", "secret_env": "T_CTP"},
    {"name": "alertmanager", "auth": "authorization", "secret_env": "T_AM_TOKEN"},
    {"name": "am-basic", "auth": "basic", "username": "alertmanager", "secret_env": "T_AM_PASSWORD"},
    {"name": "grafana-token", "auth": "authorization", "scheme": "Token", "secret_env": "T_GF_TOKEN"},
    {
        "name": "grafana",
        "auth": "grafana-hmac",
        "secret_env": "T_GF_HMAC",
        "timestamp_header": "X-Grafana-Alerting-Timestamp",
    },
    {"name": "grafana-plain", "auth": "grafana-hmac", "secret_env": "T_GF_PLAIN", "header": "X-Signature"},
)
SECRETS = {
    "T_CTP": WEBHOOK_SECRET.decode(),
    "T_AM_TOKEN": TOKEN,
    "T_AM_PASSWORD": PASSWORD,
    "T_GF_TOKEN": "grafana-token-0123456789abcdef",
    "T_GF_HMAC": GRAFANA_SECRET,
    "T_GF_PLAIN": "grafana-plain-secret-0123456789",
}


@pytest.fixture
def env(monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def client(tmp_path, env, webhook_launcher, webhook_clock):
    settings = WebhookSettings(models=WEBHOOK_MODELS, state_path=str(tmp_path / "wh.db"), senders=SENDERS)
    return TestClient(create_app(settings, webhook_launcher, now=webhook_clock))


def post(client, body: bytes, headers: dict):
    return client.post("/alerts", content=body, headers={"Content-Type": "application/json", **headers})


def grafana_headers(body: bytes, secret: str = GRAFANA_SECRET, ts: int = int(WEBHOOK_T0)) -> dict:
    # independent of the receiver's code: Grafana's scheme written out
    sig = hmac.new(secret.encode(), str(ts).encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Grafana-Alerting-Signature": sig, "X-Grafana-Alerting-Timestamp": str(ts)}


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --------------------------------------------------------------------------- each kind, right and wrong


def test_alertmanager_bearer_token_accepted_and_wrong_or_missing_refused(client, webhook_launcher):
    body = body_of(alertmanager_payload())
    for headers, why in [
        ({"Authorization": "Bearer " + TOKEN[:-1] + "X"}, "credentials do not match"),
        ({"Authorization": "Bearer"}, ""),
        ({"Authorization": "Bearer " + TOKEN + "0"}, "credentials do not match"),
        ({"Authorization": TOKEN}, ""),
        ({}, "no credentials"),
    ]:
        r = post(client, body, headers)
        assert r.status_code == 401, (headers, r.text)
        assert why in r.json()["error"]
    assert webhook_launcher.calls == []
    r = post(client, body, {"Authorization": "Bearer " + TOKEN})
    assert r.status_code == 202 and r.json()["runs"][0]["status"] == "started", r.text
    assert post(client, body, {"authorization": "bearer " + TOKEN}).json()["runs"][0]["status"] == "duplicate"
    ((_, _, alert),) = webhook_launcher.calls
    assert alert.sender == "alertmanager" and alert.source == "alertmanager" and alert.receiver == "ctp"
    assert alert.name == "ModelDrift" and alert.reason == "prediction drift above threshold"


def test_custom_authorization_scheme_as_grafana_sends_it(client, webhook_launcher):
    body = body_of(grafana_payload())
    assert post(client, body, {"Authorization": "Bearer grafana-token-0123456789abcdef"}).status_code == 401
    r = post(client, body, {"Authorization": "Token grafana-token-0123456789abcdef"})
    assert r.status_code == 202 and webhook_launcher.calls[0][2].sender == "grafana-token"


def test_basic_auth_accepted_and_wrong_user_password_or_encoding_refused(client, webhook_launcher):
    body = body_of(alertmanager_payload())
    for headers in [
        basic("alertmanager", PASSWORD + "x"),
        basic("someone", PASSWORD),
        basic("alertmanager", ""),
        {"Authorization": "Basic " + base64.b64encode(b"alertmanager" + PASSWORD.encode()).decode()},
        {"Authorization": "Basic not*base64"},
        {"Authorization": "Basic"},
    ]:
        r = post(client, body, headers)
        assert r.status_code == 401, (headers, r.text)
    assert webhook_launcher.calls == []
    r = post(client, body, basic("alertmanager", PASSWORD))
    assert r.status_code == 202 and webhook_launcher.calls[0][2].sender == "am-basic"


def test_grafana_hmac_with_timestamp_accepted_tampered_stale_and_missing_refused(
    client, webhook_launcher, webhook_clock
):
    body = body_of(grafana_payload())
    good = grafana_headers(body)
    tampered = body.replace(b"AUC fell below 0.7", b"AUC fell below 0.9")
    assert tampered != body
    cases = [
        (tampered, good, "signature mismatch"),
        (body, {**good, "X-Grafana-Alerting-Signature": good["X-Grafana-Alerting-Signature"][:-1]}, "64 hex"),
        (body, {**good, "X-Grafana-Alerting-Timestamp": str(int(WEBHOOK_T0) + 1)}, "signature mismatch"),
        (body, {"X-Grafana-Alerting-Signature": good["X-Grafana-Alerting-Signature"]}, "timestamp"),
        (body, grafana_headers(body, secret="another-secret-0123456789"), "signature mismatch"),
        (body, grafana_headers(body, ts=int(WEBHOOK_T0) - 301), "stale timestamp"),
    ]
    for b, h, why in cases:
        r = post(client, b, h)
        assert r.status_code == 401 and why in r.json()["error"], (h, r.text)
    assert webhook_launcher.calls == []
    r = post(client, body, good)
    assert r.status_code == 202 and r.json()["runs"][0]["status"] == "started", r.text
    ((_, _, alert),) = webhook_launcher.calls
    assert alert.sender == "grafana" and alert.source == "grafana" and alert.name == "Churn AUC drop"
    # upper-case hex is the same signature
    up = {**good, "X-Grafana-Alerting-Signature": good["X-Grafana-Alerting-Signature"].upper()}
    assert post(client, body, up).json()["runs"][0]["status"] == "duplicate"


def test_grafana_hmac_without_timestamp_signs_the_body_alone_in_the_configured_header(client, webhook_launcher):
    body = body_of(grafana_payload(pipeline="flights-delay"))
    sig = hmac.new(b"grafana-plain-secret-0123456789", body, hashlib.sha256).hexdigest()
    assert post(client, body + b" ", {"X-Signature": sig}).status_code == 401
    assert post(client, body, {"X-Grafana-Alerting-Signature": sig}).status_code == 401  # not this sender's header
    r = post(client, body, {"X-Signature": sig})
    assert r.status_code == 202 and webhook_launcher.calls[0][2].sender == "grafana-plain"


def test_the_receivers_own_hmac_still_works_among_other_senders(client, webhook_launcher):
    assert post_alert(client, GENERIC_ALERT, secret=b"wrong-secret-0123456789").status_code == 401
    r = post_alert(client, GENERIC_ALERT)
    assert r.status_code == 202 and webhook_launcher.calls[0][2].sender == "ctp"


def test_grafana_sign_matches_grafanas_scheme_and_openssl():
    body, ts = b'{"receiver":"ctp","status":"firing"}', "1700000000"
    secret = b"grafana-hmac-secret-0123456789"
    assert grafana_sign(secret, body, ts) == hmac.new(secret, b"1700000000:" + body, hashlib.sha256).hexdigest()
    assert grafana_sign(secret, body) == hmac.new(secret, body, hashlib.sha256).hexdigest()
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    out = subprocess.run(
        ["sh", "-c", 'printf "%s:%s" "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -hex'],
        env={"TS": ts, "BODY": body.decode(), "SECRET": secret.decode(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().split()[-1] == grafana_sign(secret, body, ts)


# --------------------------------------------------------------------------- constant time, secrets at start


def test_every_kind_compares_secrets_with_compare_digest(client, monkeypatch):
    import ctpipeline.webhook.auth as auth

    seen = []
    original = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    body = body_of(alertmanager_payload())
    assert post(client, body, {"Authorization": "Bearer " + TOKEN}).status_code == 202
    assert (TOKEN.encode(), TOKEN.encode()) in seen
    seen.clear()
    assert post(client, body, basic("alertmanager", PASSWORD)).status_code == 202
    assert (b"alertmanager", b"alertmanager") in seen and (PASSWORD.encode(), PASSWORD.encode()) in seen
    seen.clear()
    gbody = body_of(grafana_payload())
    h = grafana_headers(gbody)
    assert post(client, gbody, h).status_code == 202
    assert (h["X-Grafana-Alerting-Signature"].encode(),) * 2 in seen


@pytest.mark.parametrize("value", ["", "only-15-chars!!"])
def test_a_missing_or_short_secret_is_refused_at_start_naming_the_variable(tmp_path, env, monkeypatch, value):
    monkeypatch.setenv("T_AM_TOKEN", value)
    settings = WebhookSettings(models=WEBHOOK_MODELS, state_path=str(tmp_path / "wh.db"), senders=SENDERS)
    with pytest.raises(CtpError, match="T_AM_TOKEN") as info:
        create_app(settings, FakeLauncher())
    assert "alertmanager" in str(info.value)
    if value:
        assert "shorter than 16 characters" in str(info.value)
    monkeypatch.setenv("T_AM_TOKEN", "x" * 16)
    create_app(settings, FakeLauncher())  # 16 is enough


def test_secrets_given_to_create_app_are_checked_too(tmp_path):
    settings = WebhookSettings(models=WEBHOOK_MODELS, state_path=str(tmp_path / "wh.db"))
    with pytest.raises(CtpError, match="shorter than 16"):
        create_app(settings, FakeLauncher(), secret=b"short")


def test_401_never_reaches_the_launcher_or_the_state(client, webhook_launcher):
    body = body_of(alertmanager_payload())
    for _ in range(5):
        assert post(client, body, {"Authorization": "Bearer nope-nope-nope-nope"}).status_code == 401
    assert webhook_launcher.calls == []
    assert client.app.state.webhook_state.launches() == []


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("senders", "fragment"),
    [
        ([{"name": "a", "auth": "basic", "secret_env": "X"}], "needs a username"),
        ([{"name": "a", "auth": "hmac", "secret_env": "X", "scheme": "Bearer"}], "does not take scheme"),
        ([{"name": "a", "auth": "authorization", "secret_env": "X", "scheme": "basic"}], "use auth: basic"),
        ([{"name": "a", "auth": "authorization", "secret_env": "X", "header": "X-A"}], "does not take header"),
        ([{"name": "a", "auth": "hmac", "secret_env": "X"}] * 2, "unique: a"),
        ([{"name": "a", "auth": "jwt", "secret_env": "X"}], "auth"),
        ([{"name": "a", "auth": "hmac", "secret_env": "not a name"}], "secret_env"),
        ([{"name": "a", "auth": "hmac", "secret": "inline"}], "secret"),
    ],
)
def test_bad_senders_are_refused(tmp_path, senders, fragment):
    with pytest.raises(ValueError, match=fragment):
        WebhookSettings(models=WEBHOOK_MODELS, state_path="x.db", senders=senders)


def test_senders_and_secret_env_exclude_each_other_and_default_is_one_hmac_sender():
    with pytest.raises(ValueError, match="either secret_env"):
        WebhookSettings(models=WEBHOOK_MODELS, secret_env="A", senders=[SENDERS[0]])
    (only,) = WebhookSettings(models=WEBHOOK_MODELS, secret_env="MINE").effective_senders
    assert only == SenderSettings(name="default", auth="hmac", secret_env="MINE")


def test_senders_from_yaml_and_the_relative_state_path_in_the_state_folder(tmp_path):
    from ctpipeline.webhook.settings import load_webhook_settings

    f = tmp_path / "conf" / "wh.yaml"
    f.parent.mkdir()
    f.write_text(
        json.dumps({"models": {"m": "flow/dep"}, "senders": list(SENDERS[1:3]), "state_path": "webhook/state.db"})
    )
    s = load_webhook_settings(f, tmp_path / "state")
    assert [x.name for x in s.effective_senders] == ["alertmanager", "am-basic"]
    assert s.state_path == str(tmp_path / "state" / "webhook" / "state.db")
    assert load_webhook_settings(f).state_path == str(tmp_path / "conf" / "webhook" / "state.db")  # no state folder
    f.write_text(json.dumps({"models": {"m": "flow/dep"}}))
    assert load_webhook_settings(f, tmp_path / "s2").state_path == str(tmp_path / "s2" / "webhook" / "state.db")
