"""The drift HTML report and the plots are drawn off the critical path (steps.reports: a worker process by default,
or a thread), yet every cycle's run ends up with them, wherever they are drawn; a report that fails is a warning and
a tag, never a changed outcome."""

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
from ctpipeline.steps import renderers
from ctpipeline.steps.context import Pipeline
from ctpipeline.steps.reports import LOW_PRIORITY, Reports
from ctpipeline.store import landing

from conftest import make_flights_like

REPORTS = {"monitoring/drift_report.html", "plots/challenger_vs_champion.png", "plots/backtest_windows.png"}


def _artifacts(p: Pipeline, run_id: str) -> set[str]:
    client = MlflowClient(p.tracking_uri)
    return {a.path for folder in ("monitoring", "plots") for a in client.list_artifacts(run_id, folder)}


def _two_cycles(small_pipeline, monkeypatch, mode: str):
    cfg, state = small_pipeline
    monkeypatch.setenv("CTP_REPORTS", mode)
    p = Pipeline.open(cfg, state)
    landing.land(data.split_batches(make_flights_like(6000, seed=11, months=3), p.cfg.data), p.landing_dir)
    run_stages(p, stage.next_batch(p))  # cold start: no drift reference yet
    run_stages(p, stage.next_batch(p))
    return p, run_stages(p, stage.next_batch(p))


@pytest.mark.parametrize("mode", ["process", "thread", "inline"])
def test_every_run_gets_its_reports(small_pipeline, monkeypatch, mode):
    p, second = _two_cycles(small_pipeline, monkeypatch, mode)
    assert second.challenger_version is not None
    assert REPORTS <= _artifacts(p, second.run_id)
    run = MlflowClient(p.tracking_uri).get_run(second.run_id)
    assert run.info.status == "FINISHED" and "ctp.reports_failed" not in run.data.tags
    html = MlflowClient(p.tracking_uri).download_artifacts(second.run_id, "monitoring/drift_report.html")
    assert "<html" in open(html, encoding="utf-8").read(2000).lower()


