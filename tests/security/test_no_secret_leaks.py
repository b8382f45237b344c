"""No secret read from the environment reaches MLflow (params, tags, artifacts, its database), the state folder,
the Prefect database or the logs: a real replay of three batches with secrets planted, then a byte-level grep of
everything it wrote. docs/security.md, "Where secrets live"."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_flights_like, write_pipeline_config

pytestmark = pytest.mark.slow

# the variables the pipeline and its tools read secrets from, plus one made-up CTP_* secret
SECRET_VARS = (
    "CTP_WEBHOOK_SECRET",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "PREFECT_API_KEY",
    "CTP_DB_PASSWORD",
    "CTP_SIGNING_TOKEN",
)


def _planted() -> dict[str, str]:
    return {var: f"ctp-planted-{var.lower()}-{secrets.token_hex(12)}" for var in SECRET_VARS}


def _hits(root: Path, needles: dict[str, bytes]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        found += [f"{var} in {path}" for var, needle in needles.items() if needle in data]
    return found


def test_a_replay_leaks_no_planted_secret_into_mlflow_prefect_state_or_logs(tmp_path):
    from ctpipeline.core import data
    from ctpipeline.steps.context import Pipeline
    from ctpipeline.store import landing

    cfg = write_pipeline_config(
        tmp_path,
        model={"type": "xgboost", "params": {"n_estimators": 20, "max_depth": 3, "n_jobs": 1}, "device": "cpu"},
        training={"min_train_rows": 500},
        triggers={"every_batch": True},
        drift={"report_html": True, "max_rows": 2000},  # the HTML report too: it embeds data and settings
        backtest={"bootstrap": 50},
    )
    state = tmp_path / "state"
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(4500, seed=21, months=3), p.cfg.data), p.landing_dir)
    planted = _planted()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.update(planted, MLFLOW_TRACKING_USERNAME="ctp-user", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    out, err = tmp_path / "replay.out", tmp_path / "replay.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        rc = subprocess.run(
            [sys.executable, "-m", "ctpipeline", "replay", "-n", "3", "-v", "--config", str(cfg)]
            + ["--state-dir", str(state)],
            env=env,
            stdout=o,
            stderr=e,
            timeout=1200,
        ).returncode
    assert rc == 0, err.read_text()[-3000:]
    assert "3 batches" in out.read_text(), out.read_text()[-2000:]
    # the replay really wrote what is searched: runs with artifacts, a registered model, Prefect's database
    assert (state / "mlflow.db").stat().st_size > 0 and list((state / "mlartifacts").rglob("MLmodel"))
    assert list((state / "prefect").glob("*.db")) and list((state / "mlartifacts").rglob("*.json"))
    needles = {var: value.encode() for var, value in planted.items()}
    assert _hits(tmp_path, needles) == []  # state folder (MLflow DB + artifacts, Prefect DB, logs), config, output
    # a grep that finds nothing must be able to find something: the same search sees what is there
    assert _hits(state, {"pipeline name": p.cfg.name.encode()}) != []
