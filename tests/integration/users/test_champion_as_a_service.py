"""The champion as users meet it: `mlflow models serve -m models:/<name>@champion` on raw landed rows, `ctp score`
on a file, the LoggedModel named after the batch and shown as registered, the pipeline's description in MLflow.
Real MLflow (SQLite store under tmp_path), real GX and Evidently; the cycles run without Prefect."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from users_support import VENV_BIN, land_generated, post_json, run_cycle, split_payload, stop, wait_http

from ctpipeline.cli.main import main
from ctpipeline.core.evaluation import metric_value, predict_for_metric
from ctpipeline.steps.context import Pipeline

from conftest import free_port, write_pipeline_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """Three cycles on generated months: January accumulates, February trains v1 and promotes it, March monitors
    v1 and trains v2. Returns the pipeline and February's result."""
    tmp = tmp_path_factory.mktemp("champion")
    cfg_path = write_pipeline_config(tmp, training={"min_train_rows": 500}, triggers={"every_batch": True})
    p = Pipeline.open(cfg_path, tmp / "state")
    land_generated(p, rows=6000, seed=11, months=3)
    assert run_cycle(p).status == "accumulating"
    second = run_cycle(p)
    assert second.status == "promoted" and second.challenger_version == "1", second
    third = run_cycle(p)
    assert third.challenger_version == "2", third
    return p, second


def ctp(*args) -> tuple[int, str]:
    """The CLI in-process, its output in a buffer (not pytest's capture, which is closed after the test while the
    log handler set up by the command would keep writing to it)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(list(args))
    return rc, buf.getvalue()


def client_for(p):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=p.tracking_uri, registry_uri=p.tracking_uri)


def test_logged_model_is_named_after_the_batch_and_linked_to_its_version(champion):
    p, second = champion
    client = client_for(p)
    [output] = client.get_run(second.run_id).outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    assert logged.name == "flights-delay-2013-02"
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": "flights-delay", "version": "1"}]
    mv = client.get_model_version("flights-delay", "1")
    assert mv.source == f"models:/{output.model_id}"  # the SQLite registry keeps the link in the source only
    # the pipeline's description on the experiment and the registered model (MLflow's description fields)
    assert p.cfg.description
    assert client.get_registered_model("flights-delay").description == p.cfg.description
    exp = client.get_experiment_by_name(p.cfg.experiment_name)
    assert exp.tags["mlflow.note.content"] == p.cfg.description


@contextlib.contextmanager
def global_uri(p):
    """MLflow's fluent `models:/` URIs resolve through the global tracking URI: point it at the test store."""
    import mlflow

    mlflow.set_tracking_uri(p.tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)


def artifact_json(client, run_id: str, path: str, tmp: Path) -> dict:
    return json.loads(Path(client.download_artifacts(run_id, path, str(tmp))).read_text())


def test_mlflow_views_one_name_one_meaning_windows_from_1_and_a_summary(champion, tmp_path):
    p, second = champion
    client = client_for(p)
    monitoring = client.get_run(p.tracking.monitoring_run())
    assert "served_champion_roc_auc" in monitoring.data.metrics and "champion_roc_auc" not in monitoring.data.metrics
    served = client.get_metric_history(monitoring.info.run_id, "served_champion_roc_auc")
    march = client.search_runs([monitoring.info.experiment_id], "tags.`ctp.batch` = '2013-03'")[0]
    assert [m.step for m in served] == [3]  # one point per batch, from the first batch with a champion
    assert served[0].value == march.data.metrics["champion_on_batch_roc_auc"]
    # back-test windows numbered from 1 in the decision record and in MLflow's steps alike
    record = artifact_json(client, second.run_id, "decision/decision.json", tmp_path)
    steps = [m.step for m in client.get_metric_history(second.run_id, "backtest_challenger_roc_auc")]
    assert [w["index"] for w in record["backtest"]["windows"]] == steps == [1, 2, 3]
    assert [w["index"] for w in record["data"]["backtest_windows"]] == [1, 2, 3]
    # summary.json at the top of every run
    for run_id in (second.run_id, march.info.run_id):
        assert "summary.json" in {a.path for a in client.list_artifacts(run_id)}
    summary = artifact_json(client, second.run_id, "summary.json", tmp_path)
    assert summary["batch"] == "2013-02" and summary["status"] == "promoted" and summary["pipeline"] == p.name
    assert summary["challenger_metric"] == client.get_run(second.run_id).data.metrics["challenger_roc_auc"]


