"""The webhook receiver: authenticated alerts in, at most one continuous-training flow run per model out.

* :mod:`~ctpipeline.webhook.settings`: :class:`WebhookSettings`, :class:`SenderSettings`,
  :func:`load_webhook_settings`;
* :mod:`~ctpipeline.webhook.auth`: the checks of each kind of sender: the receiver's HMAC (:func:`sign`,
  :func:`verify`, :func:`signed_headers`), Grafana's HMAC (:func:`grafana_sign`), Authorization header, basic auth;
* :mod:`~ctpipeline.webhook.senders`: which configured sender sent a request (:func:`authenticate`);
* :mod:`~ctpipeline.webhook.payloads`: :class:`Alert`, :func:`parse_body`, :func:`normalise`;
* :mod:`~ctpipeline.webhook.store`: :class:`WebhookState`, the SQLite state;
* :mod:`~ctpipeline.webhook.app`: :func:`create_app` (FastAPI) and the :class:`Launcher` protocol.

The admission rule itself is pure: :func:`ctpipeline.core.admission.admit`. The Prefect launcher is an adapter:
:class:`ctpipeline.adapters.prefect.launcher.PrefectLauncher`.
"""

from ctpipeline.webhook.app import Launcher, create_app, serve
from ctpipeline.webhook.auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    check_request,
    grafana_sign,
    read_secret,
    sign,
    signed_headers,
    verify,
)
from ctpipeline.webhook.payloads import Alert, PayloadError, normalise, parse_body
from ctpipeline.webhook.senders import authenticate, load_senders
from ctpipeline.webhook.settings import SenderSettings, WebhookSettings, load_webhook_settings
from ctpipeline.webhook.store import WebhookState

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Alert",
    "Launcher",
    "PayloadError",
    "SenderSettings",
    "WebhookSettings",
    "WebhookState",
    "authenticate",
    "check_request",
    "create_app",
    "grafana_sign",
    "load_senders",
    "load_webhook_settings",
    "normalise",
    "parse_body",
    "read_secret",
    "serve",
    "sign",
    "signed_headers",
    "verify",
]
