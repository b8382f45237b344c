"""Helpers for the crash, fault and concurrency tests: real `python -m ctpipeline` processes on a state folder.

One prepared state (generated months landed, a champion already there) is built once per module, at a fixed path
(``work/``), and a pristine copy is kept beside it: every case restores ``work/`` from that copy, so the absolute
paths MLflow stores (artifact locations, model sources) stay valid, and no case pays for the set-up again.

Output goes to files, never to pipes: a SIGKILLed `ctp` leaves its ephemeral Prefect server running with the
inherited stdout/stderr, and a pipe would then never reach EOF.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from conftest import make_flights_like, write_pipeline_config

PIPELINE = "flights-delay"
# promotion as soon as the gain is positive: the crash tests need cycles that reach the alias move and the ledger
POLICY = {"min_margin": 0.0, "noise_aware": False, "floor": 0.5, "slices": [], "max_latency_ms_per_1k": None}


def ctp_env(**extra: str) -> dict[str, str]:
    """The environment of a `ctp` child: this one without Prefect/MLflow/CTP settings, plus quick slot log lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "CTP_"))}
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        PYTHONUNBUFFERED="1",
        CTP_SLOT_LOG_SECONDS="2",
        OMP_NUM_THREADS="1",  # 2 shared cores: oversubscribed threads make every fit many times slower
        OPENBLAS_NUM_THREADS="1",
    )
    env.update(extra)
    return env


@dataclass
class Proc:
    """A finished (or running) `ctp` child: exit code, its output files, its wall time."""

    args: list[str]
    rc: int | None
    out_path: Path
    err_path: Path
    seconds: float

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    @property
    def killed(self) -> bool:
        return self.rc == -signal.SIGKILL

    def tail(self, n: int = 3000) -> str:
        return f"$ ctp {' '.join(self.args)} -> rc {self.rc} in {self.seconds:.0f}s\n{self.out[-n:]}\n{self.err[-n:]}"


class Case:
    """The working state folder of one case, restored from the pristine copy; runs `ctp` against it."""

    def __init__(self, root: Path):
        self.root = root
        self.work = root / "work"
        self.pristine = root / "pristine"
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.n = 0
        self.config, self.state = self.work / "pipeline.yaml", self.work / "state"
        self.started: list[subprocess.Popen] = []

    def restore(self) -> Case:
        self.stop_all()
        reap(self)
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.pristine, self.work, symlinks=True)
        return self

    def start(self, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Proc]:
        self.n += 1
        out, err = self.logs / f"{self.n:02d}.out", self.logs / f"{self.n:02d}.err"
        full = [*args, "--config", str(self.config), "--state-dir", str(self.state)]
        with open(out, "wb") as o, open(err, "wb") as e:
            popen = subprocess.Popen(
                [sys.executable, "-m", "ctpipeline", *full], cwd=self.work, env=env or ctp_env(), stdout=o, stderr=e
            )
        self.started.append(popen)
        return popen, Proc(full, None, out, err, time.monotonic())

    def stop_all(self) -> None:
        """Kill the `ctp` processes this case started that still run (a failed test leaves them behind)."""
        for popen in self.started:
            if popen.poll() is None:
                popen.kill()
                popen.wait()
        self.started.clear()

    def wait(self, started: tuple[subprocess.Popen, Proc], timeout: float = 600) -> Proc:
        popen, proc = started
        try:
            proc.rc = popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            proc.rc = popen.wait()
        proc.seconds = time.monotonic() - proc.seconds
        return proc

    def ctp(self, *args: str, timeout: float = 600, **env: str) -> Proc:
        return self.wait(self.start(*args, env=ctp_env(**env)), timeout)

    # ---- what the state says ------------------------------------------------------------------

    def pipeline(self):
        from ctpipeline.steps.context import Pipeline

        return Pipeline.open(self.config, self.state)

    def batch_records(self) -> list[dict]:
        return self.pipeline().batch_log.records()

    def ledger(self) -> list[dict]:
        return self.pipeline().ledger.rows()

    def landed(self) -> list[str]:
        return sorted(p.stem for p in (self.state / "landing" / PIPELINE).glob("*.parquet"))


def reap(case: Case) -> None:
    """Stop the ephemeral Prefect servers that SIGKILLed `ctp` processes of this case left running."""
    from ctpipeline.adapters.prefect.holders import reap_orphaned_servers

    if (case.state / "prefect").exists():
        for pid in reap_orphaned_servers(case.state / "prefect"):
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)