def test_runs_log_training_window_and_batch_as_mlflow_datasets(champion):
    import mlflow.data

    p, second = champion
    client = client_for(p)
    run = client.get_run(client.get_model_version(p.name, "1").run_id)  # the version leads to its run's inputs
    assert run.info.run_id == second.run_id
    by_context = {
        next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset for d in run.inputs.dataset_inputs
    }
    assert set(by_context) == {"training", "evaluation"}
    batch, window = by_context["evaluation"], by_context["training"]
    landed = pd.read_parquet(p.landing_dir / "2013-02.parquet")
    assert batch.name == "2013-02" and json.loads(batch.source)["uri"] == str(p.landing_dir / "2013-02.parquet")
    assert batch.digest == mlflow.data.from_pandas(landed, targets="arr_delay").digest  # MLflow's own digest
    assert json.loads(batch.profile)["num_rows"] == len(landed)
    assert "time_hour" in {c["name"] for c in json.loads(batch.schema)["mlflow_colspec"]}
    january = pd.read_parquet(p.landing_dir / "2013-01.parquet")
    # a one-batch window is the same data as January's own input: MLflow keeps one dataset per (name, digest)
    assert window.name == "2013-01" and window.digest == mlflow.data.from_pandas(january, targets="arr_delay").digest
    assert json.loads(window.source)["uri"].startswith(str(p.landing_dir))
    assert json.loads(window.profile)["num_rows"] == len(january)
    march = client.search_runs([run.info.experiment_id], "tags.`ctp.batch` = '2013-03'")[0]
    [march_window] = [d.dataset for d in march.inputs.dataset_inputs if d.dataset.name == "2013-01..2013-02"]
    assert json.loads(march_window.source)["uri"] == str(p.landing_dir)
    assert json.loads(march_window.profile)["num_rows"] == len(january) + len(landed)


def test_signature_is_on_the_raw_columns(champion):
    import mlflow

    p, _ = champion
    with global_uri(p):
        info = mlflow.models.get_model_info(f"models:/{p.name}@champion")
    inputs = {
        c.name: repr(c.type) if c.type.__class__.__name__ == "AnyType" else c.type.name
        for c in info.signature.inputs.inputs
    }
    assert list(inputs) == ["time_hour", *p.cfg.features.numeric, *p.cfg.features.categorical]
    assert inputs["time_hour"] == "Any" and inputs["distance"] == "double" and inputs["carrier"] == "string"
    assert not any(name.startswith("time_hour_") for name in inputs)


@pytest.mark.slow
def test_mlflow_models_serve_scores_raw_landed_rows_like_the_logged_metric(champion, tmp_path):
    p, _ = champion
    trained_by = client_for(p).get_run(p.registry.champion().run_id)  # the cycle that evaluated the champion
    batch = trained_by.data.tags["ctp.batch"]
    raw = pd.read_parquet(p.landing_dir / f"{batch}.parquet")  # every landed column, int64 ones included
    assert raw["distance"].dtype == "int64" and str(raw["time_hour"].dt.tz) == "UTC"
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": p.tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # it execs `uvicorn` from PATH
    cmd = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", f"models:/{p.name}@champion"]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", proc, timeout=180)
        status, body = post_json(f"http://127.0.0.1:{port}/invocations", split_payload(raw))
        assert status == 200, body
        served = np.asarray(body["predictions"], dtype="float64")[:, 1]
        # derived in UTC by a caller the parts would differ; the served model derives them itself, in local time
        status, bad = post_json(f"http://127.0.0.1:{port}/invocations", split_payload(raw.drop(columns="carrier")))
        assert status == 400 and "carrier" in json.dumps(bad)
    finally:
        log = stop(proc)
    assert len(served) == len(raw), log[-2000:]
    local = predict_for_metric(p.models.load_model(p.registry.champion()), raw, "classification")
    np.testing.assert_allclose(served, local, rtol=0, atol=1e-9)
    labelled = raw["arr_delay"].notna().to_numpy()
    auc = metric_value("roc_auc", (raw["arr_delay"][labelled] > 15).astype(int), served[labelled])
    logged = trained_by.data.metrics["challenger_roc_auc"]
    assert abs(auc - logged) < 1e-9


