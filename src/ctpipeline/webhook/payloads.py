"""Alert payloads: strict JSON, then the generic shape, Prometheus Alertmanager's webhook (version 4) or Grafana
unified alerting's webhook, each normalised to :class:`Alert` objects (see docs/webhook.md for the shapes)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_REASON_CHARS = 500
_GENERIC_SHAPE = (
    ' (expected {"model": ..., "reason": ..., "status": "firing"|"resolved", "dedupe_key": optional, "name": optional,'
    ' "labels": {...}})'
)


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert, whatever tool sent it."""

    model: str
    status: Literal["firing", "resolved"]
    dedupe_key: str
    reason: str
    labels: dict[str, str]
    source: Literal["generic", "alertmanager", "grafana"]
    name: str = ""  # the alert's name: label `alertname` (Alertmanager; Grafana: the rule title) or `name`
    receiver: str = ""  # the sending tool's receiver / contact point name (`receiver` of the notification)
    sender: str = ""  # the configured sender that authenticated the request (set by the receiver)
    # Set by the receiver just before launching: the same value is reused when a failed launch is retried, so a
    # launcher can pass it to Prefect as the flow run's idempotency key (a lost answer never makes two runs).
    launch_id: str | None = None

    def describe(self) -> dict[str, str]:
        """What the flow run's ``alert`` parameter, its MLflow tags and the decision record carry of the alert."""
        keys = ("reason", "name", "sender", "receiver", "source", "dedupe_key", "model")
        return {k: getattr(self, k) for k in keys}


class PayloadError(ValueError):
    """The body is not one of the accepted shapes (422)."""


class _Generic(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    name: str = Field(default="", max_length=200)
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
    receiver: str | None = Field(default=None, max_length=500)
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
        return _group_alerts(payload)
    return [_generic_alert(payload)]


def _group_alerts(payload: dict[str, Any]) -> list[Alert]:
    """The alerts of an Alertmanager or (with ``orgId``) Grafana notification."""
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
        reason = (
            a.annotations.get("summary")
            or a.annotations.get("description")
            or (group.title if source == "grafana" else None)
            or labels.get("alertname")
            or ""
        )
        out.append(
            Alert(
                model=model,
                status=status,
                dedupe_key=f"{source}:{ident}:{a.startsAt or ''}",
                reason=_short(reason),
                labels=labels,
                source=source,
                name=_short(labels.get("alertname", ""), 200),
                receiver=_short(group.receiver or "", 200),
            )
        )
    return out


def _generic_alert(payload: dict[str, Any]) -> Alert:
    try:
        g = _Generic.model_validate(payload)
    except ValidationError as err:
        raise PayloadError(_validation_message(err, "generic") + _GENERIC_SHAPE) from None
    labels = {k: "" if v is None else str(v) for k, v in g.labels.items()}
    key = g.dedupe_key or _digest({"model": g.model, "reason": g.reason, "labels": labels})
    return Alert(
        model=g.model,
        status=g.status,
        dedupe_key=f"generic:{key}",
        reason=_short(g.reason),
        labels=labels,
        source="generic",
        name=g.name or labels.get("alertname", ""),
    )
