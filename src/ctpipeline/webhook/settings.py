"""Receiver settings: ``configs/webhook.yaml``, read with the project's one YAML loader (``ctpipeline.config.loader``:
duplicated keys refused, unknown keys answered with "did you mean")."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ctpipeline.config.loader import load_model


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
    """Read ``configs/webhook.yaml`` (ConfigError naming the file and each bad key otherwise); a relative
    ``state_path`` is resolved against the file's folder."""
    p = Path(path)
    settings: WebhookSettings = load_model(p, WebhookSettings)
    state = Path(settings.state_path).expanduser()
    if not state.is_absolute():
        state = (p.resolve().parent / state).resolve()
    return settings.model_copy(update={"state_path": str(state)})
