"""Helpers for the webhook integration tests: `ctp serve` in a subprocess of its own process group, the receiver
under uvicorn in a thread, waiting for a deployment and reading its runs. Everything on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from conftest import ROOT, free_port, stop_process_group

RUN_TIMEOUT_S = 150


def tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@contextmanager
def serve_process(cfg_path: Path, state: Path, api_url: str, workdir: Path):
    """`serve` in a subprocess of its own process group; SIGTERM (then SIGKILL) to the group on exit."""
    log_path = workdir / "serve.log"
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(workdir / "prefect-home"),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",  # default 10 s between polls for scheduled runs
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONUNBUFFERED": "1",
    }
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ctpipeline", "serve", "--config", str(cfg_path), "--state-dir", str(state)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            yield proc, log_path
        finally:
            stop_process_group(proc, timeout=30)
            try:  # children left in the group (a flow run still going): stop them too
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@contextmanager
def uvicorn_app(app):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="webhook-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        assert not thread.is_alive(), "uvicorn did not stop"


def wait_for_deployment(client, name: str, proc, log_path: Path, timeout: float = 90):
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.read_deployment_by_name(name)
        except ObjectNotFound:
            pass
        assert proc.poll() is None, f"serve exited with {proc.returncode}:\n{tail(log_path)}"
        assert time.monotonic() < deadline, f"deployment {name} not registered in {timeout}s:\n{tail(log_path)}"
        time.sleep(0.5)


def runs_of(client, deployment_id):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


class Recorder:
    """ASGI wrapper that keeps, for each request, when it came, its path, user agent, status and JSON answer
    (never its credentials)."""

    def __init__(self, app):
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rec = {"t": time.time(), "path": scope["path"], "agent": headers.get("user-agent", ""), "status": None}
        body = []

        async def recording_send(message):
            if message["type"] == "http.response.start":
                rec["status"] = message["status"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, recording_send)
        try:
            rec["answer"] = json.loads(b"".join(body) or b"null")
        except ValueError:
            rec["answer"] = None
        self.seen.append(rec)

    def alerts(self) -> list[dict]:
        return [r for r in self.seen if r["path"] == "/alerts"]


def wait_until(what: str, check, timeout: float, interval: float = 0.25, on_fail=lambda: ""):
    """Poll `check()` until it returns something truthy (returned), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s\n{on_fail()}")
        time.sleep(interval)


@contextmanager
def alertmanager_process(binary: str, config: Path, workdir: Path):
    """A real Alertmanager on 127.0.0.1 (clustering off), ready before the block; its base URL and log path."""
    import httpx

    port = free_port()
    log_path = workdir / "alertmanager.log"
    cmd = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port on 0.0.0.0:9094
        "--log.level=debug",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:

            def ready():
                assert proc.poll() is None, f"alertmanager exited with {proc.returncode}:\n{tail(log_path)}"
                try:
                    return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until("alertmanager ready", ready, 30, on_fail=lambda: tail(log_path))
            yield base, log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
