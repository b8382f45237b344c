"""CLI commands for the webhook receiver.

``add_commands(subparsers)`` adds to ``ctp``::

    ctp webhook serve [--config configs/webhook.yaml] [--host H] [--port P] [--state-dir D]   run the receiver
    ctp webhook send --model M [--reason R] [--config F] [--url U] [--sender S]   POST an authenticated test alert

Each sets ``func`` to a function ``(args) -> int``; ``cli.build_parser`` calls ``add_commands``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT_WEBHOOK_CONFIG = "configs/webhook.yaml"
DEFAULT_URL = "http://127.0.0.1:8787/alerts"
DEFAULT_SECRET_ENV = "CTP_WEBHOOK_SECRET"


def cmd_webhook_serve(args) -> int:
    from ctpipeline.adapters.prefect.launcher import PrefectLauncher
    from ctpipeline.cli.common import setup_process
    from ctpipeline.webhook.app import create_app, serve
    from ctpipeline.webhook.settings import load_webhook_settings

    paths = setup_process(args)
    settings = load_webhook_settings(args.config, paths.root)  # a relative state_path lies in the state folder
    host = args.host or settings.host
    port = args.port or settings.port
    app = create_app(settings, PrefectLauncher())  # both fail early: a secret unset or short, PREFECT_API_URL unset
    senders = ", ".join(f"{s.name} ({s.auth})" for s in settings.effective_senders)
    print(
        f"webhook receiver on http://{host}:{port}/alerts for {', '.join(sorted(settings.models))} "
        f"(senders {senders}; state {settings.state_path})",
        flush=True,
    )
    serve(app, host, port, verbose=args.verbose)
    return 0


def _target(args):
    """(URL, sender settings) for `send`: the receiver's config gives both unless --url / --secret-env say
    otherwise; a missing default config falls back to 127.0.0.1:8787 and the HMAC secret of --secret-env."""
    from ctpipeline.errors import ConfigError
    from ctpipeline.webhook.settings import SenderSettings, load_webhook_settings

    settings = None
    if args.config is not None or Path(DEFAULT_WEBHOOK_CONFIG).is_file():
        settings = load_webhook_settings(args.config or DEFAULT_WEBHOOK_CONFIG)
    url = args.url
    if url is None and settings is not None:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}/alerts"
    senders = settings.effective_senders if settings is not None else ()
    if args.sender:
        sender = next((s for s in senders if s.name == args.sender), None)
        if sender is None:
            known = ", ".join(s.name for s in senders) or "none: no receiver config"
            raise ConfigError(args.config or DEFAULT_WEBHOOK_CONFIG, f"no sender {args.sender!r} (senders: {known})")
    else:
        sender = next((s for s in senders if s.auth == "hmac"), senders[0] if senders else None)
    if sender is None or args.secret_env:
        sender = SenderSettings(
            name=sender.name if sender else "default",
            auth=sender.auth if sender else "hmac",
            secret_env=args.secret_env or DEFAULT_SECRET_ENV,
            **({k: getattr(sender, k) for k in ("scheme", "username", "header", "timestamp_header")} if sender else {}),
        )
    return url or DEFAULT_URL, sender


def auth_headers(sender, secret: bytes, body: bytes) -> dict[str, str]:
    """The headers that authenticate `body` as `sender` (any auth kind), with the JSON content type."""
    import time

    from ctpipeline.webhook.auth import basic_header, grafana_sign, signed_headers

    if sender.auth == "hmac":
        return signed_headers(secret, body)
    h = {"Content-Type": "application/json"}
    if sender.auth == "authorization":
        h["Authorization"] = f"{sender.auth_scheme} {secret.decode()}"
    elif sender.auth == "basic":
        h["Authorization"] = basic_header(sender.username, secret)
    else:
        ts = str(int(time.time())) if sender.timestamp_header else None
        h[sender.signature_header] = grafana_sign(secret, body, ts)
        if ts is not None:
            h[sender.timestamp_header] = ts
    return h


def cmd_webhook_send(args) -> int:
    import httpx

    from ctpipeline.webhook.auth import read_secret

    url, sender = _target(args)
    secret = read_secret(sender.secret_env, f"the secret of webhook sender {sender.name!r}")
    payload = {"model": args.model, "reason": args.reason, "status": args.status}
    if args.dedupe_key:
        payload["dedupe_key"] = args.dedupe_key
    if args.name:
        payload["name"] = args.name
    body = json.dumps(payload).encode()
    try:
        resp = httpx.post(url, content=body, headers=auth_headers(sender, secret, body), timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"error: could not reach {url}: {exc}", file=sys.stderr)
        return 1
    try:
        shown = json.dumps(resp.json(), indent=2)
    except ValueError:
        shown = resp.text
    print(f"HTTP {resp.status_code} from {url} (as sender {sender.name}, {sender.auth})\n{shown}")
    return 0 if resp.status_code == 202 else 1


def add_commands(subparsers) -> None:
    """Add ``webhook serve`` and ``webhook send`` to a ``ctp`` subparsers object."""
    wh = subparsers.add_parser("webhook", help="receive alerts (authenticated webhooks) that start training runs")
    whsub = wh.add_subparsers(dest="webhook_command", required=True, metavar="SUBCOMMAND")

    s = whsub.add_parser("serve", help="run the webhook receiver (needs PREFECT_API_URL and the senders' secrets)")
    s.add_argument("--config", "-c", default=DEFAULT_WEBHOOK_CONFIG, help="receiver YAML (default: %(default)s)")
    s.add_argument("--host", help="bind address (default: the YAML's host, 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default: the YAML's port, 8787)")
    s.add_argument("--state-dir", help="state folder; a relative state_path lies in it (default: $CTP_HOME or .ctp)")
    s.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    s.set_defaults(func=cmd_webhook_serve)

    t = whsub.add_parser("send", help="POST a generic test alert, authenticated as a configured sender; 0 on 202")
    t.add_argument("--model", "-m", required=True, help="model/pipeline name, e.g. flights-delay")
    t.add_argument("--reason", "-r", default="manual test alert", help="why retrain (default: %(default)s)")
    t.add_argument("--name", help="the alert's name (recorded with the run)")
    t.add_argument("--status", choices=["firing", "resolved"], default="firing")
    t.add_argument("--dedupe-key", help="alerts with the same key start at most one run per dedupe window")
    t.add_argument(
        "--config", "-c", help=f"receiver YAML: its host, port and senders (default: {DEFAULT_WEBHOOK_CONFIG} if there)"
    )
    t.add_argument("--url", help=f"receiver URL (default: from --config, else {DEFAULT_URL})")
    t.add_argument("--sender", help="authenticate as this sender of the config (default: its first hmac sender)")
    t.add_argument(
        "--secret-env",
        help=f"environment variable holding the secret (default: the sender's secret_env, else {DEFAULT_SECRET_ENV})",
    )
    t.add_argument("--timeout", type=float, default=30.0, help="seconds (default: %(default)s)")
    t.set_defaults(func=cmd_webhook_send)
