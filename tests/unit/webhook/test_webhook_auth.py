"""Request authentication: HMAC-SHA256 over timestamp and body, constant-time check, stale timestamps, the secret."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from ctpipeline.errors import CtpError
from ctpipeline.webhook.app import create_app
from ctpipeline.webhook.auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_request,
    read_secret,
    sign,
    signed_headers,
    verify,
)

from conftest import GENERIC_ALERT, WEBHOOK_SECRET, WEBHOOK_T0, body_of, make_webhook_settings, post_alert


def test_sign_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(WEBHOOK_SECRET, b"1700000000." + b'{"a":1}', hashlib.sha256).hexdigest()
    assert sign(WEBHOOK_SECRET, "1700000000", b'{"a":1}') == "sha256=" + expected


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_recipe_from_the_docs_gives_the_same_signature():
    body, ts = '{"model": "flights-delay", "reason": "test"}', "1700000000"
    out = subprocess.run(
        ["sh", "-c", 'printf "%s.%s" "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET" -hex'],
        env={"TS": ts, "BODY": body, "SECRET": WEBHOOK_SECRET.decode(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "sha256=" + out.strip().split()[-1] == sign(WEBHOOK_SECRET, ts, body.encode())


# --------------------------------------------------------------------------- over HTTP


def test_bad_signature_missing_headers_and_stale_timestamps_get_401(webhook_client, webhook_launcher, webhook_clock):
    body = body_of(GENERIC_ALERT)
    cases = {
        "wrong secret": dict(secret=b"another-secret"),
        "tampered signature": dict(headers={SIGNATURE_HEADER: "sha256=" + "0" * 64}),
        "no sha256= prefix": dict(headers={SIGNATURE_HEADER: sign(WEBHOOK_SECRET, str(int(WEBHOOK_T0)), body)[7:]}),
        "missing signature": dict(headers={SIGNATURE_HEADER: None}),
        "missing timestamp": dict(headers={TIMESTAMP_HEADER: None}),
        "non-numeric timestamp": dict(headers={TIMESTAMP_HEADER: "yesterday"}),
        "signature for another timestamp": dict(headers={TIMESTAMP_HEADER: str(int(WEBHOOK_T0) + 1)}),
    }
    for name, kw in cases.items():
        r = post_alert(webhook_client, body=body, **kw)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json()["error"]
    # signed properly, but too old / too far in the future
    for skew in (-301, +301, -86400):
        r = post_alert(webhook_client, body=body, ts=WEBHOOK_T0 + skew)
        assert r.status_code == 401 and "stale timestamp" in r.json()["error"], (skew, r.text)
    # within the skew it is fine
    assert post_alert(webhook_client, body=body, ts=WEBHOOK_T0 - 299).status_code == 202
    assert len(webhook_launcher.calls) == 1


def test_tampered_body_is_rejected(webhook_client, webhook_launcher):
    body = body_of(GENERIC_ALERT)
    h = signed_headers(WEBHOOK_SECRET, body, timestamp=int(WEBHOOK_T0))
    r = webhook_client.post("/alerts", content=body.replace(b"drift-1", b"drift-2"), headers=h)
    assert r.status_code == 401 and r.json()["error"] == "signature mismatch"
    assert webhook_launcher.calls == []


def test_secret_comes_from_the_environment_variable(tmp_path, monkeypatch, webhook_launcher, webhook_clock):
    settings = make_webhook_settings(tmp_path, secret_env="MY_WEBHOOK_SECRET")
    monkeypatch.delenv("MY_WEBHOOK_SECRET", raising=False)
    with pytest.raises(CtpError, match="MY_WEBHOOK_SECRET"):
        create_app(settings, webhook_launcher, now=webhook_clock)
    monkeypatch.setenv("MY_WEBHOOK_SECRET", WEBHOOK_SECRET.decode())
    c = TestClient(create_app(settings, webhook_launcher, now=webhook_clock))
    assert post_alert(c, GENERIC_ALERT).status_code == 202


# --------------------------------------------------------------------------- verify, check_request, read_secret


def test_verify_accepts_the_signature_in_either_hex_case_and_nothing_else():
    sig = sign(WEBHOOK_SECRET, "1700000000", b"{}")
    assert verify(WEBHOOK_SECRET, "1700000000", b"{}", sig)
    assert verify(WEBHOOK_SECRET, "1700000000", b"{}", "sha256=" + sig[7:].upper())
    assert not verify(WEBHOOK_SECRET, "1700000001", b"{}", sig)
    assert not verify(WEBHOOK_SECRET, "1700000000", b"{ }", sig)
    assert not verify(b"other", "1700000000", b"{}", sig)
    for malformed in (sig[7:], sig + "0", "sha256=" + "g" * 64, "", "sha256=ünïcödé"):
        assert not verify(WEBHOOK_SECRET, "1700000000", b"{}", malformed)
    assert not verify(WEBHOOK_SECRET, "yesterday", b"{}", sig)


def test_verify_compares_in_constant_time(monkeypatch):
    import ctpipeline.webhook.auth as auth

    seen, original = [], hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    sig = sign(WEBHOOK_SECRET, "1700000000", b"{}")
    assert verify(WEBHOOK_SECRET, "1700000000", b"{}", sig)
    assert seen == [(sig.encode(), sig.encode())]


def test_check_request_reasons_in_order():
    body = b'{"model": "m"}'
    ts = str(int(WEBHOOK_T0))
    sig = sign(WEBHOOK_SECRET, ts, body)

    def check(t=ts, s=sig, now=WEBHOOK_T0):
        return check_request(WEBHOOK_SECRET, t, s, body, now=now, max_skew_seconds=300)

    assert check() is None
    assert check(t=f" {ts} ", s=f"{sig}\t") is None  # surrounding blanks do not matter
    assert check(t="") == "missing X-CTP-Timestamp or X-CTP-Signature header"
    assert check(s=" ") == "missing X-CTP-Timestamp or X-CTP-Signature header"
    assert check(t="1e9") == "invalid X-CTP-Timestamp: expected Unix time in seconds"
    assert check(s="sha256=abc") == "invalid X-CTP-Signature: expected 'sha256=<64 hex digits>'"
    assert check(s="sha256=" + "0" * 64) == "signature mismatch"
    # the age is judged only once the signature is valid
    assert check(s="sha256=" + "0" * 64, now=WEBHOOK_T0 + 3600) == "signature mismatch"
    assert check(now=WEBHOOK_T0 + 301) == "stale timestamp: more than 300s away from the receiver's clock"
    assert check(now=WEBHOOK_T0 - 301).startswith("stale timestamp")
    assert check(now=WEBHOOK_T0 + 300) is None


def test_read_secret(monkeypatch):
    monkeypatch.setenv("SOME_SECRET", "s3cret")
    assert read_secret("SOME_SECRET") == b"s3cret"
    monkeypatch.setenv("SOME_SECRET", "")
    with pytest.raises(CtpError, match="environment variable SOME_SECRET .* is not set or empty"):
        read_secret("SOME_SECRET")
    monkeypatch.delenv("SOME_SECRET")
    with pytest.raises(CtpError, match="SOME_SECRET"):
        read_secret("SOME_SECRET")


def test_signed_headers_carry_the_timestamp_and_its_signature():
    h = signed_headers(WEBHOOK_SECRET, b"{}", timestamp=1700000000)
    assert h == {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: "1700000000",
        SIGNATURE_HEADER: sign(WEBHOOK_SECRET, "1700000000", b"{}"),
    }
    now = signed_headers(WEBHOOK_SECRET, b"{}")  # default: the current time
    assert (
        check_request(
            WEBHOOK_SECRET, now[TIMESTAMP_HEADER], now[SIGNATURE_HEADER], b"{}", now=time.time(), max_skew_seconds=5
        )
        is None
    )
