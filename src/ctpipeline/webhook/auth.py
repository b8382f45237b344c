"""Request authentication primitives, one per kind of sender (which sender may use which: ``webhook.senders``).

* the receiver's own HMAC-SHA256 over ``f"{timestamp}.".encode() + body``, as GitHub and Stripe sign theirs
  (:func:`sign`, :func:`verify`, :func:`check_request`);
* Grafana's HMAC option (:func:`grafana_sign`, :func:`check_grafana`): lowercase hex HMAC-SHA256 over
  ``<timestamp>:<body>``, or over the body alone when no timestamp header is configured (as
  ``github.com/grafana/alerting/http/hmac.go`` signs);
* an ``Authorization: <scheme> <credentials>`` header (:func:`check_authorization`) and HTTP basic auth
  (:func:`check_basic`), as Alertmanager's ``http_config`` and Grafana's webhook send them.

Every secret comparison is ``hmac.compare_digest``.

Signing, in a shell (see docs/webhook.md)::

    ts=$(date +%s)
    sig="sha256=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$CTP_WEBHOOK_SECRET" -hex \
                  | sed 's/^.* //')"
    curl -H "Content-Type: application/json" -H "X-CTP-Timestamp: $ts" -H "X-CTP-Signature: $sig" \
         --data-binary "$body" http://127.0.0.1:8787/alerts
"""

from __future__ import annotations

import base64
import binascii
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


MIN_SECRET_CHARS = 16
_HEX64_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def read_secret(secret_env: str, what: str = "the webhook's HMAC secret", min_chars: int = 0) -> bytes:
    """The secret in the environment variable `secret_env`; CtpError if it is unset, empty or shorter than
    `min_chars` characters (the receiver asks for :data:`MIN_SECRET_CHARS`)."""
    value = os.environ.get(secret_env, "")
    if not value:
        raise CtpError(f"environment variable {secret_env} ({what}) is not set or empty")
    if len(value) < min_chars:
        raise CtpError(
            f"environment variable {secret_env} ({what}) is shorter than {min_chars} characters: "
            'use a long random value, e.g. "$(openssl rand -hex 32)"'
        )
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


# --------------------------------------------------------------------------- Grafana's HMAC option


def grafana_sign(secret: bytes, body: bytes, timestamp: str | None = None) -> str:
    """Lowercase hex HMAC-SHA256(secret, ``timestamp + ":" + body``), or of ``body`` alone without a timestamp."""
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    if timestamp is not None:
        mac.update(timestamp.encode("ascii") + b":")
    mac.update(body)
    return mac.hexdigest()


def check_grafana(
    secret: bytes, signature: str, timestamp: str | None, body: bytes, *, now: float, max_skew_seconds: int
) -> str | None:
    """``None`` when `signature` is :func:`grafana_sign` of the body (and `timestamp`, when the sender is configured
    with a timestamp header: then `timestamp` is a string, possibly empty) and the timestamp is fresh; else why not."""
    signature = signature.strip()
    if timestamp is not None:
        timestamp = timestamp.strip()
        if not _TS_RE.match(timestamp):
            return "missing or invalid Grafana timestamp header: expected Unix time in seconds"
    if not _HEX64_RE.match(signature):
        return "invalid Grafana signature: expected 64 hex digits"
    expected = grafana_sign(secret, body, timestamp).encode("ascii")
    if not hmac.compare_digest(expected, signature.lower().encode("ascii")):
        return "signature mismatch"
    if timestamp is not None and abs(now - int(timestamp)) > max_skew_seconds:
        return f"stale timestamp: more than {max_skew_seconds}s away from the receiver's clock"
    return None


# --------------------------------------------------------------------------- Authorization header, basic auth


def split_authorization(header: str) -> tuple[str, str] | None:
    """``(scheme, credentials)`` of an ``Authorization`` header value, or None when it has no credentials."""
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    return (scheme, credentials) if scheme and credentials else None


def check_authorization(secret: bytes, scheme: str, header: str) -> str | None:
    """``None`` when `header` is ``<scheme> <secret>`` (scheme case-insensitive, RFC 9110); else why not."""
    parts = split_authorization(header)
    if parts is None or parts[0].lower() != scheme.lower():
        return f"expected an Authorization header with scheme {scheme}"
    try:
        given = parts[1].encode("utf-8")
    except UnicodeEncodeError:
        return "credentials do not match"
    return None if hmac.compare_digest(secret, given) else "credentials do not match"


def check_basic(username: str, password: bytes, header: str) -> str | None:
    """``None`` when `header` is ``Basic base64(username:password)``; else why not. Both parts are compared in
    constant time, and both always are."""
    parts = split_authorization(header)
    if parts is None or parts[0].lower() != "basic":
        return "expected an Authorization header with scheme Basic"
    try:
        user, sep, given = base64.b64decode(parts[1], validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return "invalid basic auth credentials: not base64"
    if not sep:
        return "invalid basic auth credentials: no ':' between user and password"
    user_ok = hmac.compare_digest(username.encode("utf-8"), user)
    password_ok = hmac.compare_digest(password, given)
    return None if user_ok and password_ok else "user name or password do not match"


def basic_header(username: str, password: bytes) -> str:
    """The ``Authorization`` value of HTTP basic auth (Go's ``SetBasicAuth``: standard base64 of ``user:pass``)."""
    return "Basic " + base64.b64encode(username.encode("utf-8") + b":" + password).decode("ascii")
