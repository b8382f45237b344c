"""Headless Chromium driven over its DevTools protocol (a websocket), for the MLflow UI behind basic auth.

Credentials in the URL (``http://user:pass@host/``) do not work for MLflow's UI: the single-page app's ``fetch``
calls refuse a page URL that carries credentials ("Request cannot be constructed from a URL that includes
credentials"). So the browser is logged in the way a person does it, by answering its basic-auth challenge:
``Fetch.enable(handleAuthRequests=true)`` pauses every request, ``Fetch.authRequired`` is answered with the user
and password (or cancelled, to see what a visitor without them gets), every other paused request is continued.
Then the page's DOM is read with ``Runtime.evaluate`` until it shows what we wait for, within a bounded time.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


def chromium_argv(binary: str, profile: Path) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",  # we run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--window-size=1600,1000",
        "about:blank",
    ]


@contextmanager
def chromium(binary: str, timeout: float = 60.0):
    """A headless Chromium; yields the websocket URL of its first page. Killed on exit."""
    profile = Path(tempfile.mkdtemp(prefix="ctp-chromium-"))
    log = profile / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            chromium_argv(binary, profile), stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL
        )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, f"chromium exited with {proc.returncode}: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"chromium did not open its DevTools port in {timeout}s"
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
        yield pages[0]["webSocketDebuggerUrl"]
    finally:
        proc.kill()
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """One page over CDP: send commands, answer paused requests and auth challenges while waiting."""

    def __init__(self, ws, credentials: tuple[str, str] | None):
        self.ws, self.credentials, self.n = ws, credentials, 0
        self.challenges = 0

    def _handle(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Fetch.requestPaused":
            self.ws.send(
                json.dumps(
                    {"id": self._id(), "method": "Fetch.continueRequest", "params": {"requestId": params["requestId"]}}
                )
            )
        elif method == "Fetch.authRequired":
            self.challenges += 1
            if self.credentials:
                answer = {
                    "response": "ProvideCredentials",
                    "username": self.credentials[0],
                    "password": self.credentials[1],
                }
            else:
                answer = {"response": "CancelAuth"}
            self.ws.send(
                json.dumps(
                    {
                        "id": self._id(),
                        "method": "Fetch.continueWithAuth",
                        "params": {"requestId": params["requestId"], "authChallengeResponse": answer},
                    }
                )
            )

    def _id(self) -> int:
        self.n += 1
        return self.n

    def call(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        mid = self._id()
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no answer to {method} in {timeout}s"
            msg = json.loads(self.ws.recv(timeout=left))
            if msg.get("id") == mid:
                assert "error" not in msg, f"{method}: {msg['error']}"
                return msg.get("result", {})
            self._handle(msg)

    def pump(self, seconds: float) -> None:
        """Answer events for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                return
            self._handle(msg)

    def dom(self) -> str:
        res = self.call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML", "returnByValue": True})
        return res["result"]["value"]


def text_of(html: str) -> str:
    html = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def open_and_dump(
    ws_url: str, url: str, credentials: tuple[str, str] | None, want: list[str], timeout: float = 90.0
) -> tuple[str, int]:
    """Open `url`, logging in with `credentials` when challenged; (the page's DOM once every string of `want`
    shows in its text, or when `timeout` passes; how many auth challenges the browser met)."""
    from websockets.sync.client import connect

    with connect(ws_url, max_size=64 * 2**20, open_timeout=30) as ws:
        page = Page(ws, credentials)
        page.call("Fetch.enable", {"handleAuthRequests": True, "patterns": [{"urlPattern": "*"}]})
        page.call("Page.enable")
        page.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        html = ""
        while time.monotonic() < deadline:
            page.pump(1.0)
            html = page.dom()
            if all(w in text_of(html) for w in want):
                break
        return html, page.challenges
