"""One real Prefect flow run of a cycle on generated data, with real GX and a real MLflow registry."""

import json

import pytest

from ctpipeline.core import data
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

pytestmark = pytest.mark.integration


def test_cycles_train_register_promote_and_quarantine(prefect_server, small_pipeline):
    from ctpipeline.flow import continuous_training

    from conftest import make_flights_like

    cfg_path, state = small_pipeline
    p = Pipeline.open(cfg_path, state)
    batches = data.split_batches(make_flights_like(6000, seed=11, months=3), p.cfg.data)
    landing.land(batches, p.landing_dir)

    def run():
        return continuous_training(
            config=str(cfg_path),
            state_dir=str(state),
            trigger="test",  # noqa: E731
            return_state=True,
        )

    first = run().result()
    assert first["status"] == "accumulating" and first["gate"] == "passed"
    assert p.registry.champion() is None

    second = run().result()
    assert second["status"] == "promoted", second
    champ = p.registry.champion()
    assert champ is not None and champ.version == second["challenger_version"] == "1"
    assert p.registry.get_alias("challenger").version == "1"

    # a broken batch: the gate fails, the flow ends "Rejected", the file is quarantined, champion unchanged
    bad = make_flights_like(1500, seed=12, start="2013-04-01").drop(columns=["carrier"])
    landing.write_parquet_atomic(bad, p.landing_dir / "2013-04.parquet")
    third = run().result()  # 2013-03: a normal month first
    assert third["status"] in ("promoted", "kept-champion")
    state_ = run()
    res = state_.result(raise_on_failure=False)  # a rejection is a Failed state (the dashboard counts it)
    assert state_.is_failed() and state_.name == "Rejected" and res["status"] == "quarantined"
    assert any("carrier" in f for f in res["failed_expectations"])
    assert not (p.landing_dir / "2013-04.parquet").exists()
    assert (p.quarantine_dir / "2013-04.parquet").exists()
    gx = json.loads((p.quarantine_dir / "2013-04.gx.json").read_text())
    assert gx["summary"]["success"] is False
    assert p.registry.champion().version == (third["champion_version_after"])

    assert run().result()["status"] == "no-batch"
    log = p.batch_log.records()
    assert [r["status"] for r in log] == ["accepted", "accepted", "accepted", "rejected"]


def test_quiet_batch_is_monitored_without_training(prefect_server, small_pipeline):
    """With triggers that cannot fire, a batch after the cold start is monitored (drift logged), not trained on."""
    import yaml
    from mlflow import MlflowClient

    from ctpipeline.flow import continuous_training

    from conftest import make_flights_like

    cfg_path, state = small_pipeline
    d = yaml.safe_load(cfg_path.read_text())
    d["triggers"] = {"every_batch": False, "drift_share": None, "performance_drop": None, "min_new_rows": None}
    cfg_path.write_text(yaml.safe_dump(d))
    p = Pipeline.open(cfg_path, state)
    landing.land(data.split_batches(make_flights_like(7500, seed=13, months=3), p.cfg.data), p.landing_dir)

    def run():
        return continuous_training(config=str(cfg_path), state_dir=str(state), trigger="replay")

    assert run()["status"] == "accumulating"
    assert run()["status"] == "promoted"  # cold start always fires
    third = run()
    assert third["status"] == "monitored" and third["fired"] == []
    assert third["challenger_version"] is None and third["drifted_share"] is not None
    assert any("no retraining" in r for r in third["reasons"])
    assert p.registry.champion().version == "1"
    client = MlflowClient(p.tracking_uri)
    arts = {a.path for a in client.list_artifacts(third["run_id"], "monitoring")}
    assert {"monitoring/drift.json", "monitoring/trigger.json"} <= arts
    assert p.batch_log.accepted()[-1] == third["batch"]


def test_unreadable_batch_is_quarantined_and_does_not_block_the_next(prefect_server, small_pipeline):
    from ctpipeline.flow import continuous_training

    from conftest import make_flights_like

    cfg_path, state = small_pipeline
    p = Pipeline.open(cfg_path, state)
    p.landing_dir.mkdir(parents=True)
    (p.landing_dir / "2013-01.parquet").write_bytes(b"this is not parquet")
    landing.land(data.split_batches(make_flights_like(2500, seed=3, start="2013-02-01"), p.cfg.data), p.landing_dir)

    s = continuous_training(config=str(cfg_path), state_dir=str(state), return_state=True)
    res = s.result(raise_on_failure=False)
    assert (
        s.is_failed() and s.name == "Rejected" and res["status"] == "quarantined" and "cannot read" in res["reasons"][0]
    )
    assert (p.quarantine_dir / "2013-01.parquet").read_bytes() == b"this is not parquet"  # nothing lost
    assert json.loads((p.quarantine_dir / "2013-01.gx.json").read_text())["summary"]["success"] is False
    nxt = continuous_training(config=str(cfg_path), state_dir=str(state))
    assert nxt["batch"] == "2013-02" and nxt["gate"] == "passed"
