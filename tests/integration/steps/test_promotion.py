"""Promotion against a real MLflow registry and real Prefect flow runs: compare-and-swap, manual approval,
the ledger, history and rollback."""

import json
from pathlib import Path

import mlflow
import pytest
import yaml

from ctpipeline.core import data
from ctpipeline.core.policy import Decision
from ctpipeline.steps import evaluate as evaluate_step
from ctpipeline.steps import promote as promote_step
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

from conftest import run_ctp as ctp

pytestmark = pytest.mark.integration


def landed(cfg_path, state, months=3, seed=21):
    from conftest import make_flights_like

    p = Pipeline.open(cfg_path, state)
    landing.land(
        data.split_batches(make_flights_like(2500 * months, seed=seed, months=months), p.cfg.data), p.landing_dir
    )
    return p


def cycle(cfg_path, state):
    from ctpipeline.flow import continuous_training

    s = continuous_training(config=str(cfg_path), state_dir=str(state), trigger="test", return_state=True)
    return s, s.result()


def set_promotion(cfg_path, **values):
    d = yaml.safe_load(cfg_path.read_text())
    d["promotion"] = {**d.get("promotion", {}), **values}
    cfg_path.write_text(yaml.safe_dump(d, sort_keys=False))


def test_champion_moved_during_evaluation_blocks_the_stale_promotion(prefect_server, small_pipeline, monkeypatch):
    cfg, state = small_pipeline
    p = landed(cfg, state)
    cycle(cfg, state)  # accumulate
    _, second = cycle(cfg, state)  # cold start: v1 champion
    assert second["status"] == "promoted" and p.registry.champion().version == "1"

    real = evaluate_step.make_decision
    moved = {}

    def someone_else_moves_the_champion(cfg_, ev):
        # another actor registers a version and points the champion at it while we evaluate
        import pandas as pd
        from sklearn.dummy import DummyClassifier

        other = DummyClassifier(strategy="prior").fit(pd.DataFrame({"x": [0, 1]}), [0, 1])
        run = p.tracking.start_run("someone-else")
        ref = p.models.log_and_register_model(run, other, pd.DataFrame({"x": [0, 1]}), ["scikit-learn"])
        p.tracking.end_run(run)
        p.registry.set_alias("champion", ref)
        moved["version"] = ref.version
        real(cfg_, ev)
        return Decision(True, "promote", ("forced by the test",), ())

    monkeypatch.setattr(evaluate_step, "make_decision", someone_else_moves_the_champion)
    _, third = cycle(cfg, state)
    assert third["status"] == "kept-champion"
    assert any("compare-and-swap" in r for r in third["reasons"])
    assert p.registry.champion().version == moved["version"]  # the other actor's move stands
    assert third["challenger_version"] not in {r["to_version"] for r in p.ledger.rows()}


def test_manual_approval_history_and_rollback(prefect_server, small_pipeline):
    cfg, state = small_pipeline
    set_promotion(cfg, approval="manual", noise_aware=False, min_margin=0.0, slices=[])
    p = landed(cfg, state)
    common = ("--config", str(cfg), "--state-dir", str(state))
    cycle(cfg, state)
    flow_state, res = cycle(cfg, state)
    assert flow_state.name == "AwaitingApproval" and res["status"] == "awaiting-approval"
    assert p.registry.champion() is None and p.registry.get_alias("challenger").version == "1"
    record = res["record"]
    assert record["verdict"] == "awaiting-approval" and record["challenger_version"] == "1"

    rc, out = ctp("approve", *common, "--reason", "looks good")
    assert rc == 0 and "v1 approved" in out
    assert p.registry.champion().version == "1"
    rc, out = ctp("approve", *common)
    assert rc == 1 and "no challenger awaiting approval" in out

    _, third = cycle(cfg, state)  # registers v2 (awaiting approval or rejected by the policy)
    v2 = p.registry.get_version(third["challenger_version"])
    assert promote_step.promote(p, v2, "1", reason="promoted by the test", trigger="test", run_id=third["run_id"])
    assert p.registry.get_alias("previous").version == "1"

    rc, out = ctp("history", *common)
    assert rc == 0 and "approve" in out and "v- -> v1" in out and "v1 -> v2" in out

    rc, out = ctp("rollback", *common, "--reason", "v2 misbehaves in production")
    assert rc == 0 and "from v2 to v1" in out
    assert p.registry.champion().version == "1" and p.registry.get_alias("previous").version == "2"
    rows = p.ledger.rows()
    assert [r["action"] for r in rows] == ["approve", "promote", "rollback"]
    assert rows[-1]["reason"] == "v2 misbehaves in production" and rows[-1]["from_version"] == "2"
    rc, out = ctp("history", *common)
    assert "rollback" in out and "v2 -> v1" in out

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(p.tracking_uri)
    try:
        model = mlflow.sklearn.load_model(f"models:/{p.name}@champion")
        assert str(mlflow.MlflowClient().get_model_version_by_alias(p.name, "champion").version) == "1"
    finally:
        mlflow.set_tracking_uri(previous)
    assert hasattr(model, "predict_proba")


def test_reject_pending_cold_start_keeps_registry_without_champion(prefect_server, small_pipeline):
    cfg, state = small_pipeline
    set_promotion(cfg, cold_start="manual")
    p = landed(cfg, state, months=2, seed=5)
    common = ("--config", str(cfg), "--state-dir", str(state))
    cycle(cfg, state)
    _, res = cycle(cfg, state)
    assert res["status"] == "awaiting-approval"
    rc, out = ctp("reject", *common, "--reason", "not convinced")
    assert rc == 0 and "v1 rejected" in out
    assert p.registry.champion() is None
    assert p.registry.get_version_tags(p.registry.get_version("1"))["ctp.approval"] == "rejected"
    rc, out = ctp("rollback", *common)
    assert rc == 1 and "no champion" in out


def test_a_version_carries_its_gates_verdict_and_outcome_as_the_decision_record_says(
    prefect_server, small_pipeline, tmp_path
):
    cfg, state = small_pipeline
    p = landed(cfg, state)
    cycle(cfg, state)  # accumulate
    _, second = cycle(cfg, state)  # cold start: v1 registered and promoted
    tags = p.registry.get_version_tags(p.registry.get_version(second["challenger_version"]))
    client = p.tracking.client.get()
    record = json.loads(
        Path(client.download_artifacts(tags["ctp.run_id"], "decision/decision.json", str(tmp_path))).read_text()
    )
    gates = {f"ctp.gate.{g['name']}": "pass" if g["passed"] else "FAIL" for g in record["gates"]}
    assert gates and {k: v for k, v in tags.items() if k.startswith("ctp.gate.")} == gates
    assert (tags["ctp.verdict"], tags["ctp.outcome"]) == (record["verdict"], record["outcome"])
