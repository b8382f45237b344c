"""Webhook receiver: turns authenticated alerts into (at most) one continuous-training run per model.

Prefect OSS has no incoming webhooks, so this small FastAPI app sits in front of the Prefect API:

* **authenticates** every request with HMAC-SHA256 over ``f"{timestamp}.".encode() + body`` (as GitHub and
  Stripe sign theirs), rejecting timestamps more than ``max_skew_seconds`` away from the receiver's clock;
* **validates and normalises** the payload: the generic shape documented in ``docs/webhook.md``, Prometheus
  Alertmanager's webhook (version 4) and Grafana unified alerting's webhook all become :class:`Alert` objects;
* **dedupes**: an alert whose dedupe key already started a run within ``dedupe_window_minutes`` starts nothing,
  and a model that started a run less than ``cooldown_minutes`` ago starts nothing either;
* **launches** one flow run of the model's Prefect deployment through a :class:`Launcher` and answers 202
  without waiting for the run.

The check-launch-record sequence is serialised per model (a thread lock, plus a SQLite write transaction so
that two receiver processes on the same state file cannot both launch), and the state is written to SQLite
before the answer goes out, so 100 concurrent copies of one alert start exactly one run, and a restart keeps
the dedupe keys and cooldowns.

No Prefect import at module level: :class:`PrefectLauncher` imports it when constructed.

Signing, in a shell (see docs/webhook.md)::

    ts=$(date +%s)
    sig="sha256=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$CTP_WEBHOOK_SECRET" -hex | sed 's/^.* //')"
    curl -H "Content-Type: application/json" -H "X-CTP-Timestamp: $ts" -H "X-CTP-Signature: $sig" \
         --data-binary "$body" http://127.0.0.1:8787/alerts
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import hmac
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request  # module level: FastAPI resolves the endpoint's annotations here

from ctpipeline.errors import ConfigError, CtpError

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-CTP-Signature"
TIMESTAMP_HEADER = "X-CTP-Timestamp"
SIGNATURE_PREFIX = "sha256="

MAX_REASON_CHARS = 500
MAX_TAG_CHARS = 100

# --------------------------------------------------------------------------- settings


class WebhookSettings(BaseModel):
    """Receiver settings (``configs/webhook.yaml``). The secret itself never appears here: only the name of the
    environment variable that holds it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_env: str = Field(
        default="CTP_WEBHOOK_SECRET",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of the environment variable holding the HMAC secret (never the secret itself).",
    )
    max_skew_seconds: int = Field(
        default=300, ge=1, description="Reject requests whose timestamp is older or newer than this (replay protection)."
    )
    max_body_bytes: int = Field(default=256_000, ge=1, description="Larger bodies get 413.")
    dedupe_window_minutes: float = Field(
        default=60, ge=0, description="An alert (dedupe key) that started a run less than this ago starts nothing."
    )
    cooldown_minutes: float = Field(default=30, ge=0, description="At most one run per model per cooldown.")
    models: dict[str, str] = Field(
        description="Model/pipeline name -> Prefect deployment name 'flow-name/deployment-name'."
    )
    state_path: str = Field(description="SQLite file for dedupe keys and cooldowns (survives restarts).")
    host: str = Field(default="127.0.0.1", description="`ctp webhook serve` binds here.")
    port: int = Field(default=8787, ge=1, le=65535, description="`ctp webhook serve` listens here.")

    @field_validator("models")
    @classmethod
    def _deployments(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("at least one model -> deployment mapping is needed")
        for model, dep in v.items():
            if not model.strip():
                raise ValueError("model names must not be empty")
            parts = dep.split("/")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                raise ValueError(f"deployment for {model!r} must be 'flow-name/deployment-name', got {dep!r}")
        return v


def load_webhook_settings(path: str | Path) -> WebhookSettings:
    """Read ``configs/webhook.yaml``; a relative ``state_path`` is resolved against the file's folder."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(p), "file not found") from None
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(p), f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(p), "the file must hold a YAML mapping (key: value pairs) at the top level")
    try:
        settings = WebhookSettings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(str(p), _format_errors(err, known=list(WebhookSettings.model_fields))) from None
    state = Path(settings.state_path).expanduser()
    if not state.is_absolute():
        state = (p.resolve().parent / state).resolve()
    return settings.model_copy(update={"state_path": str(state)})


def _format_errors(err: ValidationError, known: list[str] | None = None) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(e["loc"][-1]), known or [], n=1)
            msg = "unknown key" + (f"; did you mean {close[0]!r}?" if close else "")
        problems.append((loc, msg))
    return problems


def read_secret(settings: WebhookSettings) -> bytes:
    value = os.environ.get(settings.secret_env, "")
    if not value:
        raise CtpError(f"environment variable {settings.secret_env} (the webhook's HMAC secret) is not set or empty")
    return value.encode("utf-8")


# --------------------------------------------------------------------------- signing


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``"sha256=" + hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + body))``.

    ``timestamp`` is the decimal Unix time in seconds, sent as ``X-CTP-Timestamp``; the result is sent as
    ``X-CTP-Signature``. Signing the timestamp with the body makes a captured request useless once it is older
    than ``max_skew_seconds``.
    """
    mac = hmac.new(secret, f"{timestamp}.".encode("ascii"), hashlib.sha256)
    mac.update(body)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signed_headers(secret: bytes, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers for a signed JSON POST (used by `ctp webhook send` and the tests)."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    return {"Content-Type": "application/json", TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body)}


_TS_RE = re.compile(r"^[0-9]{1,12}$")
_SIG_RE = re.compile(r"^sha256=[0-9a-fA-F]{64}$")


# --------------------------------------------------------------------------- payloads


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert, whatever tool sent it."""

    model: str
    status: Literal["firing", "resolved"]
    dedupe_key: str
    reason: str
    labels: dict[str, str]
    source: Literal["generic", "alertmanager", "grafana"]
    # Set by the receiver just before launching: the same value is reused when a failed launch is retried, so a
    # launcher can pass it to Prefect as the flow run's idempotency key (a lost answer never makes two runs).
    launch_id: str | None = None


class PayloadError(ValueError):
    """The body is not one of the accepted shapes (422)."""



class _Generic(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    status: Literal["firing", "resolved"] = "firing"
    dedupe_key: str | None = Field(default=None, min_length=1, max_length=500)
    labels: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=200)


class _AmAlert(BaseModel):
    """One alert of an Alertmanager / Grafana group (extra fields ignored: the tools add some over time)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    status: Literal["firing", "resolved"] | None = None
    labels: dict[str, str] = Field(default_factory=dict, max_length=200)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=200)
    startsAt: str | None = Field(default=None, max_length=100)
    fingerprint: str | None = Field(default=None, max_length=200)


class _AmGroup(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    version: str | None = Field(default=None, max_length=20)
    status: Literal["firing", "resolved"] | None = None
    alerts: list[_AmAlert] = Field(min_length=1, max_length=1000)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    groupKey: str | None = Field(default=None, max_length=5000)
    # Grafana unified alerting adds these (version "1"):
    orgId: int | None = None
    state: str | None = Field(default=None, max_length=100)
    title: str | None = None
    message: str | None = None


def _short(text: str, limit: int = MAX_REASON_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _reject_constant(name: str) -> Any:
    raise PayloadError(f"body is not valid JSON: {name} is not allowed")


def parse_body(body: bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no absurd nesting; raises PayloadError with a readable reason."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except PayloadError:
        raise
    except RecursionError:
        raise PayloadError("body is not valid JSON: nested too deeply") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PayloadError(f"body is not valid JSON: {_short(str(exc), 200)}") from None


def _validation_message(err: ValidationError, shape: str) -> str:
    parts = []
    for e in err.errors(include_url=False, include_input=False, include_context=False)[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        parts.append(f"{loc}: {e['msg']}")
    return f"not a valid {shape} alert: " + "; ".join(parts)


def normalise(payload: Any) -> list[Alert]:
    """Turn a decoded JSON body into alerts, or raise PayloadError (422) saying what is wrong.

    * ``alerts`` key present: Prometheus Alertmanager (webhook version 4) or, with ``orgId``, Grafana unified
      alerting; the model comes from each alert's label ``model`` or ``pipeline``; the dedupe key from the
      alert's fingerprint (or its labels) and ``startsAt``, so one alert episode is one key.
    * otherwise the generic shape ``{"model", "reason", "status", "dedupe_key", "labels"}``; without a
      ``dedupe_key`` the key is a digest of model, reason and labels.
    """
    if not isinstance(payload, dict):
        raise PayloadError(
            f"body must be a JSON object (generic alert, Alertmanager or Grafana webhook), got {type(payload).__name__}"
        )
    if "alerts" in payload:
        source: Literal["alertmanager", "grafana"] = "grafana" if "orgId" in payload else "alertmanager"
        try:
            group = _AmGroup.model_validate(payload)
        except ValidationError as err:
            raise PayloadError(_validation_message(err, "Grafana" if source == "grafana" else "Alertmanager")) from None
        out = []
        for a in group.alerts:
            labels = {**group.commonLabels, **a.labels}
            model = labels.get("model") or labels.get("pipeline") or ""
            status = a.status or group.status or "firing"
            ident = a.fingerprint or _digest(labels)
            reason = (a.annotations.get("summary") or a.annotations.get("description")
                      or (group.title if source == "grafana" else None) or labels.get("alertname") or "")
            out.append(Alert(model=model, status=status, dedupe_key=f"{source}:{ident}:{a.startsAt or ''}",
                             reason=_short(reason), labels=labels, source=source))
        return out
    try:
        g = _Generic.model_validate(payload)
    except ValidationError as err:
        raise PayloadError(_validation_message(err, "generic") + " (expected {\"model\": ..., \"reason\": ..., "
                           "\"status\": \"firing\"|\"resolved\", \"dedupe_key\": optional, \"labels\": {...}})") from None
    labels = {k: "" if v is None else str(v) for k, v in g.labels.items()}
    key = g.dedupe_key or _digest({"model": g.model, "reason": g.reason, "labels": labels})
    return [Alert(model=g.model, status=g.status, dedupe_key=f"generic:{key}", reason=_short(g.reason),
                  labels=labels, source="generic")]


# --------------------------------------------------------------------------- launching


class Launcher(Protocol):
    def launch(self, model: str, deployment: str, alert: Alert) -> str:
        """Create one flow run of `deployment` for `alert`; return its id without waiting for it to run."""
        ...


class LaunchError(CtpError):
    """The flow run could not be created (Prefect unreachable, deployment missing...): 503, retry later."""


class PrefectLauncher:
    """Creates one flow run of a deployment through the Prefect API with parameters ``{"trigger": "webhook"}``
    (merged with the deployment's defaults), tags ``ctp-webhook``, ``source:<tool>`` and ``alert:<dedupe key>``,
    and the alert's ``launch_id`` as idempotency key. It returns as soon as the run is created (state Scheduled);
    a ``serve()`` process or a worker picks it up.

    ``api_url`` defaults to the ``PREFECT_API_URL`` setting. There must be one: without it Prefect would start a
    private ephemeral server that no runner polls.
    """

    def __init__(self, api_url: str | None = None, timeout_seconds: float = 10.0):
        from prefect.settings import PREFECT_API_URL

        self.api_url = api_url or PREFECT_API_URL.value()
        if not self.api_url:
            raise CtpError("the webhook needs a Prefect server: set PREFECT_API_URL "
                           "(e.g. http://127.0.0.1:4200/api, see `ctp ui prefect`)")
        self.timeout_seconds = timeout_seconds

    def _client(self):
        from prefect.client.orchestration import SyncPrefectClient
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

        # a fresh client per launch: fails fast on a refused connection (Prefect only retries those after a first
        # successful connection) and is never shared between request threads
        return SyncPrefectClient(self.api_url, api_key=PREFECT_API_KEY.value(),
                                 auth_string=PREFECT_API_AUTH_STRING.value(),
                                 httpx_settings={"timeout": self.timeout_seconds})

    def launch(self, model: str, deployment: str, alert: Alert) -> str:
        from prefect.exceptions import ObjectNotFound
        from prefect.states import Scheduled

        tags = ["ctp-webhook", f"source:{alert.source}", f"alert:{alert.dedupe_key}"[:MAX_TAG_CHARS]]
        try:
            with self._client() as client:
                dep = client.read_deployment_by_name(deployment)
                run = client.create_flow_run_from_deployment(
                    dep.id, parameters={"trigger": "webhook"}, tags=tags, state=Scheduled(),
                    idempotency_key=alert.launch_id,
                )
        except ObjectNotFound:
            raise LaunchError(f"deployment {deployment!r} not found on {self.api_url} (is `ctp serve` running?)") from None
        except Exception as exc:  # connection refused, timeouts, 5xx after Prefect's own retries
            raise LaunchError(f"Prefect API {self.api_url} unavailable: {type(exc).__name__}: {_short(str(exc), 200)}") from exc
        logger.info("started flow run %s of %s for %s alert %s", run.id, deployment, alert.source, alert.dedupe_key)
        return str(run.id)


# --------------------------------------------------------------------------- state


class WebhookState:
    """Dedupe keys, per-model last launch and pending launch ids in SQLite (WAL), shared by every receiver
    process on the same file."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS dedupe (
        model TEXT NOT NULL, dedupe_key TEXT NOT NULL, launched_at REAL NOT NULL, flow_run_id TEXT,
        PRIMARY KEY (model, dedupe_key));
    CREATE TABLE IF NOT EXISTS model_launch (
        model TEXT PRIMARY KEY, launched_at REAL NOT NULL, flow_run_id TEXT, dedupe_key TEXT);
    CREATE TABLE IF NOT EXISTS pending (
        model TEXT NOT NULL, dedupe_key TEXT NOT NULL, launch_id TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (model, dedupe_key));
    CREATE TABLE IF NOT EXISTS launches (
        launched_at REAL NOT NULL, model TEXT NOT NULL, dedupe_key TEXT NOT NULL, flow_run_id TEXT NOT NULL,
        source TEXT, reason TEXT);
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self.connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(self.SCHEMA)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=60000")
        return conn

    def launches(self, model: str | None = None) -> list[dict[str, Any]]:
        """Launch history (newest last), for tests and inspection."""
        with closing(self.connect()) as conn:
            conn.row_factory = sqlite3.Row
            q = "SELECT * FROM launches" + (" WHERE model = ?" if model else "") + " ORDER BY launched_at"
            return [dict(r) for r in conn.execute(q, (model,) if model else ())]


# --------------------------------------------------------------------------- the app


def create_app(settings: WebhookSettings, launcher: Launcher, now: Callable[[], float] = time.time,
               secret: bytes | None = None) -> FastAPI:
    """The receiver. ``secret`` defaults to the value of the ``settings.secret_env`` environment variable,
    read once here (CtpError if unset)."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    key = secret if secret is not None else read_secret(settings)
    if not key:
        raise CtpError("the webhook secret must not be empty")
    state = WebhookState(settings.state_path)
    locks: dict[str, threading.Lock] = {}
    locks_guard = threading.Lock()
    window_s = settings.dedupe_window_minutes * 60
    cooldown_s = settings.cooldown_minutes * 60

    def lock_for(model: str) -> threading.Lock:
        with locks_guard:
            return locks.setdefault(model, threading.Lock())

    def error(status: int, reason: str) -> JSONResponse:
        return JSONResponse({"error": reason}, status_code=status)

    def process(alert: Alert) -> dict[str, Any]:
        """Decide and, if due, launch: serialised per model; state committed before returning."""
        entry: dict[str, Any] = {"model": alert.model, "dedupe_key": alert.dedupe_key, "source": alert.source}
        if alert.status == "resolved":
            return {**entry, "status": "resolved-ignored", "reason": "resolved alerts start nothing"}
        if not alert.model:
            return {**entry, "status": "unknown-model", "reason": "unknown model: no 'model' or 'pipeline' label"}
        deployment = settings.models.get(alert.model)
        if deployment is None:
            return {**entry, "status": "unknown-model",
                    "reason": f"unknown model {alert.model!r} (configured: {', '.join(sorted(settings.models))})"}
        with lock_for(alert.model), closing(state.connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")  # also serialises receiver processes sharing the state file
            try:
                t = now()
                row = conn.execute("SELECT launched_at, flow_run_id FROM dedupe WHERE model = ? AND dedupe_key = ?",
                                   (alert.model, alert.dedupe_key)).fetchone()
                if row and t - row[0] < window_s:
                    conn.execute("ROLLBACK")
                    return {**entry, "status": "duplicate", "flow_run_id": row[1],
                            "reason": f"duplicate: this alert started run {row[1]} {(t - row[0]) / 60:.1f} min ago "
                                      f"(dedupe window {settings.dedupe_window_minutes:g} min)"}
                row = conn.execute("SELECT launched_at, flow_run_id FROM model_launch WHERE model = ?",
                                   (alert.model,)).fetchone()
                if row and t - row[0] < cooldown_s:
                    conn.execute("ROLLBACK")
                    return {**entry, "status": "cooldown", "flow_run_id": row[1],
                            "reason": f"cooldown: {alert.model} started run {row[1]} {(t - row[0]) / 60:.1f} min ago "
                                      f"(cooldown {settings.cooldown_minutes:g} min)"}
                row = conn.execute("SELECT launch_id, created_at FROM pending WHERE model = ? AND dedupe_key = ?",
                                   (alert.model, alert.dedupe_key)).fetchone()
                launch_id = row[0] if row and t - row[1] < max(window_s, 60) else f"ctp-webhook-{uuid.uuid4()}"
                conn.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)",
                             (alert.model, alert.dedupe_key, launch_id, t))
                try:
                    run_id = str(launcher.launch(alert.model, deployment, dataclasses.replace(alert, launch_id=launch_id)))
                except Exception as exc:
                    # keep the pending launch id (a retry reuses it) but record no dedupe key and no cooldown
                    conn.execute("COMMIT")
                    logger.warning("launch of %s for %s failed: %s", deployment, alert.dedupe_key, exc)
                    return {**entry, "status": "launch-failed", "reason": f"could not start a run: {exc}"}
                t_done = now()
                conn.execute("DELETE FROM pending WHERE model = ? AND dedupe_key = ?", (alert.model, alert.dedupe_key))
                conn.execute("INSERT OR REPLACE INTO dedupe VALUES (?, ?, ?, ?)",
                             (alert.model, alert.dedupe_key, t_done, run_id))
                conn.execute("INSERT OR REPLACE INTO model_launch VALUES (?, ?, ?, ?)",
                             (alert.model, t_done, run_id, alert.dedupe_key))
                conn.execute("INSERT INTO launches VALUES (?, ?, ?, ?, ?, ?)",
                             (t_done, alert.model, alert.dedupe_key, run_id, alert.source, alert.reason))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return {**entry, "status": "started", "flow_run_id": run_id,
                "reason": f"started {deployment} run {run_id}" + (f": {alert.reason}" if alert.reason else "")}

    def process_all(alerts: list[Alert]) -> list[dict[str, Any]]:
        return [process(a) for a in alerts]

    app = FastAPI(title="ctpipeline webhook receiver", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.webhook_state = state

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": sorted(settings.models)}

    @app.post("/alerts")
    async def alerts(request: Request):
        # 1. size: announced, then actually read (a missing or lying Content-Length does not get around it)
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                return error(400, "invalid Content-Length")
            if int(declared) > settings.max_body_bytes:
                return error(413, f"body larger than {settings.max_body_bytes} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body_bytes:
                return error(413, f"body larger than {settings.max_body_bytes} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        # 2. content type
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            return error(415, f"content type must be application/json, got {ctype or 'none'!r}")
        # 3. authentication
        ts = request.headers.get(TIMESTAMP_HEADER, "").strip()
        sig = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not ts or not sig:
            return error(401, f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
        if not _TS_RE.match(ts):
            return error(401, f"invalid {TIMESTAMP_HEADER}: expected Unix time in seconds")
        if not _SIG_RE.match(sig):
            return error(401, f"invalid {SIGNATURE_HEADER}: expected 'sha256=<64 hex digits>'")
        if not hmac.compare_digest(sign(key, ts, body).encode("ascii"), sig.lower().encode("ascii")):
            return error(401, "signature mismatch")
        if abs(now() - int(ts)) > settings.max_skew_seconds:
            return error(401, f"stale timestamp: more than {settings.max_skew_seconds}s away from the receiver's clock")
        # 4. payload
        try:
            parsed = normalise(parse_body(body))
        except PayloadError as exc:
            return error(422, str(exc))
        # 5. decide and launch, off the event loop (launches are blocking HTTP calls, serialised per model)
        runs = await run_in_threadpool(process_all, parsed)
        failed = [r for r in runs if r["status"] == "launch-failed"]
        if failed:
            return JSONResponse({"error": "; ".join(r["reason"] for r in failed), "accepted": 0, "runs": runs},
                                status_code=503, headers={"Retry-After": "30"})
        return JSONResponse({"accepted": len(parsed), "runs": runs}, status_code=202)

    return app
