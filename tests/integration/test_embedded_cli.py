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
    cfg, state = small_pipeline
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(3000, seed=5, months=2), p.cfg.data), p.landing_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # no server: the embedded mode
    ctp = Path(sys.executable).parent / "ctp"
    proc = subprocess.run(
        [str(ctp), "run", "--config", str(cfg), "--state-dir", str(state), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert [r["status"] for r in doc["cycles"]] == ["accumulating"]
    assert proc.stderr.count("Starting temporary server") == 1  # one server, the one started early
    assert (state / "prefect" / "prefect.db").exists()  # its database in the state folder
    assert _servers_on(state / "prefect") == []  # stopped with the process
