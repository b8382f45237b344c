"""Long-running processes against a real Prefect server: `ctp serve` stops on Ctrl-C within seconds, and two
`ctp webhook serve` receivers sharing one state file start exactly one run for the same alert."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import WEBHOOK_SECRET, free_port, write_pipeline_config

pytestmark = pytest.mark.slow


def _env(api_url: str, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "CTP_"))}
    env.update(PREFECT_API_URL=api_url, PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    env.update(MLFLOW_DISABLE_TELEMETRY="true", PYTHONUNBUFFERED="1", **extra)
    return env


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:  # a file, not a pipe: nothing blocks on a full pipe buffer
        cmd = [sys.executable, "-m", "ctpipeline", *args]
        return subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)


def _wait_for_text(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    t0 = time.monotonic()
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() - t0 < timeout, f"no {text!r} after {timeout:.0f} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("target", ["process group", "serve process only", "SIGTERM to the serve process"])
def test_ctp_serve_stops_within_seconds_on_ctrl_c_even_with_a_run_in_progress(prefect_server, tmp_path, target):
    """Ctrl-C in a terminal sends SIGINT to the whole process group: `ctp serve` and the flow-run process it
    started (here held after taking the training slot); `kill -INT`, or SIGTERM from a supervisor, signals `ctp
    serve` alone. Either way both must be gone within seconds, and the training slot released."""
    import os

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    from ctpipeline.adapters.prefect.concurrency import slot_name

    cfg = write_pipeline_config(tmp_path)
    log = tmp_path / "serve.log"
    args = ["serve", "--config", str(cfg), "--state-dir", str(tmp_path / "state")]
    env = _env(PREFECT_API_URL.value(), CTP_FAULT_PAUSE="slot-acquired:600", PREFECT_RUNNER_POLL_FREQUENCY="2")
    with open(log, "wb") as f:
        cmd = [sys.executable, "-m", "ctpipeline", *args]
        # SIGINT as a terminal's foreground job has it: a suite started in the background of a script (`cmd &`
        # without job control, nohup) runs with SIGINT ignored, which every child inherits and CPython keeps
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        _wait_for_text(log, "serving continuous-training/flights-delay", proc, 300)
        with get_client(sync_client=True) as client:
            t0 = time.monotonic()
            # "serving ..." is logged just before serve() registers the deployment; the one of the previous case
            # (same name, on the same session server) may still be there, with that case's state folder
            state = (tmp_path / "state").resolve()
            while True:
                try:
                    dep = client.read_deployment_by_name("continuous-training/flights-delay")
                except ObjectNotFound:
                    dep = None
                if dep is not None and Path(dep.parameters.get("state_dir") or "/").resolve() == state:
                    break
                assert time.monotonic() - t0 < 120 and proc.poll() is None, log.read_text()[-3000:]
                time.sleep(1)
            client.create_flow_run_from_deployment(dep.id, parameters={"trigger": "test"})
        _wait_for_text(log, "pausing 600 s at checkpoint 'slot-acquired'", proc, 300)
        t0 = time.monotonic()
        if target == "process group":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        elif target == "serve process only":
            proc.send_signal(signal.SIGINT)
        else:  # what systemd, Docker and other supervisors send: the same stop as Ctrl-C to the serve alone
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 90 s after SIGINT:\n{log.read_text()[-3000:]}")
        elapsed = time.monotonic() - t0
        gone = _children_gone(proc.pid)  # before the clean-up below kills whatever is left
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert elapsed < 10, f"{elapsed:.1f} s from SIGINT to exit:\n{log.read_text()[-3000:]}"
    # each of our lines once: Prefect's handlers print them, ours does not as well (it did, when the flow was
    # imported before the process set PREFECT_LOGGING_EXTRA_LOGGERS)
    assert log.read_text().count("serving continuous-training/flights-delay") == 1, log.read_text()[:2000]
    if target != "process group":  # nothing but the run's own end is reported (Prefect's SIGTERM handler made a
        # never-awaited coroutine and asyncio tracebacks; the process group's child prints its KeyboardInterrupt)
        assert "Traceback" not in log.read_text() and "never awaited" not in log.read_text(), log.read_text()[-3000:]
    assert rc in (0, 130), log.read_text()[-3000:]
    assert gone, "a flow-run process outlived `ctp serve`"
    with get_client(sync_client=True) as client:
        taken = client.read_global_concurrency_limit_by_name(slot_name("flights-delay")).active_slots
    if target == "process group":  # the run got the interrupt itself and gave its training slot back
        assert taken == 0
    else:  # Prefect's runner ends its children without letting them clean up: the lease is left to expire, and the
        # lock file names a dead holder that never released it, so the next cycle here reclaims the slot at once
        holder = json.loads((tmp_path / "state" / "pipelines" / "flights-delay" / "train.lock").read_text())
        assert taken in (0, 1) and "released_at" not in holder and not Path(f"/proc/{holder['pid']}").exists()


def _children_gone(pgid: int) -> bool:
    """No process of the serve's session (its flow-run children) is left, after a few seconds' grace."""
    import os

    for _ in range(20):
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == pgid and fields[0] != "Z" and int(stat.parent.name) != os.getpid():
                alive.append(stat.parent.name)
        if not alive:
            return True
        time.sleep(0.5)
    return False


def _post(port: int, body: bytes, ts: int, out: list, barrier: threading.Barrier) -> None:
    import httpx

    from ctpipeline.webhook.auth import signed_headers

    headers = {**signed_headers(WEBHOOK_SECRET, body, timestamp=ts), "content-type": "application/json"}
    barrier.wait()
    out.append((port, httpx.post(f"http://127.0.0.1:{port}/alerts", content=body, headers=headers, timeout=60)))


def test_two_webhook_receivers_on_one_state_file_start_exactly_one_run_for_one_alert(prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.settings import PREFECT_API_URL

    from ctpipeline.flow import continuous_training

    api = PREFECT_API_URL.value()
    cfg = write_pipeline_config(tmp_path)
    continuous_training.to_deployment(name="flights-delay", parameters={"config": str(cfg)}).apply()
    wh = tmp_path / "webhook.yaml"
    wh.write_text(
        yaml.safe_dump(
            {
                "secret_env": "CTP_WEBHOOK_SECRET",
                "models": {"flights-delay": "continuous-training/flights-delay"},
                "state_path": str(tmp_path / "webhook-state.db"),
            }
        )
    )
    env = _env(api, CTP_WEBHOOK_SECRET=WEBHOOK_SECRET.decode())
    ports = [free_port(), free_port()]
    procs = [
        _start(["webhook", "serve", "--config", str(wh), "--port", str(port)], env, tmp_path / f"wh{port}.log")
        for port in ports
    ]
    try:
        for port, proc in zip(ports, procs, strict=True):
            _wait_for_text(tmp_path / f"wh{port}.log", f"127.0.0.1:{port}", proc, 300)
        body = json.dumps({"model": "flights-delay", "reason": "drift", "status": "firing", "dedupe_key": "d-1"})
        answers: list = []
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=_post, args=(port, body.encode(), int(time.time()), answers, barrier))
            for port in ports
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for proc in procs:
            _stop(proc)
    assert sorted(r.status_code for _, r in answers) == [202, 202], [(p, r.text) for p, r in answers]
    statuses = sorted(run["status"] for _, r in answers for run in r.json()["runs"])
    assert statuses.count("started") == 1, [r.json() for _, r in answers]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["ctp-webhook"])))
    assert len(runs) == 1, [(r.name, r.tags) for r in runs]
