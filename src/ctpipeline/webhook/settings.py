"""Receiver settings: ``configs/webhook.yaml``, read with the project's one YAML loader (``ctpipeline.config.loader``:
duplicated keys refused, unknown keys answered with "did you mean").

Who may send alerts is a list of **senders**, each with a name, an ``auth`` kind and the name of the environment
variable that holds its secret (never the secret itself):

* ``hmac``: the receiver's own signature (``X-CTP-Timestamp``, ``X-CTP-Signature``), for custom senders and
  ``ctp webhook send``;
* ``authorization``: an ``Authorization: <scheme> <credentials>`` header (``scheme`` default ``Bearer``), what
  Alertmanager's ``http_config.authorization`` and Grafana's *Authorization header* send;
* ``basic``: HTTP basic auth (``username`` here, the password from ``secret_env``), Alertmanager's
  ``http_config.basic_auth`` and Grafana's *Basic auth*;
* ``grafana-hmac``: Grafana's *HMAC signature* option: hex HMAC-SHA256 in ``header`` (default
  ``X-Grafana-Alerting-Signature``), over ``<timestamp>:<body>`` when ``timestamp_header`` is set, else the body.

Without ``senders``, the top-level ``secret_env`` defines one ``hmac`` sender named ``default``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ctpipeline.config.loader import load_model

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
HEADER_NAME = r"^[A-Za-z0-9-]{1,100}$"
GRAFANA_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
DEFAULT_STATE_PATH = "webhook/state.db"
AuthKind = Literal["hmac", "authorization", "basic", "grafana-hmac"]


class SenderSettings(BaseModel):
    """One alert source allowed to call ``POST /alerts``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Sender id, recorded with each alert it sends.")
    auth: AuthKind = Field(description="hmac | authorization | basic | grafana-hmac")
    secret_env: str = Field(
        pattern=ENV_NAME,
        description="Environment variable holding the secret: HMAC key, Authorization credentials or password.",
    )
    scheme: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._~+/-]{1,40}$", description="authorization: the scheme (default Bearer)."
    )
    username: str | None = Field(default=None, min_length=1, max_length=200, description="basic: the user name.")
    header: str | None = Field(
        default=None, pattern=HEADER_NAME, description=f"grafana-hmac: signature header ({GRAFANA_SIGNATURE_HEADER})."
    )
    timestamp_header: str | None = Field(
        default=None, pattern=HEADER_NAME, description="grafana-hmac: timestamp header (unset: no timestamp)."
    )

    @model_validator(mode="after")
    def _options_fit_the_kind(self) -> SenderSettings:
        allowed = {"authorization": {"scheme"}, "basic": {"username"}, "grafana-hmac": {"header", "timestamp_header"}}
        given = {k for k in ("scheme", "username", "header", "timestamp_header") if getattr(self, k) is not None}
        wrong = sorted(given - allowed.get(self.auth, set()))
        if wrong:
            raise ValueError(f"sender {self.name!r} (auth {self.auth}) does not take {', '.join(wrong)}")
        if self.auth == "basic" and self.username is None:
            raise ValueError(f"sender {self.name!r} (auth basic) needs a username")
        if self.auth == "authorization" and (self.scheme or "").lower() == "basic":
            raise ValueError(f"sender {self.name!r}: use auth: basic for the Basic scheme")
        return self

    @property
    def signature_header(self) -> str:
        return self.header or GRAFANA_SIGNATURE_HEADER

    @property
    def auth_scheme(self) -> str:
        return self.scheme or "Bearer"


class WebhookSettings(BaseModel):
    """Receiver settings (``configs/webhook.yaml``). Secrets never appear here: only the names of the environment
    variables that hold them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret_env: str = Field(
        default="CTP_WEBHOOK_SECRET",
        pattern=ENV_NAME,
        description="Without `senders`: the environment variable of the one HMAC sender's secret.",
    )
    senders: tuple[SenderSettings, ...] = Field(
        default=(), description="Who may send alerts and how each authenticates (default: one hmac sender)."
    )
    max_skew_seconds: int = Field(
        default=300,
        ge=1,
        description="Reject requests whose timestamp is older or newer than this (replay protection).",
    )
    max_body_bytes: int = Field(default=256_000, ge=1, description="Larger bodies get 413.")
    dedupe_window_minutes: float = Field(
        default=60, ge=0, description="An alert (dedupe key) that started a run less than this ago starts nothing."
    )
    cooldown_minutes: float = Field(default=30, ge=0, description="At most one run per model per cooldown.")
    models: dict[str, str] = Field(
        description="Model/pipeline name -> Prefect deployment name 'flow-name/deployment-name'."
    )
    state_path: str = Field(
        default=DEFAULT_STATE_PATH,
        description="SQLite file for dedupe keys and cooldowns (survives restarts); relative: in the state folder.",
    )
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

    @model_validator(mode="after")
    def _senders(self) -> WebhookSettings:
        if self.senders and "secret_env" in self.model_fields_set:
            raise ValueError("give either secret_env (one hmac sender) or senders, not both")
        names = [s.name for s in self.senders]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"sender names must be unique: {', '.join(dupes)}")
        return self

    @property
    def effective_senders(self) -> tuple[SenderSettings, ...]:
        """The configured senders, or the one ``hmac`` sender ``default`` of ``secret_env``."""
        return self.senders or (SenderSettings(name="default", auth="hmac", secret_env=self.secret_env),)


def load_webhook_settings(path: str | Path, state_dir: str | Path | None = None) -> WebhookSettings:
    """Read ``configs/webhook.yaml`` (ConfigError naming the file and each bad key otherwise).

    A relative ``state_path`` is resolved against ``state_dir``, the state folder (``ctp webhook serve`` passes
    ``--state-dir``, else ``$CTP_HOME``, else ``.ctp``); without one, against the YAML file's folder."""
    p = Path(path)
    settings: WebhookSettings = load_model(p, WebhookSettings)
    state = Path(settings.state_path).expanduser()
    if not state.is_absolute():
        base = Path(state_dir).expanduser() if state_dir is not None else p.resolve().parent
        state = (base / state).resolve()
    return settings.model_copy(update={"state_path": str(state)})
