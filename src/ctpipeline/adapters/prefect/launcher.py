"""Prefect adapter for the webhook receiver: create one flow run of a deployment, without waiting for it.

Every Prefect import is inside a method (importing this module costs nothing).
"""

from __future__ import annotations

import logging
from typing import Protocol

from ctpipeline.errors import CtpError

logger = logging.getLogger(__name__)

MAX_TAG_CHARS = 100
MAX_PARAM_CHARS = 500
_MAX_ERROR_CHARS = 200


class AlertLike(Protocol):
    """What the launcher reads of an alert (``ctpipeline.webhook.payloads.Alert`` has it)."""

    @property
    def source(self) -> str: ...

    @property
    def dedupe_key(self) -> str: ...

    @property
    def launch_id(self) -> str | None: ...

    @property
    def sender(self) -> str: ...

    def describe(self) -> dict[str, str]:
        """reason, name, sender, receiver, source, dedupe_key, model: the flow run's ``alert`` parameter."""
        ...


class LaunchError(CtpError):
    """The flow run could not be created (Prefect unreachable, deployment missing...): 503, retry later."""


def _short(text: str, limit: int = _MAX_ERROR_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_parameters(alert: AlertLike) -> dict:
    """The flow run's parameters (merged with the deployment's defaults by Prefect): ``trigger`` and ``alert``,
    the ``alert: dict | None`` parameter of ``continuous_training`` (each value cut to MAX_PARAM_CHARS)."""
    return {"trigger": "webhook", "alert": {k: str(v)[:MAX_PARAM_CHARS] for k, v in alert.describe().items()}}


def run_tags(alert: AlertLike) -> list[str]:
    tags = ["ctp-webhook", f"source:{alert.source}", f"alert:{alert.dedupe_key}"]
    if alert.sender:
        tags.append(f"sender:{alert.sender}")
    return [t[:MAX_TAG_CHARS] for t in tags]


class PrefectLauncher:
    """Creates one flow run of a deployment through the Prefect API with parameters ``{"trigger": "webhook",
    "alert": {...}}`` (:func:`run_parameters`, merged with the deployment's defaults), tags ``ctp-webhook``,
    ``source:<tool>``, ``alert:<dedupe key>`` and ``sender:<name>``, and the alert's ``launch_id`` as idempotency
    key. It returns as soon as the run is created (state Scheduled);
    a ``serve()`` process or a worker picks it up.

    ``api_url`` defaults to the ``PREFECT_API_URL`` setting. There must be one: without it Prefect would start a
    private ephemeral server that no runner polls.
    """

    def __init__(self, api_url: str | None = None, timeout_seconds: float = 10.0):
        from prefect.settings import PREFECT_API_URL

        self.api_url = api_url or PREFECT_API_URL.value()
        if not self.api_url:
            raise CtpError(
                "the webhook needs a Prefect server: set PREFECT_API_URL "
                "(e.g. http://127.0.0.1:4200/api, see `ctp ui prefect`)"
            )
        self.timeout_seconds = timeout_seconds

    def _client(self):
        from prefect.client.orchestration import SyncPrefectClient
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

        # a fresh client per launch: fails fast on a refused connection (Prefect only retries those after a first
        # successful connection) and is never shared between request threads
        return SyncPrefectClient(
            self.api_url,
            api_key=PREFECT_API_KEY.value(),
            auth_string=PREFECT_API_AUTH_STRING.value(),
            httpx_settings={"timeout": self.timeout_seconds},
        )

    def launch(self, model: str, deployment: str, alert: AlertLike) -> str:
        """Create the flow run of `deployment` ("flow-name/deployment-name") for `alert`; its id. LaunchError
        when Prefect cannot be reached or has no such deployment."""
        from prefect.exceptions import ObjectNotFound
        from prefect.states import Scheduled

        try:
            with self._client() as client:
                dep = client.read_deployment_by_name(deployment)
                run = client.create_flow_run_from_deployment(
                    dep.id,
                    parameters=run_parameters(alert),
                    tags=run_tags(alert),
                    state=Scheduled(),
                    idempotency_key=alert.launch_id,
                )
        except ObjectNotFound:
            raise LaunchError(
                f"deployment {deployment!r} not found on {self.api_url} (is `ctp serve` running?)"
            ) from None
        except Exception as exc:  # connection refused, timeouts, 5xx after Prefect's own retries
            raise LaunchError(
                f"Prefect API {self.api_url} unavailable: {type(exc).__name__}: {_short(str(exc))}"
            ) from exc
        logger.info("started flow run %s of %s for %s alert %s", run.id, deployment, alert.source, alert.dedupe_key)
        return str(run.id)
