"""Tracking (adapters/mlflow/tracking.py) against a real embedded MLflow store under tmp_path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

mlflow = pytest.importorskip("mlflow")

from mlflow_support import EXPERIMENT, client, empty_db, isolated, state, stores  # noqa: E402, F401

from ctpipeline.adapters.mlflow import Tracking  # noqa: E402
from ctpipeline.adapters.mlflow.common import MAX_PARAMS_TAGS_PER_BATCH  # noqa: E402
from ctpipeline.errors import RegistryError  # noqa: E402


def _artifact(client, run_id: str, path: str, tmp_path: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(tmp_path))).read_text()


def test_ensure_experiment_is_idempotent_and_uses_artifact_location(stores, client, state):
    exp_id = stores.tracking.ensure_experiment()
    assert stores.tracking.ensure_experiment() == exp_id
    assert Tracking(stores.tracking.tracking_uri, EXPERIMENT).ensure_experiment() == exp_id
    exp = client.get_experiment(exp_id)
    assert exp.name == EXPERIMENT
    assert exp.artifact_location == (state / "mlartifacts").as_uri()


def test_a_deleted_experiment_is_an_error(stores, client):
    client.delete_experiment(stores.tracking.ensure_experiment())
    with pytest.raises(RegistryError, match="is deleted"):
        Tracking(stores.tracking.tracking_uri, EXPERIMENT).ensure_experiment()


def test_params_metrics_and_tags(stores, client):
    tracking = stores.tracking
    run_id = tracking.start_run("train-2013-01", tags={"ctp.month": "2013-01", "long": "v" * 9000})
    params = {
        "model": {"type": "logreg", "C": 1.0, "cols": ["a", "b"]},
        "seed": 42,
        "long": "x" * 7000,
        "odd key@v2": True,
    }
    tracking.log_params(run_id, params)
    tracking.log_params(run_id, params)  # the same values again: fine
    tracking.log_metrics(run_id, {"auc": 0.81, "logloss": np.float64(0.43), "skipped": None, "nan": float("nan")})
    tracking.log_metrics(run_id, {"auc": 0.82}, step=1)
    tracking.set_tags(run_id, {"ctp.decision": "promote", "n": 3})

    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"
    assert run.data.params["model.type"] == "logreg"
    assert run.data.params["model.C"] == "1.0"
    assert json.loads(run.data.params["model.cols"]) == ["a", "b"]
    assert run.data.params["seed"] == "42"
    assert len(run.data.params["long"]) == 6000
    assert run.data.params["odd key_v2"] == "True"
    assert run.data.metrics["logloss"] == pytest.approx(0.43)
    assert "skipped" not in run.data.metrics and "nan" not in run.data.metrics
    assert [(m.value, m.step) for m in client.get_metric_history(run_id, "auc")] == [(0.81, 0), (0.82, 1)]
    assert run.data.tags["ctp.month"] == "2013-01"
    assert len(run.data.tags["long"]) == 8000
    assert (run.data.tags["ctp.decision"], run.data.tags["n"]) == ("promote", "3")
    assert run.data.tags["mlflow.runName"] == "train-2013-01"

    with pytest.raises(RegistryError, match="log params"):  # params are immutable
        tracking.log_params(run_id, {"seed": 43})


def test_more_params_tags_and_metrics_than_one_batch_holds(stores, client):
    n = 2 * MAX_PARAMS_TAGS_PER_BATCH + 10
    run_id = stores.tracking.start_run("wide")
    stores.tracking.log_params(run_id, {f"p{i}": i for i in range(n)})
    stores.tracking.set_tags(run_id, {f"t{i}": i for i in range(n)})
    stores.tracking.log_metrics(run_id, {f"m{i}": float(i) for i in range(1200)})
    data = client.get_run(run_id).data
    assert len(data.params) == n and data.params[f"p{n - 1}"] == str(n - 1)
    assert {f"t{i}" for i in range(n)} <= set(data.tags)
    assert len(data.metrics) == 1200 and data.metrics["m1199"] == 1199.0


def _counting_log_batch(tracking, monkeypatch) -> list[dict]:
    calls, real = [], tracking.client.get().log_batch

    def log_batch(run_id, **batch):
        calls.append({k: len(v) for k, v in batch.items()})
        return real(run_id, **batch)

    monkeypatch.setattr(tracking.client.get(), "log_batch", log_batch)
    return calls


def test_one_log_batch_call_holds_params_metrics_steps_and_tags(stores, client, monkeypatch):
    tracking = stores.tracking
    run_id = tracking.start_run("together")
    calls = _counting_log_batch(tracking, monkeypatch)
    tracking.log_batch(
        run_id,
        params={"model": {"depth": 6}, "seed": 1},
        metrics={"auc": 0.8, "skipped": None},
        tags={"ctp.retrain": "true"},
        series=((1, {"window_auc": 0.7}), (2, {"window_auc": 0.9})),
    )
    assert calls == [{"params": 2, "tags": 1, "metrics": 3}]
    data = client.get_run(run_id).data
    assert (data.params["model.depth"], data.metrics["auc"], data.tags["ctp.retrain"]) == ("6", 0.8, "true")
    assert [(m.value, m.step) for m in client.get_metric_history(run_id, "window_auc")] == [(0.7, 1), (0.9, 2)]


def test_log_batch_splits_at_mlflows_limits_and_logs_nothing_for_a_bad_metric(stores, client, monkeypatch):
    tracking = stores.tracking
    run_id = tracking.start_run("split")
    calls = _counting_log_batch(tracking, monkeypatch)
    with pytest.raises(TypeError, match="'bad' is not a number"):
        tracking.log_batch(run_id, params={"p": 1}, metrics={"ok": 1.0, "bad": "x"})
    assert calls == [] and not client.get_run(run_id).data.params
    tracking.log_batch(
        run_id,
        params={f"p{i}": i for i in range(150)},
        tags={f"t{i}": i for i in range(30)},
        metrics={f"m{i}": float(i) for i in range(1000)},
    )
    assert calls == [{"params": 100, "tags": 30, "metrics": 870}, {"params": 50, "metrics": 130}]
    data = client.get_run(run_id).data
    assert (len(data.params), len(data.metrics)) == (150, 1000) and {f"t{i}" for i in range(30)} <= set(data.tags)


def test_artifacts(stores, client, tmp_path):
    tracking = stores.tracking
    run_id = tracking.start_run("artifacts")
    tracking.log_dict(
        run_id,
        {"auc": np.float32(0.81), "n": np.int64(200), "gap": float("nan"), "months": {"2013-02", "2013-01"}},
        "eval/metrics.json",
    )
    tracking.log_dict(run_id, {"gate": {"passed": True}, "n": np.int64(3)}, "eval/gate.yaml")
    tracking.log_text(run_id, "hello", "notes/readme.txt")

    assert {f.path for f in client.list_artifacts(run_id)} == {"eval", "notes"}
    assert {f.path for f in client.list_artifacts(run_id, "eval")} == {"eval/metrics.json", "eval/gate.yaml"}
    metrics = json.loads(_artifact(client, run_id, "eval/metrics.json", tmp_path))
    assert metrics == {"auc": pytest.approx(0.81), "n": 200, "gap": None, "months": ["2013-01", "2013-02"]}
    assert _artifact(client, run_id, "eval/gate.yaml", tmp_path) == "gate:\n  passed: true\nn: 3\n"
    assert _artifact(client, run_id, "notes/readme.txt", tmp_path) == "hello"


def test_log_figure(stores, client):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_id = stores.tracking.start_run("plots")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    stores.tracking.log_figure(run_id, fig, "plots/line.png")
    plt.close(fig)
    [art] = client.list_artifacts(run_id, "plots")
    assert art.path == "plots/line.png" and art.file_size > 0


def test_monitoring_run_is_created_once(stores, client):
    run_id = stores.tracking.monitoring_run()
    run = client.get_run(run_id)
    assert run.data.tags["ctp.kind"] == "monitoring"
    assert run.info.status == "FINISHED"
    stores.tracking.start_run("other")
    assert stores.tracking.monitoring_run() == run_id
    again = Tracking(stores.tracking.tracking_uri, EXPERIMENT).monitoring_run()  # a fresh process finds it too
    assert again == run_id


def test_end_run_status_and_errors(stores, client, monkeypatch):
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    run_id = stores.tracking.start_run("failing")
    stores.tracking.end_run(run_id, status="failed")
    assert client.get_run(run_id).info.status == "FAILED"
    assert "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT" not in os.environ  # set only while ending the run
    with pytest.raises(ValueError, match="run status"):
        stores.tracking.end_run(run_id, status="DONE")
    with pytest.raises(RegistryError, match="log metrics"):
        stores.tracking.log_metrics("0" * 32, {"auc": 0.5})
    with pytest.raises(TypeError, match="not a number"):
        stores.tracking.log_metrics(run_id, {"auc": "high"})