def test_ctp_score_writes_the_rows_and_the_champions_scores(champion, tmp_path):
    p, _ = champion
    raw = pd.read_parquet(p.landing_dir / "2013-03.parquet")
    src, out = tmp_path / "rows.parquet", tmp_path / "scored.csv"
    raw.to_parquet(src)
    common = ["--config", str(p.config_file), "--state-dir", str(p.paths.root)]
    rc, text = ctp("score", *common, "--input", str(src), "--output", str(out))
    assert rc == 0 and f"models:/flights-delay/{p.registry.champion().version}" in text
    scored = pd.read_csv(out)
    assert list(scored.columns) == [*raw.columns, "score"] and len(scored) == len(raw)
    want = predict_for_metric(p.models.load_model(p.registry.champion()), raw, "classification")
    np.testing.assert_allclose(scored["score"].to_numpy(), want, rtol=1e-12)  # CSV keeps 16 digits
    # a CSV in: the time column arrives as text, the ints as ints; same scores
    csv_in = tmp_path / "rows.csv"
    raw.to_csv(csv_in, index=False)
    assert ctp("score", *common, "-i", str(csv_in), "-o", str(tmp_path / "scored.parquet"))[0] == 0
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "scored.parquet")["score"], want, rtol=1e-9)
    # bad input: a clear error, exit 1, nothing written
    assert ctp("score", *common, "-i", str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "x.csv"))[0] == 1
    raw.drop(columns="dest").to_parquet(src)
    rc, text = ctp("score", *common, "-i", str(src), "-o", str(tmp_path / "y.csv"))
    assert rc == 1 and "dest" in text and not (tmp_path / "y.csv").exists()


def test_a_regression_champion_takes_int64_rows_through_mlflows_scoring_server(tmp_path):
    """MLflow's own scoring app (the one `mlflow models serve` runs) on a regression champion, rows with int64
    columns its signature calls double."""
    import mlflow
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    from ctpipeline.adapters.mlflow import installed_requirements
    from ctpipeline.core.data import make_xy
    from ctpipeline.core.models import build_model, requirements_for

    cfg_path = write_pipeline_config(
        tmp_path,
        target={"column": "arr_delay", "task": "regression", "positive_when": None},
        evaluation={"metric": "mae"},
        model={"type": "hist_gradient_boosting", "params": {"max_iter": 30}},
    )
    p = Pipeline.open(cfg_path, tmp_path / "state")
    batches = land_generated(p, rows=3000, seed=5, months=2)
    train, new = batches["2013-01"], batches["2013-02"]
    model = build_model(p.cfg).fit(*make_xy(train, p.cfg))
    X, _ = make_xy(train, p.cfg)
    run_id = p.tracking.start_run("2013-01")
    reqs = installed_requirements(requirements_for(p.cfg))
    ref = p.models.log_and_register_model(run_id, model, X.head(5), reqs, tags={"ctp.batch": "2013-01"})
    p.tracking.end_run(run_id)
    p.registry.set_alias("champion", ref)
    with global_uri(p):
        pyfunc = mlflow.pyfunc.load_model(f"models:/{p.name}@champion")
    assert new["distance"].dtype == "int64"
    app = TestClient(scoring_server.init(pyfunc))
    r = app.post("/invocations", json=split_payload(new))
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(np.asarray(r.json()["predictions"]), model.predict(new), rtol=0, atol=1e-9)
