"""`ctp run` in the embedded mode (no PREFECT_API_URL), as a user's first command runs it: the ephemeral Prefect
server is started early on a background thread (adapters/prefect/server.py), the flow run waits for it, and the
process leaves no server behind when it exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctpipeline.core import data
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

from conftest import make_flights_like

pytestmark = pytest.mark.slow


def _servers_on(home: Path) -> list[int]:
    """Pids of live processes whose environment has PREFECT_HOME=`home` (Prefect's ephemeral server inherits it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"PREFECT_HOME={home}".encode() in env and b"uvicorn" in cmd:
            found.append(int(proc.name))
    return found


def test_ctp_run_starts_the_embedded_server_early_and_leaves_none_behind(small_pipeline):
    """... and never imports Prefect's server application (FastAPI and its routers, ~2 s of CPU): the server runs
    in its own process, and this one's Prefect settings point at it."""
    cfg, state = small_pipeline
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(3000, seed=5, months=2), p.cfg.data), p.landing_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # no server: the embedded mode
    ctp = Path(sys.executable).parent / "ctp"
    proc = subprocess.run(  # -X importtime: each module this process imports, on stderr
        [
            sys.executable,
            "-X",
            "importtime",
            str(ctp),
            "run",
            "--config",
            str(cfg),
            "--state-dir",
            str(state),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert [r["status"] for r in doc["cycles"]] == ["accumulating"]
    assert proc.stderr.count("Starting temporary server") == 1  # one server, the one started early
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "prefect.flow_engine" in imported  # the flow ran in this process ...
    assert not {m for m in imported if m.startswith("prefect.server")}  # ... without Prefect's server application
    assert "View at http" not in proc.stderr  # no link to a server that serves no UI
    assert (state / "prefect" / "prefect.db").exists()  # its database in the state folder
    assert _servers_on(state / "prefect") == []  # stopped with the process


def test_ctrl_c_stops_an_embedded_run_within_seconds_and_records_it(small_pipeline, tmp_path):
    """Ctrl-C in a terminal sends SIGINT to the whole process group. The embedded Prefect server runs in a session
    of its own (adapters/prefect/server.py), so it stays up while the interrupted run reports its end; when it
    died with the command's group, the run retried a gone server for minutes (227 s measured) and exited 1."""
    import signal
    import time

    cfg, state = small_pipeline
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(3000, seed=5, months=2), p.cfg.data), p.landing_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # no server: the embedded mode
    env["CTP_FAULT_PAUSE"] = "slot-acquired:600"  # held mid-run, with the training slot taken
    ctp = Path(sys.executable).parent / "ctp"
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(ctp), "run", "--config", str(cfg), "--state-dir", str(state)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's foreground job
        )
    try:
        t0 = time.monotonic()
        while "pausing 600 s at checkpoint 'slot-acquired'" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() - t0 < 300, log.read_text()[-3000:]
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        t0 = time.monotonic()
        rc = proc.wait(timeout=120)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text(errors="replace")
    assert rc == 130 and "interrupted" in text, text[-3000:]
    assert elapsed < 30, f"{elapsed:.1f} s from SIGINT to exit:\n{text[-3000:]}"
    assert "Connection refused" not in text, text[-3000:]  # the server was there to the end
    assert _servers_on(state / "prefect") == []  # and stopped with the process
    assert p.batch_log.records() == []  # nothing recorded as done: the batch is still to process
