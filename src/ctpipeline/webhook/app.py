"""Webhook receiver: turns authenticated alerts into (at most) one continuous-training run per model.

Prefect OSS has no incoming webhooks, so this small FastAPI app sits in front of the Prefect API. ``POST /alerts``:

1. **size**: bodies over ``max_body_bytes`` get 413, judged by ``Content-Length`` and by the bytes read;
2. **content type**: anything but ``application/json`` gets 415;
3. **authenticates** the request as one of the configured senders (:mod:`ctpipeline.webhook.senders`: the
   receiver's HMAC, an Authorization header, basic auth or Grafana's HMAC): 401 on missing or wrong credentials,
   or a signed timestamp more than ``max_skew_seconds`` away from the receiver's clock;
4. **validates and normalises** the payload (:mod:`ctpipeline.webhook.payloads`): 422 if it is none of the
   accepted shapes;
5. **admits** each alert (:func:`ctpipeline.core.admission.admit`: dedupe window, then per-model cooldown) and
   **launches** one flow run of the model's Prefect deployment through a :class:`Launcher`: the launch is
   claimed in one short :meth:`WebhookState.transaction <ctpipeline.webhook.store.WebhookState.transaction>`,
   made with no lock held, and recorded in another, so 100 concurrent copies of one alert start exactly one
   run and a slow Prefect API holds up no other model; answers 202 without waiting for the run, or 503 with
   ``Retry-After: 30`` when a due run could not be created.

No Prefect import here: the receiver only sees a :class:`Launcher` (``ctpipeline.adapters.prefect.launcher``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request  # module level: FastAPI resolves the endpoint's annotations here

from ctpipeline.core.admission import LAUNCH_LEASE_SECONDS, admit, reuses_launch_id
from ctpipeline.webhook.payloads import Alert, PayloadError, normalise, parse_body
from ctpipeline.webhook.senders import authenticate, load_senders
from ctpipeline.webhook.settings import WebhookSettings
from ctpipeline.webhook.store import LaunchRecord, PendingLaunch, StateTransaction, WebhookState

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.responses import JSONResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30


class Launcher(Protocol):
    def launch(self, model: str, deployment: str, alert: Alert) -> str:
        """Create one flow run of `deployment` for `alert`; return its id without waiting for it to run."""
        ...


class _Receiver:
    """The per-alert decision and launch, for one app: settings, launcher, state and clock."""

    def __init__(self, settings: WebhookSettings, launcher: Launcher, state: WebhookState, now: Callable[[], float]):
        self.settings, self.launcher, self.state, self.now = settings, launcher, state, now

    def process_all(self, alerts: list[Alert]) -> list[dict[str, Any]]:
        return [self.process(a) for a in alerts]

    def process(self, alert: Alert) -> dict[str, Any]:
        """Decide and, if due, launch; the state is committed before returning, and no lock is held while the
        launcher calls the orchestrator."""
        entry: dict[str, Any] = {"model": alert.model, "dedupe_key": alert.dedupe_key, "source": alert.source}
        if alert.status == "resolved":
            return {**entry, "status": "resolved-ignored", "reason": "resolved alerts start nothing"}
        models = self.settings.models
        if not alert.model:
            return {**entry, "status": "unknown-model", "reason": "unknown model: no 'model' or 'pipeline' label"}
        deployment = models.get(alert.model)
        if deployment is None:
            return {
                **entry,
                "status": "unknown-model",
                "reason": f"unknown model {alert.model!r} (configured: {', '.join(sorted(models))})",
            }
        with self.state.transaction(alert.model) as tx:
            claimed = self._admit_and_claim(tx, alert)
        if isinstance(claimed, dict):
            return {**entry, **claimed}
        return {**entry, **self._launch(dataclasses.replace(alert, launch_id=claimed), deployment)}

    def _admit_and_claim(self, tx: StateTransaction, alert: Alert) -> str | dict[str, Any]:
        """The launch id now claimed for `alert`, or the answer when it may not start a run."""
        t = self.now()
        window = self.settings.dedupe_window_minutes
        pending = tx.pending(alert.model, alert.dedupe_key)
        admission = admit(
            model=alert.model,
            dedupe_key=alert.dedupe_key,
            now=t,
            last_for_key=tx.last_for_key(alert.model, alert.dedupe_key),
            last_for_model=tx.last_for_model(alert.model),
            dedupe_window_minutes=window,
            cooldown_minutes=self.settings.cooldown_minutes,
            in_flight_for_key=pending.in_flight if pending else None,
            in_flight_for_model=tx.in_flight_for_model(alert.model),
        )
        if not admission.accepted:
            return {"status": admission.verdict, "flow_run_id": admission.flow_run_id, "reason": admission.reason}
        reuse = pending is not None and reuses_launch_id(t, pending.created_at, window)
        launch_id = pending.launch_id if reuse else f"ctp-webhook-{uuid.uuid4()}"
        created = pending.created_at if reuse else t
        tx.set_pending(alert.model, alert.dedupe_key, PendingLaunch(launch_id, created, t + LAUNCH_LEASE_SECONDS))
        return launch_id

    def _launch(self, alert: Alert, deployment: str) -> dict[str, Any]:
        """Call the launcher (no lock held), then record the run, or release the claim of a failed launch."""
        launch_id = alert.launch_id or ""
        try:
            run_id = str(self.launcher.launch(alert.model, deployment, alert))
        except Exception as exc:
            # keep the pending launch id (a retry reuses it) but record no dedupe key and no cooldown
            logger.warning("launch of %s for %s failed: %s", deployment, alert.dedupe_key, exc)
            with self.state.transaction(alert.model) as tx:
                tx.release(alert.model, alert.dedupe_key, launch_id)
            return {"status": "launch-failed", "reason": f"could not start a run: {exc}"}
        record = LaunchRecord(
            model=alert.model,
            dedupe_key=alert.dedupe_key,
            launched_at=self.now(),
            flow_run_id=run_id,
            source=alert.source,
            reason=alert.reason,
            sender=alert.sender,
        )
        with self.state.transaction(alert.model) as tx:
            tx.record_launch(record)
        return {
            "status": "started",
            "flow_run_id": run_id,
            "reason": f"started {deployment} run {run_id}" + (f": {alert.reason}" if alert.reason else ""),
        }


def _error(status: int, reason: str) -> JSONResponse:
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": reason}, status_code=status)


async def _read_body(request: Request, max_bytes: int) -> bytes | JSONResponse:
    """The body, or the 400/413 answer: announced size first, then the bytes actually read (a missing or lying
    Content-Length does not get around the limit)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return _error(400, "invalid Content-Length")
        if int(declared) > max_bytes:
            return _error(413, f"body larger than {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return _error(413, f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    settings: WebhookSettings,
    launcher: Launcher,
    now: Callable[[], float] = time.time,
    secret: bytes | None = None,
    secrets: Mapping[str, bytes] | None = None,
) -> FastAPI:
    """The receiver. Each sender's secret is ``secrets[name]``, else ``secret``, else the value of the sender's
    ``secret_env`` environment variable, read once here: CtpError naming the variable when it is unset or shorter
    than 16 characters."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    senders = load_senders(settings.effective_senders, secrets, secret)
    state = WebhookState(settings.state_path)
    receiver = _Receiver(settings, launcher, state, now)

    app = FastAPI(title="ctpipeline webhook receiver", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.webhook_state = state

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": sorted(settings.models)}

    @app.post("/alerts")
    async def alerts(request: Request):
        body = await _read_body(request, settings.max_body_bytes)
        if not isinstance(body, bytes):
            return body
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            return _error(415, f"content type must be application/json, got {ctype or 'none'!r}")
        sender, problem = authenticate(
            senders, request.headers, body, now=now(), max_skew_seconds=settings.max_skew_seconds
        )
        if sender is None:
            return _error(401, problem)
        try:
            parsed = [dataclasses.replace(a, sender=sender.name) for a in normalise(parse_body(body))]
        except PayloadError as exc:
            return _error(422, str(exc))
        # off the event loop: launches are blocking HTTP calls, serialised per model
        runs = await run_in_threadpool(receiver.process_all, parsed)
        failed = [r for r in runs if r["status"] == "launch-failed"]
        if failed:
            return JSONResponse(
                {"error": "; ".join(r["reason"] for r in failed), "accepted": 0, "runs": runs},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return JSONResponse({"accepted": len(parsed), "runs": runs}, status_code=202)

    return app


def serve(app: FastAPI, host: str, port: int, verbose: bool = False) -> None:
    """Run the receiver with uvicorn, one worker (blocks)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="debug" if verbose else "info", workers=1)
