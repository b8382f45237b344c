"""`ctp migrate`: an embedded registry made by real cycles, copied into a real `mlflow server` (basic-auth app on,
SQLite backend and proxied artifacts under tmp_path, 127.0.0.1 only), then checked through that server: runs,
metric histories, artifacts, versions with their tags and descriptions, aliases, and one model's predictions."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import numpy as np
import pytest

from ctpipeline.cli.main import main
from ctpipeline.core import data
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

from conftest import free_port, make_flights_like, write_pipeline_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ADMIN, ADMIN_PASSWORD = "admin", "migrate-test-admin-pw-4711"
MODEL = "flights-delay"


def ctp(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def _get(url: str, auth: bool = True, timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + b64encode(f"{ADMIN}:{ADMIN_PASSWORD}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server --app-name basic-auth` on 127.0.0.1; the admin password only in its environment."""
    if os.environ.get("CI", "").lower() != "true":
        pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs flask-wtf (pyproject's server extra)")
    root = tmp_path_factory.mktemp("mlflow-server")
    (root / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{(root / 'auth.db').as_posix()}\nadmin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # one PBKDF2 check per credential and 5 minutes instead of one per request (seconds each on 2 busy cores)
        "auth_cache_ttl_seconds = 300\n"
    )
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini"),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "migrate-test-flask-key",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    cmd = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1"]
    cmd += [
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{(root / 'mlflow.db').as_posix()}",
    ]
    cmd += ["--artifacts-destination", str(root / "artifacts")]
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # the first start migrates two SQLite databases: slow on 2 busy cores
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited ({proc.returncode}): {(root / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if _get(f"{url}/health", auth=False, timeout=5)[0] == 200:
                    break
            time.sleep(1)
        else:
            pytest.fail(f"mlflow server not healthy within 300 s; log: {root / 'server.log'}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def embedded(prefect_server, tmp_path_factory):
    """(config, state dir, Pipeline) after 4 real cycles: runs, >= 3 versions and the three aliases."""
    from ctpipeline.flow import continuous_training

    tmp = tmp_path_factory.mktemp("embedded")
    cfg = write_pipeline_config(tmp, training={"min_train_rows": 500}, triggers={"every_batch": True})
    state = tmp / "state"
    p = Pipeline.open(cfg, state)
    months = data.split_batches(make_flights_like(2500 * 4, seed=33, months=4), p.cfg.data)
    landing.land(months, p.landing_dir)
    for _ in range(4):
        continuous_training(config=str(cfg), state_dir=str(state), trigger="test", return_state=True).result()
    versions = p.registry.client.get().search_model_versions(f"name = '{MODEL}'")
    assert len(versions) >= 3, "the cycles should have registered three versions"
    # whatever the policy decided, give every alias the pipeline uses a version, so that all three are copied
    for alias, version in (("previous", "1"), ("challenger", str(len(versions)))):
        if p.registry.get_alias(alias) is None:
            p.registry.set_alias(alias, p.registry.get_version(version))
    return cfg, state, p, months


def _server_client(url):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=url, registry_uri=url)


def _runs(client, experiment: str) -> dict[str, object]:
    exp = client.get_experiment_by_name(experiment)
    return {r.info.run_name: r for r in client.search_runs([exp.experiment_id])} if exp else {}


def _migration_tags(tags: dict) -> dict:
    return {k: v for k, v in tags.items() if not k.startswith("ctp.migrat")}


def test_migrate_copies_runs_versions_aliases_and_the_models_load_on_the_server(embedded, mlflow_server, monkeypatch):
    cfg, state, p, months = embedded
    args = ("migrate", "--from-state-dir", str(state), "--to-tracking-uri", mlflow_server, "--config", str(cfg))
    src, dst = p.registry.client.get(), _server_client(mlflow_server)

    # without credentials the server refuses, and the error says which variables to set
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    rc, _, err = ctp(*args)
    assert rc == 1 and "401" in err and "MLFLOW_TRACKING_USERNAME" in err
    assert ADMIN_PASSWORD not in err

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    t0 = time.perf_counter()
    rc, out, err = ctp(*args)
    seconds = time.perf_counter() - t0
    assert rc == 0, err
    src_versions = sorted(src.search_model_versions(f"name = '{MODEL}'"), key=lambda v: int(v.version))
    assert f"versions: {', '.join(f'v{v.version}' for v in src_versions)} copied" in out
    print(f"migrated {len(src_versions)} versions in {seconds:.1f} s")

    # runs: names, params, every metric's step history, tags, artifacts
    src_runs, dst_runs = _runs(src, p.cfg.experiment_name), _runs(dst, p.cfg.experiment_name)
    assert set(dst_runs) == set(src_runs) and "monitoring" in dst_runs
    for name, s in src_runs.items():
        d = dst_runs[name]
        assert d.data.params == s.data.params and d.info.status == s.info.status, name
        assert _migration_tags(d.data.tags) == s.data.tags, name
        for key in s.data.metrics:
            history = [(m.step, m.value) for m in src.get_metric_history(s.info.run_id, key)]
            assert [(m.step, m.value) for m in dst.get_metric_history(d.info.run_id, key)] == history, (name, key)
        assert [a.path for a in dst.list_artifacts(d.info.run_id)] == [
            a.path for a in src.list_artifacts(s.info.run_id)
        ]
    trained = next(n for n, r in src_runs.items() if r.data.tags.get("ctp.outcome"))
    with open(src.download_artifacts(src_runs[trained].info.run_id, "decision/decision.json", str(state / "a"))) as f:
        src_decision = f.read()
    dl = dst.download_artifacts(dst_runs[trained].info.run_id, "decision/decision.json", str(state / "b"))
    assert Path(dl).read_text() == src_decision

    # versions: same numbers, tags, descriptions, from the copies of the same runs; the same aliases
    dst_versions = sorted(dst.search_model_versions(f"name = '{MODEL}'"), key=lambda v: int(v.version))
    assert [str(v.version) for v in dst_versions] == [str(v.version) for v in src_versions]
    id_to_name = {r.info.run_id: n for n, r in src_runs.items()}
    for s, d in zip(src_versions, dst_versions, strict=True):
        assert _migration_tags(d.tags) == s.tags and d.description == s.description, s.version
        assert d.tags["ctp.migrated_from_version"] == str(s.version) and d.tags["ctp.migrated_from_run"] == s.run_id
        assert d.run_id == dst_runs[id_to_name[s.run_id]].info.run_id
    aliases = {a: str(v) for a, v in src.get_registered_model(MODEL).aliases.items()}
    assert {"champion", "challenger", "previous"} <= set(aliases)
    assert {a: str(v) for a, v in dst.get_registered_model(MODEL).aliases.items()} == aliases

    # through the REST API: the champion alias, with credentials; without them 401
    status, body = _get(f"{mlflow_server}/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion")
    assert status == 200 and f'"version": "{aliases["champion"]}"' in body.decode().replace('":"', '": "')
    assert _get(f"{mlflow_server}/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias=champion", False)[0] == 401

    # models:/<name>/<N> loads through the server (artifacts proxied) and predicts exactly as the embedded one
    import mlflow.sklearn

    from ctpipeline.adapters.mlflow.common import fluent_uris

    champion = p.registry.champion()
    X, _ = data.make_xy(months[sorted(months)[-1]], p.cfg)
    expected = p.models.load_model(champion).predict_proba(X)
    with fluent_uris(mlflow_server, mlflow_server):
        served = mlflow.sklearn.load_model(f"models:/{MODEL}/{champion.version}")
    np.testing.assert_array_equal(served.predict_proba(X), expected)

    # a second migration copies nothing and says so
    rc, out, err = ctp(*args)
    assert rc == 0, err
    assert "nothing to copy, everything was migrated already" in out
    assert len(dst.search_model_versions(f"name = '{MODEL}'")) == len(src_versions)
    assert len(_runs(dst, p.cfg.experiment_name)) == len(src_runs)


def test_migrate_into_sqlite_replaces_a_half_copied_run_and_refuses_foreign_versions(embedded, tmp_path):
    import mlflow

    from ctpipeline.adapters.mlflow import sqlite_tracking_uri
    from ctpipeline.adapters.mlflow.migrate import FROM_RUN, STATE_TAG, migrate

    cfg, state, p, _ = embedded
    source = sqlite_tracking_uri(state / "mlflow.db")
    src = p.registry.client.get()
    src_runs = _runs(src, p.cfg.experiment_name)

    # an interrupted earlier migration left one run half-copied: it is deleted and copied again
    target = sqlite_tracking_uri(tmp_path / "target" / "mlflow.db")
    (tmp_path / "target").mkdir()
    dst = mlflow.MlflowClient(tracking_uri=target, registry_uri=target)
    exp_id = dst.create_experiment(p.cfg.experiment_name, artifact_location=(tmp_path / "target" / "art").as_uri())
    some = next(iter(src_runs.values()))
    half = dst.create_run(exp_id, tags={FROM_RUN: some.info.run_id, STATE_TAG: "copying"}, run_name="half")
    report = migrate(source, target, p.cfg.experiment_name, MODEL, progress=print)
    assert len(report.runs_copied) == len(src_runs) and dst.get_run(half.info.run_id).info.lifecycle_stage == "deleted"
    assert set(_runs(dst, p.cfg.experiment_name)) == set(src_runs)

    # a target whose registry already holds other versions of the model is refused before anything is copied
    other = sqlite_tracking_uri(tmp_path / "other" / "mlflow.db")
    (tmp_path / "other").mkdir()
    odst = mlflow.MlflowClient(tracking_uri=other, registry_uri=other)
    odst.create_registered_model(MODEL)
    odst.create_model_version(MODEL, source=(tmp_path / "other").as_uri())
    rc, _, err = ctp("migrate", "--from-state-dir", str(state), "--to-tracking-uri", other, "--config", str(cfg))
    assert rc == 1 and "already has version(s) 1" in err and "not migrated from here" in err
    assert odst.get_experiment_by_name(p.cfg.experiment_name) is None  # nothing was copied


def test_migrate_usage_errors_exit_2(tmp_path, flights_pipeline):
    cfg, _ = flights_pipeline
    rc, _, err = ctp("migrate", "--from-state-dir", str(tmp_path / "none"), "--to-tracking-uri", "http://127.0.0.1:1")
    assert rc == 2 and "mlflow.db not found" in err
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "mlflow.db").write_bytes(b"")
    rc, _, err = ctp(
        "migrate",
        "--from-state-dir",
        str(tmp_path / "s"),
        "--to-tracking-uri",
        "http://u:pw@127.0.0.1:1",
        "-c",
        str(cfg),
    )
    assert rc == 2 and "MLFLOW_TRACKING_PASSWORD" in err and "pw@" not in err
    rc, _, err = ctp(
        "migrate", "--from-state-dir", str(tmp_path / "s"), "--to-tracking-uri", f"http://127.0.0.1:{free_port()}"
    )
    assert rc == 1 and "cannot reach the MLflow server" in err
