"""The notification message (pure): which outcome is which event, what title and body say, and what never goes in
them (an error's text, credentials of the tracking URI)."""

import pytest

from ctpipeline.core.cycle import CycleResult
from ctpipeline.core.notify import MAX_BODY_CHARS, approval_notice, cycle_notice, event_of, run_link, url_scheme

PROMOTED = CycleResult(
    batch="2013-05",
    status="promoted",
    metric="roc_auc",
    challenger_metric=0.6712,
    champion_metric=0.6650,
    gain=0.0062,
    ci_low=0.0011,
    ci_high=0.0114,
    challenger_version="7",
    champion_version_before="6",
    champion_version_after="7",
    run_id="abc123",
    reasons=("gain +0.0062 clears the margin 0.0000 (interval lower bound +0.0011)",),
    verdict="promote",
)


@pytest.mark.parametrize(
    "status, event",
    [
        ("promoted", "promoted"),
        ("quarantined", "rejected"),
        ("gate-failed", "rejected"),
        ("awaiting-approval", "awaiting_approval"),
        ("accumulating", None),
        ("kept-champion", None),
        ("monitored", None),
        ("shadow", None),
        ("no-batch", None),
    ],
)
def test_event_of_each_status(status, event):
    assert event_of(CycleResult(batch="b", status=status)) == event
    assert event_of(CycleResult(batch="b", status=status), failed=True) == "failed"


def test_promotion_names_pipeline_batch_versions_metric_gain_reason_and_link():
    n = cycle_notice("flights-delay", PROMOTED, "promoted", link="http://mlflow:5000/#/experiments/1/runs/abc123")
    assert n.event == "promoted" and n.level == "success"
    assert n.title == "ctp flights-delay 2013-05: v7 promoted"
    lines = n.body.splitlines()
    assert lines[0] == "pipeline flights-delay, batch 2013-05: promoted"
    assert "champion is now v7 (was v6)" in lines
    assert "roc_auc: challenger 0.6712, champion 0.6650, gain +0.0062 (interval +0.0011 to +0.0114)" in lines
    assert lines[-2].startswith("reason: gain +0.0062 clears the margin")
    assert lines[-1] == "MLflow run: http://mlflow:5000/#/experiments/1/runs/abc123"


def test_without_a_tracking_server_the_run_id_is_given():
    n = cycle_notice("p", PROMOTED, "promoted")
    assert n.body.splitlines()[-1] == "MLflow run: abc123 (`ctp ui mlflow`)"


def test_rejection_lists_failed_expectations_and_counts_the_rest():
    failed = tuple(f"expect_column_to_exist(column=c{i}): column missing" for i in range(25))
    res = CycleResult(
        batch="2013-04",
        status="quarantined",
        gate="failed",
        champion_version_before="3",
        failed_expectations=failed,
        reasons=("batch 2013-04 rejected by the quality gate and moved to /q/2013-04.parquet:\n  - " + failed[0],),
    )
    n = cycle_notice("flights-delay", res, "rejected")
    assert n.level == "warning" and n.title == "ctp flights-delay 2013-04: batch rejected"
    assert "batch rejected by the quality gate; champion v3 stays" in n.body
    assert "  - expect_column_to_exist(column=c19): column missing" in n.body
    assert "c20" not in n.body and "... and 5 more" in n.body
    assert "reason: batch 2013-04 rejected by the quality gate and moved to /q/2013-04.parquet:" in n.body


def test_awaiting_approval_says_what_to_run():
    res = CycleResult(batch="2013-06", status="awaiting-approval", challenger_version="8", champion_version_before="7")
    n = cycle_notice("p", res, "awaiting_approval")
    assert n.level == "info" and n.title == "ctp p 2013-06: v8 awaits approval"
    assert "`ctp approve`" in n.body and "champion v7 stays" in n.body


def test_failure_names_the_error_type_only():
    res = CycleResult(batch="2013-07", status="accumulating", champion_version_before="7", run_id="r1")
    n = cycle_notice("p", res, "failed", error="RegistryError")
    assert n.level == "failure" and n.title == "ctp p 2013-07: cycle failed"
    assert "the cycle crashed (RegistryError); champion v7 stays" in n.body


def test_body_is_bounded():
    res = CycleResult(batch="b", status="promoted", reasons=tuple("x" * 500 for _ in range(20)))
    assert len(cycle_notice("p", res, "promoted").body) <= MAX_BODY_CHARS


def test_approval_notice():
    n = approval_notice("p", "9", "8", "looks good")
    assert (n.event, n.level, n.title) == ("promoted", "success", "ctp p: v9 promoted (approved)")
    assert "champion is now v9 (was v8) by approval" in n.body and "reason: looks good" in n.body


@pytest.mark.parametrize(
    "uri, link",
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/#/experiments/3/runs/r"),
        ("https://user:pw@mlflow.example.com/base/?token=t", "https://mlflow.example.com/base/#/experiments/3/runs/r"),
        ("sqlite:////tmp/mlflow.db", None),
        ("databricks", None),
        (None, None),
    ],
)
def test_run_link_only_for_a_server_and_without_credentials(uri, link):
    assert run_link(uri, "3", "r") == link


@pytest.mark.parametrize(
    "url, scheme",
    [
        ("slack://T1/B2/secret", "slack"),
        ("JSONS://h/p", "jsons"),
        ("mailto://u:p@example.com", "mailto"),
        ("secret-without-scheme", "?"),
        ("https://hooks.slack.com/services/T/B/x", "https"),
        ("a b://x", "?"),
    ],
)
def test_url_scheme_shows_nothing_else(url, scheme):
    assert url_scheme(url) == scheme
