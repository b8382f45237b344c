"""The ledger agrees with the registry after a failure between the alias move and the ledger write, on a real MLflow
SQLite registry: the next reader repairs it (an `action: reconcile` row), `ctp status` and `ctp history` show the
real champion, and `ctp rollback` steps back through the champions in order (v5 -> v4 -> v2 -> v1), never toggling.
The failures are simulated in-process (the ledger's append or the `previous` alias write raises); the SIGKILL
versions live with the fault-injection tests."""

import pytest

from ctpipeline.steps import promote as promote_step
from ctpipeline.steps.context import Pipeline
from ctpipeline.store.ledger import Ledger

from conftest import run_ctp, write_pipeline_config

ctp = run_ctp  # the CLI in-process: (exit code, stdout + stderr)

pytestmark = pytest.mark.integration


@pytest.fixture
def registry_with_history(tmp_path):
    """Versions 1..5 of a tiny model; champion moves none -> 1 -> 2 -> 4 recorded (v3 never promoted)."""
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    cfg = write_pipeline_config(tmp_path)
    p = Pipeline.open(cfg, tmp_path / "state")
    X = pd.DataFrame({"x": [0.0, 1.0]})
    refs = {}
    for v in "12345":
        run = p.tracking.start_run(f"v{v}")
        model = DummyClassifier(strategy="prior").fit(X, [0, 1])
        refs[v] = p.models.log_and_register_model(run, model, X, ["scikit-learn"])
        p.tracking.end_run(run)
    for frm, to in ((None, "1"), ("1", "2"), ("2", "4")):
        assert promote_step.promote(p, refs[to], frm, reason=f"to v{to}", trigger="test", run_id=f"run-{to}")
    return p, refs, ("--config", str(cfg), "--state-dir", str(tmp_path / "state"))


def _fail_ledger_write_for(monkeypatch, version: str):
    real = Ledger.append

    def append(self, **row):
        if row.get("to_version") == version and not row.get("intent"):
            raise OSError(28, "No space left on device")
        return real(self, **row)

    monkeypatch.setattr(Ledger, "append", append)


def test_ledger_write_failing_after_the_alias_moved_is_repaired_and_rollback_steps_back(
    registry_with_history, monkeypatch
):
    p, refs, common = registry_with_history
    with monkeypatch.context() as m:
        _fail_ledger_write_for(m, "5")
        with pytest.raises(OSError):
            promote_step.promote(p, refs["5"], "4", reason="v5 is better", trigger="replay", run_id="run-5")
    assert p.registry.champion().version == "5"  # the alias moved, the ledger row did not follow

    rc, out = ctp("status", *common)
    assert rc == 0 and "champion    v5" in out and "repaired" in out and "v4 -> v5" in out
    rc, out = ctp("history", *common)
    assert rc == 0 and "reconcile" in out and "v4 -> v5" in out
    last = p.ledger.rows()[-1]
    assert (last["action"], last["from_version"], last["to_version"]) == ("reconcile", "4", "5")
    assert last["run_id"] == "run-5" and "v5 is better" in last["reason"]  # the intent's details kept

    steps = []
    for _ in range(3):
        rc, out = ctp("rollback", *common)
        assert rc == 0, out
        steps.append(p.registry.champion().version)
    assert steps == ["4", "2", "1"]  # back through the champions in order, never toggling
    rc, out = ctp("rollback", *common)
    assert rc == 1 and "no champion before v1" in out
    assert [r["to_version"] for r in p.ledger.rows()] == ["1", "2", "4", "5", "4", "2", "1"]


def test_process_stopping_right_after_the_alias_move_rolls_back_to_the_replaced_champion(
    registry_with_history, monkeypatch
):
    p, refs, common = registry_with_history
    real = type(p.registry).set_alias

    def set_alias(self, alias, ref):
        if alias == "previous":
            raise RuntimeError("killed right after the champion alias moved")
        return real(self, alias, ref)

    with monkeypatch.context() as m:
        m.setattr(type(p.registry), "set_alias", set_alias)
        with pytest.raises(RuntimeError):
            promote_step.promote(p, refs["5"], "4", reason="v5 is better", trigger="replay", run_id="run-5")
    assert p.registry.champion().version == "5" and p.registry.get_alias("previous").version == "2"  # stale

    rc, out = ctp("rollback", *common)
    assert rc == 0 and "from v5 to v4" in out, out
    assert p.registry.champion().version == "4"


def test_the_next_cycle_repairs_the_ledger_before_it_evaluates(registry_with_history, monkeypatch):
    p, refs, _ = registry_with_history
    with monkeypatch.context() as m:
        _fail_ledger_write_for(m, "5")
        with pytest.raises(OSError):
            promote_step.promote(p, refs["5"], "4", reason="v5 is better", trigger="replay", run_id="run-5")
    assert p.ledger.champion() == "4"
    assert promote_step.current_champion(p).version == "5"  # what CycleRun evaluates against
    assert p.ledger.champion() == "5" and p.ledger.rows()[-1]["action"] == "reconcile"
    assert promote_step.current_champion(p).version == "5" and len(p.ledger.rows()) == 4  # repaired once


def test_a_champion_moved_outside_ctp_is_recorded_as_such(registry_with_history):
    p, refs, common = registry_with_history
    p.registry.set_alias("champion", refs["3"])  # someone used the MLflow UI
    rc, out = ctp("status", *common)
    assert rc == 0 and "moved outside ctp" in out
    rc, out = ctp("rollback", *common)
    assert rc == 0 and "from v3 to v4" in out
