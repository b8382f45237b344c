"""Request authentication: HMAC-SHA256 over ``f"{timestamp}.".encode() + body``, as GitHub and Stripe sign theirs.

Signing, in a shell (see docs/webhook.md)::

    ts=$(date +%s)
    sig="sha256=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$CTP_WEBHOOK_SECRET" -hex \
                  | sed 's/^.* //')"
    curl -H "Content-Type: application/json" -H "X-CTP-Timestamp: $ts" -H "X-CTP-Signature: $sig" \
         --data-binary "$body" http://127.0.0.1:8787/alerts
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time

from ctpipeline.errors import CtpError

SIGNATURE_HEADER = "X-CTP-Signature"
TIMESTAMP_HEADER = "X-CTP-Timestamp"
SIGNATURE_PREFIX = "sha256="

_TS_RE = re.compile(r"^[0-9]{1,12}$")
_SIG_RE = re.compile(r"^sha256=[0-9a-fA-F]{64}$")


def read_secret(secret_env: str) -> bytes:
    """The HMAC secret from the environment variable `secret_env`; CtpError if it is unset or empty."""
    value = os.environ.get(secret_env, "")
    if not value:
        raise CtpError(f"environment variable {secret_env} (the webhook's HMAC secret) is not set or empty")
    return value.encode("utf-8")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``"sha256=" + hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + body))``.

    ``timestamp`` is the decimal Unix time in seconds, sent as ``X-CTP-Timestamp``; the result is sent as
    ``X-CTP-Signature``. Signing the timestamp with the body makes a captured request useless once it is older
    than ``max_skew_seconds``.
    """
    mac = hmac.new(secret, f"{timestamp}.".encode("ascii"), hashlib.sha256)
    mac.update(body)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is ``sign(secret, timestamp, body)``: constant-time comparison, hex case ignored.

    A timestamp or signature of the wrong form (not Unix seconds, not ``sha256=<64 hex digits>``) is False."""
    if not _TS_RE.match(timestamp) or not _SIG_RE.match(signature):
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode("ascii"), signature.lower().encode("ascii"))


def check_request(
    secret: bytes, timestamp: str, signature: str, body: bytes, *, now: float, max_skew_seconds: int
) -> str | None:
    """``None`` when the headers' signature matches and the timestamp is fresh, else the reason for a 401.

    The timestamp's age is checked only after the signature matched (an attacker learns nothing from it)."""
    timestamp, signature = timestamp.strip(), signature.strip()
    if not timestamp or not signature:
        return f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header"
    if not _TS_RE.match(timestamp):
        return f"invalid {TIMESTAMP_HEADER}: expected Unix time in seconds"
    if not _SIG_RE.match(signature):
        return f"invalid {SIGNATURE_HEADER}: expected 'sha256=<64 hex digits>'"
    if not verify(secret, timestamp, body, signature):
        return "signature mismatch"
    if abs(now - int(timestamp)) > max_skew_seconds:
        return f"stale timestamp: more than {max_skew_seconds}s away from the receiver's clock"
    return None


def signed_headers(secret: bytes, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers for a signed JSON POST (used by `ctp webhook send` and the tests)."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    return {"Content-Type": "application/json", TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body)}
