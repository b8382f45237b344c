"""CLI commands for the webhook receiver.

``add_commands(subparsers)`` adds to ``ctp``::

    ctp webhook serve [--config configs/webhook.yaml] [--host H] [--port P]   run the receiver (uvicorn)
    ctp webhook send --model M [--reason R] [--url U] [--dedupe-key K]        sign and POST a generic test alert

Each sets ``func`` to a function ``(args) -> int``; ``cli.build_parser`` calls ``add_commands``.
"""

from __future__ import annotations

import json
import sys

DEFAULT_WEBHOOK_CONFIG = "configs/webhook.yaml"
DEFAULT_URL = "http://127.0.0.1:8787/alerts"


def cmd_webhook_serve(args) -> int:
    from ctpipeline.adapters.prefect.launcher import PrefectLauncher
    from ctpipeline.cli.common import setup_process
    from ctpipeline.webhook.app import create_app, serve
    from ctpipeline.webhook.settings import load_webhook_settings

    setup_process(args)
    settings = load_webhook_settings(args.config)
    host = args.host or settings.host
    port = args.port or settings.port
    app = create_app(settings, PrefectLauncher())  # both fail early: secret unset, PREFECT_API_URL unset
    print(
        f"webhook receiver on http://{host}:{port}/alerts for {', '.join(sorted(settings.models))} "
        f"(state {settings.state_path})",
        flush=True,
    )
    serve(app, host, port, verbose=args.verbose)
    return 0


def cmd_webhook_send(args) -> int:
    import httpx

    from ctpipeline.webhook.auth import read_secret, signed_headers

    secret = read_secret(args.secret_env)
    payload = {"model": args.model, "reason": args.reason, "status": args.status}
    if args.dedupe_key:
        payload["dedupe_key"] = args.dedupe_key
    body = json.dumps(payload).encode()
    try:
        resp = httpx.post(args.url, content=body, headers=signed_headers(secret, body), timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"error: could not reach {args.url}: {exc}", file=sys.stderr)
        return 1
    try:
        shown = json.dumps(resp.json(), indent=2)
    except ValueError:
        shown = resp.text
    print(f"HTTP {resp.status_code}\n{shown}")
    return 0 if resp.status_code == 202 else 1


def add_commands(subparsers) -> None:
    """Add ``webhook serve`` and ``webhook send`` to a ``ctp`` subparsers object."""
    wh = subparsers.add_parser("webhook", help="receive alerts (HMAC-signed webhooks) that start training runs")
    whsub = wh.add_subparsers(dest="webhook_command", required=True, metavar="SUBCOMMAND")

    s = whsub.add_parser("serve", help="run the webhook receiver (needs PREFECT_API_URL and the secret's env var)")
    s.add_argument("--config", "-c", default=DEFAULT_WEBHOOK_CONFIG, help="receiver YAML (default: %(default)s)")
    s.add_argument("--host", help="bind address (default: the YAML's host, 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default: the YAML's port, 8787)")
    s.add_argument("--state-dir", help="embedded state folder, for environment defaults (default: $CTP_HOME or .ctp)")
    s.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    s.set_defaults(func=cmd_webhook_serve)

    t = whsub.add_parser("send", help="sign and POST a generic test alert; exit 0 on 202")
    t.add_argument("--model", "-m", required=True, help="model/pipeline name, e.g. flights-delay")
    t.add_argument("--reason", "-r", default="manual test alert", help="why retrain (default: %(default)s)")
    t.add_argument("--status", choices=["firing", "resolved"], default="firing")
    t.add_argument("--dedupe-key", help="alerts with the same key start at most one run per dedupe window")
    t.add_argument("--url", default=DEFAULT_URL, help="receiver URL (default: %(default)s)")
    t.add_argument(
        "--secret-env",
        default="CTP_WEBHOOK_SECRET",
        help="environment variable holding the HMAC secret (default: %(default)s)",
    )
    t.add_argument("--timeout", type=float, default=30.0, help="seconds (default: %(default)s)")
    t.set_defaults(func=cmd_webhook_send)
