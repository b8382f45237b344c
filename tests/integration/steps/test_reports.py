"""The drift HTML report and the plots are drawn in the background (steps.reports), yet every cycle's run ends up
with them, drawn inline or not; a report that fails is a warning and a tag, never a changed outcome."""

from __future__ import annotations

import logging
import os
import sys
import threading

import pytest
from mlflow import MlflowClient

from ctpipeline.core import data
from ctpipeline.flow import run_stages
from ctpipeline.steps import cycle as stage
from ctpipeline.steps import tracking
from ctpipeline.steps.context import Pipeline
from ctpipeline.steps.reports import LOW_PRIORITY, Reports
from ctpipeline.store import landing

from conftest import make_flights_like

REPORTS = {"monitoring/drift_report.html", "plots/challenger_vs_champion.png", "plots/backtest_windows.png"}


def _artifacts(p: Pipeline, run_id: str) -> set[str]:
    client = MlflowClient(p.tracking_uri)
    return {a.path for folder in ("monitoring", "plots") for a in client.list_artifacts(run_id, folder)}


def _two_cycles(small_pipeline, monkeypatch, inline: bool):
    cfg, state = small_pipeline
    monkeypatch.setenv("CTP_REPORTS_INLINE", "1" if inline else "0")
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(6000, seed=11, months=3), p.cfg.data), p.landing_dir)
    run_stages(p, stage.next_batch(p))  # cold start: no drift reference yet
    run_stages(p, stage.next_batch(p))
    return p, run_stages(p, stage.next_batch(p))


@pytest.mark.parametrize("inline", [False, True], ids=["background", "inline"])
def test_every_run_gets_its_reports(small_pipeline, monkeypatch, inline):
    p, second = _two_cycles(small_pipeline, monkeypatch, inline)
    assert second.challenger_version is not None
    assert REPORTS <= _artifacts(p, second.run_id)
    run = MlflowClient(p.tracking_uri).get_run(second.run_id)
    assert run.info.status == "FINISHED" and "ctp.reports_failed" not in run.data.tags
    html = MlflowClient(p.tracking_uri).download_artifacts(second.run_id, "monitoring/drift_report.html")
    assert "<html" in open(html, encoding="utf-8").read(2000).lower()


def test_a_failed_report_is_a_warning_and_a_tag(small_pipeline, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("no disk for figures")

    monkeypatch.setattr(tracking, "log_plots", broken)
    with caplog.at_level(logging.WARNING, logger="ctpipeline.steps.reports"):
        p, second = _two_cycles(small_pipeline, monkeypatch, inline=False)
    assert second.status in ("promoted", "kept-champion") and second.challenger_version is not None
    tags = MlflowClient(p.tracking_uri).get_run(second.run_id).data.tags
    assert tags["ctp.reports_failed"] == "plots" and tags["ctp.status"] == second.status
    assert "report plots was not logged: RuntimeError: no disk for figures" in caplog.text
    assert "monitoring/drift_report.html" in _artifacts(p, second.run_id)  # the other report is there


def test_reports_run_on_one_background_thread_in_order():
    seen = []
    reports = Reports(inline=False)
    for i in range(3):
        reports.submit(f"r{i}", lambda i=i: seen.append((i, threading.current_thread().name)))
    assert reports.wait() == []
    assert [i for i, _ in seen] == [0, 1, 2]
    assert all(name.startswith("ctp-reports") for _, name in seen)
    assert reports.wait() == []  # nothing pending: a second wait returns at once


@pytest.mark.skipif(not hasattr(os, "setpriority") or sys.platform != "linux", reason="per-thread nice is Linux's")
def test_the_report_thread_yields_the_cpu_to_the_cycle():
    """The reports run at nice 19, so that XGBoost's OpenMP threads keep their cores; the caller's thread keeps
    its own priority."""
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = []
    reports = Reports(inline=False)
    reports.submit("nice", lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    assert reports.wait() == []
    assert seen == [max(caller, LOW_PRIORITY)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller
