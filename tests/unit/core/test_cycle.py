"""The cycle's lifecycle rules as data: statuses after a decision, orchestrator states, rows since training."""

from datetime import UTC, datetime

from ctpipeline.core.cycle import (
    CAS_LOST,
    CycleResult,
    final_state,
    quality_failure_message,
    since_last_training,
    status_after_decision,
)
from ctpipeline.core.results import Monitoring, Scored
from ctpipeline.core.triggers import TriggerDecision


def test_status_after_each_decision():
    assert status_after_decision("promote", True, True) == ("promoted", ())
    assert status_after_decision("promote", True, False) == ("kept-champion", (CAS_LOST,))
    assert status_after_decision("reject", False, False) == ("kept-champion", ())
    assert status_after_decision("register_only", False, False) == ("registered", ())
    assert status_after_decision("awaiting-approval", False, False) == ("awaiting-approval", ())


def test_final_state_names_rejections_and_waits_only():
    rejected = CycleResult(batch="2013-04", status="quarantined", reasons=("batch 2013-04 rejected\n  - x",))
    assert final_state(rejected).name == "Rejected" and final_state(rejected).message == "batch 2013-04 rejected"
    waiting = CycleResult(batch="2013-04", status="awaiting-approval", challenger_version="3")
    assert final_state(waiting).name == "AwaitingApproval" and "v3" in final_state(waiting).message
    assert final_state(CycleResult(batch="2013-04", status="promoted")) is None


def test_since_last_training_counts_accepted_rows_after_the_last_challenger():
    at = "2024-01-02T00:00:00+00:00"
    records = [
        {"status": "accepted", "rows": 5, "challenger_version": "1", "at": at},
        {"status": "rejected", "rows": 100},
        {"status": "accepted", "rows": 7},
        {"status": "accepted", "rows": 11},
    ]
    assert since_last_training(records) == (18, datetime(2024, 1, 2, tzinfo=UTC))
    assert since_last_training(records[2:]) == (18, None)


def test_with_monitoring_marks_a_batch_that_does_not_retrain():
    no = TriggerDecision(False, (), ("drifted share 0.10 < 0.30",))
    mon = Monitoring((), None, Scored("2", metric=0.7), 0.71, no)
    res = CycleResult(batch="b", status="accumulating").with_monitoring(mon)
    assert res.status == "monitored" and res.served_metric == 0.7
    assert res.reasons == ("no retraining: drifted share 0.10 < 0.30",)
    yes = TriggerDecision(True, ("manual",), ("manual request",))
    res = CycleResult(batch="b", status="accumulating").with_monitoring(Monitoring((), None, None, None, yes))
    assert res.status == "accumulating" and res.fired == ("manual",)
    assert res.to_dict()["fired"] == ["manual"]  # lists in the flow's JSON-friendly return value


def test_quality_failure_message_names_each_failed_expectation():
    msg = quality_failure_message("2013-04", ["temp: 3 unexpected", "dep_delay: column not found"], "/q/2013-04")
    assert msg.splitlines() == [
        "batch 2013-04 rejected by the quality gate and moved to /q/2013-04:",
        "  - temp: 3 unexpected",
        "  - dep_delay: column not found",
    ]
