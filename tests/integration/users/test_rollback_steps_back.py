"""A second `ctp rollback` steps further back along the champions the ledger recorded, instead of toggling between
the last two. Real MLflow registry (SQLite under tmp_path), versions without model files."""

from __future__ import annotations

import pytest

from ctpipeline.adapters.mlflow import ModelRef
from ctpipeline.steps import promote as promote_step
from ctpipeline.steps.context import Pipeline

from conftest import run_ctp, write_pipeline_config

ctp = run_ctp  # the CLI in-process: (exit code, stdout + stderr)

pytestmark = pytest.mark.integration


def test_rollbacks_walk_back_through_the_champions(tmp_path):
    cfg = write_pipeline_config(tmp_path)
    state = tmp_path / "state"
    p = Pipeline.open(cfg, state)
    client = p.registry.client.get()
    client.create_registered_model(p.name)
    for _ in range(3):
        client.create_model_version(p.name, source="file:///nowhere/model", run_id=None)
    before = None
    for v in ("1", "2", "3"):
        assert promote_step.promote(p, ModelRef(p.name, v, None), before, reason="test", trigger="test", run_id=None)
        before = v
    common = ("--config", str(cfg), "--state-dir", str(state))
    rc, out = ctp("rollback", *common)
    assert rc == 0 and "from v3 to v2" in out
    rc, out = ctp("rollback", *common)
    assert rc == 0 and "from v2 to v1" in out, out  # not back to v3
    assert p.registry.champion().version == "1"
    rc, out = ctp("rollback", *common)
    assert rc == 1 and "first champion" in out
    assert [(r["action"], r["from_version"], r["to_version"]) for r in p.ledger.rows()][-2:] == [
        ("rollback", "3", "2"),
        ("rollback", "2", "1"),
    ]
    # a champion the ledger does not know (moved by hand in the MLflow UI): the `previous` alias is the way back
    client.set_registered_model_alias(p.name, "champion", "3")
    client.set_registered_model_alias(p.name, "previous", "2")
    p.ledger.path.write_text("")
    rc, out = ctp("rollback", *common)
    assert rc == 0 and "from v3 to v2" in out
