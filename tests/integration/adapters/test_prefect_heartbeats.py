"""Flow runs that `ctp replay`/`ctp demo` start on the embedded server send no flow-run heartbeats (nothing reads
them there, and the engine's heartbeat thread costs up to 1 s at the end of every flow run); with a Prefect server
configured they keep Prefect's default.

Each case runs in a fresh interpreter: Prefect reads its settings from the environment when it is imported, and a
changed environment in this process would leak into later tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json
from prefect import flow
from prefect.flow_engine import FlowRunEngine
from prefect.settings import get_current_settings
from ctpipeline.adapters.prefect.server import embedded_flow_settings

@flow
def noop():
    return 1

out = {"before": get_current_settings().flows.heartbeat_frequency}
with embedded_flow_settings():
    out["inside"] = get_current_settings().flows.heartbeat_frequency
    out["engine"] = FlowRunEngine(flow=noop).heartbeat_seconds
out["after"] = get_current_settings().flows.heartbeat_frequency
print(json.dumps(out))
"""


def _probe(tmp_path, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    clean.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_PROFILES_PATH=str(tmp_path / "none.toml"), **env)
    proc = subprocess.run([sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("server", [False, True], ids=["embedded", "server-configured"])
def test_heartbeats_are_off_on_the_embedded_server_only(tmp_path, server):
    got = _probe(tmp_path, **({"PREFECT_API_URL": "http://127.0.0.1:4200/api"} if server else {}))
    assert got["before"] is not None and got["after"] == got["before"]  # Prefect's default outside
    if server:
        assert got["inside"] == got["before"] and got["engine"] == max(got["before"], 30)
    else:
        assert got["inside"] is None and got["engine"] is None  # the engine starts no heartbeat thread
