"""Container health check: exit 0 when GET URL answers 2xx within 5 s, else 1 (one line on stderr saying why).

Usage: ctp-healthcheck [URL]   (default: $CTP_HEALTH_URL, else the webhook receiver's /healthz on 8787)
The slim image has no curl; this uses the standard library only.
"""

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else os.environ.get("CTP_HEALTH_URL", "http://127.0.0.1:8787/healthz")
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (a fixed loopback URL)
            ok = 200 <= resp.status < 300
            if not ok:
                print(f"unhealthy: {url} answered {resp.status}", file=sys.stderr)
            return 0 if ok else 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
