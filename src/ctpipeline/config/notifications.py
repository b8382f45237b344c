"""The `notifications:` section: where a cycle's outcome is sent.

Each destination is an Apprise URL (Slack, e-mail, a webhook...) read at run time from the environment variable
named by `url_env`: the URL carries the destination's token, so it never goes in YAML (a `url:` key is refused).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ctpipeline.config.loader import did_you_mean
from ctpipeline.config.sections import Section

NotifyEvent = Literal["promoted", "rejected", "awaiting_approval", "failed"]
EVENTS: tuple[str, ...] = NotifyEvent.__args__
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NotificationConfig(Section):
    """One destination and the events it receives."""

    url_env: str = Field(
        description="Environment variable holding the Apprise URL, e.g. CTP_SLACK_URL=slack://T1/B2/token, "
        "mailto://user:pass@example.com or json://host/path (the URL carries the token: never in YAML)."
    )
    events: list[NotifyEvent] = Field(
        default_factory=lambda: list(EVENTS),
        min_length=1,
        description="Which outcomes to send: promoted, rejected (quality gate), awaiting_approval, failed "
        "(default: all four).",
    )
    timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Connect and read timeout of each message (a slow destination)."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_url(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "url" in data:
            raise ValueError(
                "'url' is refused: an Apprise URL carries its token and secrets never go in YAML; put the URL in "
                "an environment variable and name that variable with 'url_env' (e.g. url_env: CTP_SLACK_URL)"
            )
        return data

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, v: str) -> str:  # the value is never echoed: it may be a URL with its token
        if "://" in v or "@" in v:
            raise ValueError(
                "names an environment variable (e.g. CTP_SLACK_URL), not the URL itself: the URL carries its "
                "token and never goes in YAML; set it in that variable"
            )
        if not ENV_NAME.match(v):
            raise ValueError("not an environment variable name (letters, digits and '_', not starting with a digit)")
        return v

    @field_validator("events", mode="before")
    @classmethod
    def _known_events(cls, v: Any) -> Any:
        for e in v if isinstance(v, list) else []:
            if isinstance(e, str) and e not in EVENTS:
                raise ValueError(f"unknown event {e!r}{did_you_mean(e, EVENTS)} (events: {', '.join(EVENTS)})")
        return v


def unset_variables(notifications: list[NotificationConfig], environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(key, warning)`` for each destination whose `url_env` is unset or empty in `environ`: its messages
    would not be sent (a warning, not an error: a developer's machine need not reach the team's Slack)."""
    return [
        (
            f"notifications.{i}.url_env",
            f"{n.url_env} is not set in the environment: {', '.join(n.events)} messages to it will not be sent",
        )
        for i, n in enumerate(notifications)
        if not environ.get(n.url_env)
    ]
