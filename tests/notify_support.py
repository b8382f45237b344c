"""A real HTTP endpoint for the notification tests: `http.server` in a thread on 127.0.0.1 (port 0) that records
the JSON body of each POST, and bounded waits for them (``from notify_support import Receiver``)."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Records ``(path, JSON body)`` for each POST and answers `status` (200 by default)."""

    def __init__(self, status: int = 200):
        self.posts: list[tuple[str, dict]] = []
        self.status = status
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.posts.append((self.path, json.loads(raw or b"{}")))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", userinfo: str = "") -> str:
        """The Apprise URL that POSTs a JSON body here (``json://``)."""
        return f"json://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{path}"

    def bodies(self) -> list[dict]:
        with self._lock:
            return [body for _, body in self.posts]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[dict]:
        """The bodies once at least `n` arrived (bounded: AssertionError after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.bodies()
            if len(got) >= n:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{n} notifications expected within {timeout:.0f}s, got {len(self.bodies())}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class LogLines(logging.Handler):
    """The records of one logger, each once (caplog's root handler may see a record twice when another test left
    a handler that re-emits to the root): ``with LogLines("ctpipeline.steps.notify") as lines: ...``."""

    def __init__(self, name: str):
        super().__init__(logging.DEBUG)
        self.logger, self.records = logging.getLogger(name), []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    def __enter__(self) -> LogLines:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self)
