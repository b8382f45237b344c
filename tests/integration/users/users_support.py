"""Helpers for the user-facing tests (tests/integration/users): one cycle run through the same stages the Prefect
flow wires, without Prefect (real GX, MLflow, Evidently), generated batches landed, a served model's
/invocations payload, and bounded waits for real server processes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from ctpipeline.core import data
from ctpipeline.flow import run_stages
from ctpipeline.steps import cycle as stage
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

VENV_BIN = Path(sys.executable).parent


def land_generated(p: Pipeline, rows: int = 6000, seed: int = 11, months: int = 3, start: str = "2013-01-01"):
    from conftest import make_flights_like

    batches = data.split_batches(make_flights_like(rows, seed=seed, months=months, start=start), p.cfg.data)
    landing.land(batches, p.landing_dir)
    return batches


def run_cycle(p: Pipeline, trigger: str = "test"):
    """One cycle, stage by stage as `flow.continuous_training` runs them (no Prefect): the CycleResult."""
    batch = stage.next_batch(p)
    if batch is None:
        return None
    return run_stages(p, batch, trigger)


def split_payload(df: pd.DataFrame) -> dict:
    """`{"dataframe_split": ...}` for /invocations: timestamps as ISO strings, NaN as null, floats exact."""

    def cell(v):
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
            return None
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
        return v.item() if hasattr(v, "item") else v

    rows = [[cell(v) for v in row] for row in df.astype(object).itertuples(index=False)]
    return {"dataframe_split": {"columns": list(df.columns), "data": rows}}


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    """Poll `url` until it answers 200, the process exits, or `timeout` seconds pass (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            out = out if isinstance(out, str) else out.decode(errors="replace")
            raise AssertionError(f"server exited with {proc.returncode} before {url} answered:\n{out[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f}s")


def post_json(url: str, payload: dict, timeout: float = 60.0) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def stop(proc: subprocess.Popen) -> str:
    """Terminate a server started by a test (its own process group) and return what it printed."""
    from conftest import stop_process_group

    stop_process_group(proc, timeout=20)
    out = proc.stdout.read() if proc.stdout else ""
    return out if isinstance(out, str) else out.decode(errors="replace")