def test_a_failed_report_is_a_warning_and_a_tag(small_pipeline, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("no disk for figures")

    monkeypatch.setattr(renderers, "plots", broken)  # a thread sees the patch (a worker process would not)
    with caplog.at_level(logging.WARNING, logger="ctpipeline.steps.reports"):
        p, second = _two_cycles(small_pipeline, monkeypatch, "thread")
    assert second.status in ("promoted", "kept-champion") and second.challenger_version is not None
    tags = MlflowClient(p.tracking_uri).get_run(second.run_id).data.tags
    assert tags["ctp.reports_failed"] == "plots" and tags["ctp.status"] == second.status
    assert "report plots was not logged: RuntimeError: no disk for figures" in caplog.text
    assert "monitoring/drift_report.html" in _artifacts(p, second.run_id)  # the other report is there


def _where(i: int) -> dict[str, str]:
    """A renderer: which process and thread drew report `i`, at which priority."""
    me = threading.get_native_id()
    return {f"r{i}": f"{os.getpid()} {threading.current_thread().name} {os.getpriority(os.PRIO_PROCESS, me)}"}


def _run(mode: str, count: int = 3) -> tuple[list[str], list[dict]]:
    logged: list[dict] = []
    reports = Reports(mode)
    for i in range(count):
        reports.draw(f"r{i}", _where, i)
    return reports.wait(logged.append), logged


def test_reports_are_drawn_in_one_worker_process_in_order_and_logged_by_the_caller():
    failed, logged = _run("process")
    assert failed == [] and [list(f) for f in logged] == [["r0"], ["r1"], ["r2"]]
    pids = {f[f"r{i}"].split()[0] for i, f in enumerate(logged)}
    assert len(pids) == 1 and pids != {str(os.getpid())}  # one worker, not this process
    again, logged_again = _run("process", 1)  # the next cycle reuses the same worker
    assert again == [] and logged_again[0]["r0"].split()[0] in pids


def test_a_report_that_raises_in_the_worker_is_reported_and_the_others_are_logged():
    logged: list[dict] = []
    reports = Reports("process")
    reports.draw("good", _where, 0)
    reports.draw("bad", int, "not a number")  # ValueError in the worker process
    reports.draw("good-too", _where, 1)
    assert reports.wait(logged.append) == ["bad"]
    assert [list(f) for f in logged] == [["r0"], ["r1"]]


def test_a_killed_worker_fails_its_reports_and_the_next_cycle_gets_a_new_one():
    import signal

    _, logged = _run("process", 1)
    pid = int(logged[0]["r0"].split()[0])
    reports = Reports("process")
    reports.draw("dies", os.kill, pid, signal.SIGKILL)  # the worker kills itself while drawing
    assert reports.wait(lambda files: None) == ["dies"]
    failed, logged = _run("process", 1)
    assert failed == [] and int(logged[0]["r0"].split()[0]) != pid


def test_a_partial_ctpipeline_first_on_sys_path_does_not_stop_a_new_worker(tmp_path, monkeypatch):
    """A model's code_paths folder (a ctpipeline package with only the feature code) that MLflow's own loader left
    first on sys.path: the worker process, spawned from a copy of sys.path, still imports this ctpipeline."""
    from ctpipeline.steps import reports as module

    code = tmp_path / "model" / "code"
    (code / "ctpipeline" / "core").mkdir(parents=True)
    (code / "ctpipeline" / "__init__.py").write_text("")
    (code / "ctpipeline" / "core" / "features.py").write_text("")
    monkeypatch.syspath_prepend(str(code))
    if "process" in module._workers:  # a worker started before the folder was on the path
        module._forget(module._workers["process"])
    failed, logged = _run("process", 1)
    assert failed == [] and int(logged[0]["r0"].split()[0]) != os.getpid()
    assert sys.path[0] == str(code)  # this process's path is left as it was


def test_reports_run_on_one_background_thread_in_order():
    failed, logged = _run("thread")
    assert failed == [] and [list(f) for f in logged] == [["r0"], ["r1"], ["r2"]]
    assert all(f[f"r{i}"].split()[1].startswith("ctp-reports") for i, f in enumerate(logged))


@pytest.mark.skipif(not hasattr(os, "setpriority") or sys.platform != "linux", reason="per-thread nice is Linux's")
@pytest.mark.parametrize("mode", ["process", "thread"])
def test_the_reports_yield_the_cpu_to_the_cycle(mode):
    """The reports run at nice 10, so that XGBoost's OpenMP threads keep their cores; the caller's thread keeps
    its own priority."""
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    failed, logged = _run(mode, 1)
    assert failed == [] and int(logged[0]["r0"].split()[-1]) == max(caller, LOW_PRIORITY)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == caller


def test_a_command_of_many_cycles_starts_the_worker_early_and_its_reports_go_there(monkeypatch):
    from ctpipeline.steps import reports as module

    monkeypatch.setitem(module._default, "mode", "thread")  # restored after the test: other tests keep threads
    monkeypatch.setitem(module._default, "after_close", False)  # ... and wait for their reports before closing
    monkeypatch.delenv("CTP_REPORTS", raising=False)
    monkeypatch.delenv("CTP_REPORTS_INLINE", raising=False)
    assert Reports().mode == "thread"  # one cycle (ctp run): a thread of its own process
    warm = module.use_worker_process()
    assert warm is not None and warm.result(timeout=300) is None  # Evidently and matplotlib imported there
    assert Reports().mode == "process" and module.logs_after_close()  # and its runs close before their reports
    failed, logged = _run(Reports().mode, 1)
    assert failed == [] and int(logged[0]["r0"].split()[0]) != os.getpid()
    monkeypatch.setenv("CTP_REPORTS", "inline")  # the environment still decides
    assert Reports().mode == "inline"


def test_a_held_report_is_drawn_on_release_or_when_the_run_waits():
    drawn: list[str] = []

    def render(name):
        drawn.append(name)
        return {name: "x"}

    reports = Reports("inline")
    reports.draw_later("drift", render, "drift")
    assert drawn == [] and reports.pending  # held while the challenger is fitted
    reports.release()
    assert drawn == ["drift"]
    reports.draw_later("held", render, "held")
    reports.draw("plots", render, "plots")  # a later report draws the held one first: the order is kept
    assert drawn == ["drift", "held", "plots"]
    reports.draw_later("last", render, "last")
    logged: list[dict] = []
    assert reports.wait(logged.append) == [] and [list(f) for f in logged] == [["drift"], ["held"], ["plots"], ["last"]]
    assert not reports.pending


def test_handed_off_reports_are_logged_in_the_background_and_flush_waits_for_them():
    from ctpipeline.steps import reports as module

    gate = threading.Event()
    reports = Reports("thread")
    reports.draw("slow", _slow, gate)
    reports.draw("bad", int, "not a number")
    logged: list[dict] = []
    done: list[list[str]] = []
    reports.hand_off(logged.append, done.append)
    assert not reports.pending and logged == [] and done == []  # the caller went on at once
    assert not module.flush(timeout=0.2)  # still drawing
    gate.set()
    assert module.flush(timeout=60)
    assert [list(f) for f in logged] == [["slow"]] and done == [["bad"]]


def _slow(gate: threading.Event) -> dict[str, str]:
    assert gate.wait(60)
    return {"slow": "drawn"}


def test_a_command_of_many_cycles_closes_each_run_before_its_reports_and_flushes_them(small_pipeline, monkeypatch):
    """`ctp replay` / `ctp demo`: the run closes (decision, promotion, status) with ctp.reports_pending; the reports
    arrive on the closed run, and the tag goes, by the time the command flushes them."""
    from ctpipeline.steps import reports as module
    from ctpipeline.steps.lifecycle import REPORTS_PENDING

    monkeypatch.setitem(module._default, "after_close", True)
    gate = threading.Event()
    real = renderers.plots

    def held_plots(*args):  # a thread sees the patch: the plots wait for the test
        assert gate.wait(120)
        return real(*args)

    monkeypatch.setattr(renderers, "plots", held_plots)
    p, second = _two_cycles(small_pipeline, monkeypatch, "thread")
    client = MlflowClient(p.tracking_uri)
    run = client.get_run(second.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["ctp.status"] == second.status
    assert run.data.tags[REPORTS_PENDING] == "true" and "plots/backtest_windows.png" not in _artifacts(p, second.run_id)
    gate.set()
    assert module.flush(timeout=120)
    run = client.get_run(second.run_id)
    assert REPORTS_PENDING not in run.data.tags and "ctp.reports_failed" not in run.data.tags
    assert REPORTS <= _artifacts(p, second.run_id)
