"""Which configured sender sent a request: each sender's check on the headers and body (``webhook.auth`` holds
the primitives), with secrets read from the environment once, when the receiver starts.

A request is accepted when one sender's check passes; the first such sender's name is recorded with its alerts.
When none passes, the 401 reason is that of the first sender whose credentials the request carries (its
headers are there but wrong), else "no credentials" naming what the configured senders expect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ctpipeline.errors import CtpError
from ctpipeline.webhook.auth import (
    MIN_SECRET_CHARS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_authorization,
    check_basic,
    check_grafana,
    check_request,
    read_secret,
    split_authorization,
)
from ctpipeline.webhook.settings import SenderSettings

_WHAT = {
    "hmac": "HMAC secret",
    "authorization": "Authorization credentials",
    "basic": "basic-auth password",
    "grafana-hmac": "Grafana HMAC secret",
}


@dataclass(frozen=True)
class Verdict:
    """A sender's view of one request: whether the request carries its kind of credentials, and the problem
    with them (None: authenticated)."""

    presented: bool
    problem: str | None


@dataclass(frozen=True)
class Sender:
    """A configured sender with its secret."""

    settings: SenderSettings
    secret: bytes

    @property
    def name(self) -> str:
        return self.settings.name

    def check(self, headers: Mapping[str, str], body: bytes, *, now: float, max_skew_seconds: int) -> Verdict:
        s = self.settings
        auth = headers.get("authorization")
        if s.auth == "hmac":
            ts, sig = headers.get(TIMESTAMP_HEADER.lower()), headers.get(SIGNATURE_HEADER.lower())
            problem = check_request(self.secret, ts or "", sig or "", body, now=now, max_skew_seconds=max_skew_seconds)
            return Verdict(ts is not None or sig is not None, problem)
        if s.auth == "grafana-hmac":
            sig = headers.get(s.signature_header.lower())
            ts = headers.get(s.timestamp_header.lower(), "") if s.timestamp_header else None
            if sig is None:
                return Verdict(False, f"missing {s.signature_header} header")
            return Verdict(True, check_grafana(self.secret, sig, ts, body, now=now, max_skew_seconds=max_skew_seconds))
        parts = split_authorization(auth) if auth is not None else None
        scheme = "Basic" if s.auth == "basic" else s.auth_scheme
        presented = parts is not None and parts[0].lower() == scheme.lower()
        if auth is None:
            return Verdict(False, "missing Authorization header")
        if s.auth == "basic":
            return Verdict(presented, check_basic(s.username or "", self.secret, auth))
        return Verdict(presented, check_authorization(self.secret, scheme, auth))

    def expects(self) -> str:
        s = self.settings
        if s.auth == "hmac":
            return f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
        if s.auth == "grafana-hmac":
            return s.signature_header
        return f"Authorization: {'Basic' if s.auth == 'basic' else s.auth_scheme} ..."


def load_senders(
    senders: tuple[SenderSettings, ...], secrets: Mapping[str, bytes] | None = None, default: bytes | None = None
) -> tuple[Sender, ...]:
    """Each sender with its secret: ``secrets[name]``, else `default`, else its ``secret_env`` variable. A secret
    shorter than MIN_SECRET_CHARS characters, or missing, is refused (CtpError naming the variable)."""
    out = []
    for s in senders:
        what = f"the {_WHAT[s.auth]} of webhook sender {s.name!r}"
        given = (secrets or {}).get(s.name, default)
        if given is None:
            secret = read_secret(s.secret_env, what, MIN_SECRET_CHARS)
        elif len(given.decode("utf-8", "replace")) < MIN_SECRET_CHARS:
            raise CtpError(f"{what} ({s.secret_env}) is shorter than {MIN_SECRET_CHARS} characters")
        else:
            secret = given
        out.append(Sender(s, secret))
    return tuple(out)


def authenticate(
    senders: tuple[Sender, ...], headers: Mapping[str, str], body: bytes, *, now: float, max_skew_seconds: int
) -> tuple[Sender | None, str]:
    """``(sender, "")`` for the first sender whose check passes, else ``(None, reason for the 401)``.
    `headers`: lowercase names (Starlette's ``request.headers`` is case-insensitive too)."""
    verdicts = [(s, s.check(headers, body, now=now, max_skew_seconds=max_skew_seconds)) for s in senders]
    for sender, v in verdicts:
        if v.problem is None:
            return sender, ""
    for _, v in verdicts:
        if v.presented:
            return None, v.problem or "not authenticated"
    if len(senders) == 1:
        return None, verdicts[0][1].problem or "not authenticated"
    expected = "; or ".join(dict.fromkeys(s.expects() for s in senders))
    return None, f"no credentials: expected {expected}"
