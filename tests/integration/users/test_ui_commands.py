"""`ctp ui prefect --port N`: the UI is told to talk to the server it started, on any port, even when the environment
points PREFECT_API_URL at another server. A real `prefect server start`, bounded waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest
from users_support import stop, wait_http

from ctpipeline.cli.tools import ui_command
from ctpipeline.store.state import StatePaths

from conftest import free_port

pytestmark = pytest.mark.integration


def test_ui_command_sets_the_api_url_of_the_port_it_serves(tmp_path):
    cmd, env = ui_command("prefect", StatePaths(tmp_path), "127.0.0.1", 4321)
    assert cmd[-4:] == ["--host", "127.0.0.1", "--port", "4321"]
    assert env["PREFECT_UI_API_URL"] == env["PREFECT_API_URL"] == "http://127.0.0.1:4321/api"
    _, wildcard = ui_command("prefect", StatePaths(tmp_path), "0.0.0.0", None)
    assert wildcard["PREFECT_UI_API_URL"] == "http://127.0.0.1:4200/api"  # what a browser can reach
    mlflow_cmd, mlflow_env = ui_command("mlflow", StatePaths(tmp_path), "127.0.0.1", 5555)
    assert f"sqlite:///{tmp_path / 'mlflow.db'}" in mlflow_cmd and mlflow_env == {}


@pytest.mark.slow
def test_ctp_ui_prefect_on_another_port_serves_its_own_api_url(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_API_URL": "http://127.0.0.1:9/api",  # another server: the UI must not follow it
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_UI_API_URL", None)
    cmd = [sys.executable, "-m", "ctpipeline", "ui", "prefect", "--port", str(port), "--state-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", proc, timeout=300)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=10) as r:
            settings = json.loads(r.read())
        with urllib.request.urlopen(f"{settings['api_url']}/health", timeout=10) as r:
            healthy = r.status == 200
    finally:
        out = stop(proc)
    assert settings["api_url"] == f"http://127.0.0.1:{port}/api", out[-2000:]
    assert healthy
