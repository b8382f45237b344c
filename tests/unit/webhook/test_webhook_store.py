"""The receiver's SQLite state: facts read and written in one transaction, committed or rolled back as a whole,
shared by every WebhookState (receiver process) on the same file."""

from __future__ import annotations

import threading
import time

import pytest

from ctpipeline.core.admission import LastLaunch
from ctpipeline.webhook.store import LaunchRecord, PendingLaunch, WebhookState

from conftest import WEBHOOK_T0


def launch(run: str = "run-1", key: str = "generic:drift-1", model: str = "flights-delay", at: float = WEBHOOK_T0):
    return LaunchRecord(model=model, dedupe_key=key, launched_at=at, flow_run_id=run, source="generic", reason="r")


def test_a_fresh_state_knows_nothing(tmp_path):
    state = WebhookState(tmp_path / "deep" / "folder" / "webhook.db")  # the folder is created
    assert state.path.exists()
    with state.transaction("flights-delay") as tx:
        assert tx.last_for_key("flights-delay", "generic:drift-1") is None
        assert tx.last_for_model("flights-delay") is None
        assert tx.pending("flights-delay", "generic:drift-1") is None
    assert state.launches() == []


def test_record_launch_sets_key_model_and_history_and_clears_the_pending_id(tmp_path):
    state = WebhookState(tmp_path / "webhook.db")
    with state.transaction("flights-delay") as tx:
        tx.set_pending("flights-delay", "generic:drift-1", PendingLaunch("ctp-webhook-1", WEBHOOK_T0 - 1))
        assert tx.pending("flights-delay", "generic:drift-1") == PendingLaunch("ctp-webhook-1", WEBHOOK_T0 - 1)
        tx.record_launch(launch())
    with state.transaction("flights-delay") as tx:
        assert tx.last_for_key("flights-delay", "generic:drift-1") == LastLaunch(WEBHOOK_T0, "run-1")
        assert tx.last_for_model("flights-delay") == LastLaunch(WEBHOOK_T0, "run-1")
        assert tx.last_for_key("flights-delay", "generic:other") is None
        assert tx.last_for_key("churn", "generic:drift-1") is None and tx.last_for_model("churn") is None
        assert tx.pending("flights-delay", "generic:drift-1") is None
        # a later launch of another key moves the model's last launch, not the first key's
        tx.record_launch(launch("run-2", key="generic:other", at=WEBHOOK_T0 + 60))
        tx.record_launch(launch("run-3", model="churn", at=WEBHOOK_T0 + 90))
    with state.transaction("flights-delay") as tx:
        assert tx.last_for_model("flights-delay") == LastLaunch(WEBHOOK_T0 + 60, "run-2")
        assert tx.last_for_key("flights-delay", "generic:drift-1") == LastLaunch(WEBHOOK_T0, "run-1")
    rows = state.launches()
    assert [r["flow_run_id"] for r in rows] == ["run-1", "run-2", "run-3"]  # oldest first
    assert rows[0] == {
        "launched_at": WEBHOOK_T0,
        "model": "flights-delay",
        "dedupe_key": "generic:drift-1",
        "flow_run_id": "run-1",
        "source": "generic",
        "reason": "r",
        "sender": "",
    }
    assert [r["flow_run_id"] for r in state.launches("churn")] == ["run-3"]


def test_set_pending_replaces_the_previous_id(tmp_path):
    state = WebhookState(tmp_path / "webhook.db")
    with state.transaction("m") as tx:
        tx.set_pending("m", "k", PendingLaunch("id-1", 1.0))
        tx.set_pending("m", "k", PendingLaunch("id-1", 2.0))
    with state.transaction("m") as tx:
        assert tx.pending("m", "k") == PendingLaunch("id-1", 2.0)


def test_an_exception_rolls_the_whole_transaction_back(tmp_path):
    state = WebhookState(tmp_path / "webhook.db")
    with pytest.raises(RuntimeError, match="boom"):
        with state.transaction("flights-delay") as tx:
            tx.set_pending("flights-delay", "generic:drift-1", PendingLaunch("ctp-webhook-1", WEBHOOK_T0))
            tx.record_launch(launch())
            raise RuntimeError("boom")
    with state.transaction("flights-delay") as tx:
        assert tx.last_for_model("flights-delay") is None and tx.pending("flights-delay", "generic:drift-1") is None
    assert state.launches() == []


def test_state_survives_a_reopen_and_is_shared_between_instances(tmp_path):
    path = tmp_path / "webhook.db"
    with WebhookState(path).transaction("flights-delay") as tx:
        tx.record_launch(launch())
    other = WebhookState(path)  # a restarted receiver, or a second process on the same file
    with other.transaction("flights-delay") as tx:
        assert tx.last_for_key("flights-delay", "generic:drift-1") == LastLaunch(WEBHOOK_T0, "run-1")
    assert len(other.launches("flights-delay")) == 1


def test_transactions_on_one_file_are_serialised_even_across_instances(tmp_path):
    path = tmp_path / "webhook.db"
    first, second = WebhookState(path), WebhookState(path)
    inside, order = threading.Event(), []

    def holder():
        with first.transaction("flights-delay") as tx:
            inside.set()
            time.sleep(0.3)
            tx.record_launch(launch())
            order.append("first committed")

    t = threading.Thread(target=holder)
    t.start()
    assert inside.wait(10)
    with second.transaction("flights-delay") as tx:  # BEGIN IMMEDIATE waits for the first to commit
        order.append("second began")
        assert tx.last_for_model("flights-delay") == LastLaunch(WEBHOOK_T0, "run-1")
    t.join(10)
    assert order == ["first committed", "second began"]