def prepare(root: Path, months: int = 6, prepared: int = 3) -> Case:
    """Land `months` generated months and run `prepared` cycles (a champion is there), then keep a pristine copy."""
    from ctpipeline.core import data
    from ctpipeline.store import landing

    keep = os.environ.get("CTP_FAULTS_KEEP_STATE")  # local iteration: reuse a prepared state in that folder
    if keep and (Path(keep) / "pristine").is_dir():
        return Case(Path(keep))
    case = Case(Path(keep) if keep else root)
    shutil.rmtree(case.work, ignore_errors=True)
    case.work.mkdir(parents=True)
    _config(case, {"n_estimators": 2, "max_depth": 1})  # a weak champion: the cases' challengers beat it
    p = case.pipeline()
    landing.land(data.split_batches(make_flights_like(1500 * months, seed=5, months=months), p.cfg.data), p.landing_dir)
    r = case.ctp("replay", "--batches", str(prepared), "--json")
    assert r.rc == 0, r.tail()
    assert champion_versions(case), r.tail()
    _config(case, {"n_estimators": 30, "max_depth": 3})
    shutil.copytree(case.work, case.pristine, symlinks=True)
    return case


def _config(case: Case, params: dict) -> None:
    write_pipeline_config(
        case.work,
        model={"type": "xgboost", "params": {**params, "n_jobs": 1}, "device": "cpu"},
        training={"min_train_rows": 500},
        triggers={"every_batch": True},
        drift={"report_html": False, "max_rows": 2000},
        backtest={"bootstrap": 50},
        promotion=POLICY,
    )


@dataclass
class Run:
    run_id: str
    name: str
    status: str
    tags: dict[str, str]


def mlflow_runs(case: Case) -> list[Run]:
    """Every run in the MLflow store (see _sqlite), with its tags."""
    tags: dict[str, dict[str, str]] = {}
    for run_id, key, value in _sqlite(case, "SELECT run_uuid, key, value FROM tags"):
        tags.setdefault(run_id, {})[key] = value
    rows = _sqlite(case, "SELECT run_uuid, name, status FROM runs")
    return [Run(run_id, name, status, tags.get(run_id, {})) for run_id, name, status in rows]


def champion_versions(case: Case) -> list[str]:
    """The versions the `champion` alias points at (the alias table's primary key allows one, or none)."""
    rows = _sqlite(case, "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = 'champion'", PIPELINE)
    return [str(v) for (v,) in rows]


def _sqlite(case: Case, sql: str, *params):
    """Rows from the MLflow SQLite store, on a fresh read-only connection. The tests never read the store through
    MLflow in this process: its cached engine keeps a connection to the database file a previous case's restore
    replaced, and would show that case's runs and versions."""
    import sqlite3

    with closing(sqlite3.connect(f"file:{case.state / 'mlflow.db'}?mode=ro", uri=True, timeout=30)) as db:
        return db.execute(sql, params).fetchall()


def assert_champion_serves(case: Case, context: str) -> str:
    """Exactly one `champion`, and its files load and predict probabilities on a landed month. Returns its version."""
    from urllib.parse import unquote, urlparse

    import mlflow.sklearn
    import pandas as pd

    from ctpipeline.core.data import labelled, make_xy

    versions = champion_versions(case)
    assert len(versions) == 1, f"{context}: champion on versions {versions}"
    ((location,),) = _sqlite(
        case, "SELECT storage_location FROM model_versions WHERE name = ? AND version = ?", PIPELINE, versions[0]
    )
    model = mlflow.sklearn.load_model(unquote(urlparse(location).path))
    p = case.pipeline()
    month = sorted((case.state / "landing" / PIPELINE).glob("*.parquet"))
    X, _ = make_xy(labelled(pd.read_parquet(month[0]), p.cfg), p.cfg)
    proba = model.predict_proba(X)[:, 1]
    assert len(proba) == len(X) and ((proba >= 0) & (proba <= 1)).all(), f"{context}: champion predicts nonsense"
    return versions[0]


def assert_batches_once(case: Case, context: str) -> None:
    """No batch processed twice with the same content, and no month lost: each is still landed or quarantined."""
    recs = [r for r in case.batch_records() if r.get("status") in ("accepted", "rejected")]
    keys = [(r["batch"], r["sha256"]) for r in recs]
    assert len(keys) == len(set(keys)), f"{context}: a batch processed twice: {keys}"
    quarantined = {p.stem for p in (case.state / "quarantine" / PIPELINE).glob("*.parquet")}
    months = {p.stem for p in (case.pristine / "state" / "landing" / PIPELINE).glob("*.parquet")}
    assert set(case.landed()) | quarantined >= months, f"{context}: a month went missing"


def assert_ledger_agrees(case: Case, context: str) -> None:
    """The ledger's last move ends on the registry's champion."""
    rows = case.ledger()
    champion = champion_versions(case)
    assert rows and rows[-1]["to_version"] == champion[0], (
        f"{context}: ledger ends on v{rows[-1]['to_version'] if rows else None}, registry champion {champion}"
    )
