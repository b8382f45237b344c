"""Each step of a cycle on its own, with explicit inputs and no MLflow store (files under tmp_path only)."""

from datetime import UTC, datetime

import numpy as np
import pytest

from ctpipeline.core.data import split_batches
from ctpipeline.core.results import Scored, Skipped, Trained
from ctpipeline.steps import evaluate as ev_step
from ctpipeline.steps.ingest import next_batch, quarantine
from ctpipeline.steps.monitor import monitor
from ctpipeline.steps.scoring import score_model
from ctpipeline.steps.train import train_challenger, window_names
from ctpipeline.store.landing import land
from ctpipeline.store.state import BatchLog

from conftest import make_flights_like

NOW = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def months(flights_cfg):
    df = make_flights_like(6000, seed=5, months=3)
    return split_batches(df, flights_cfg.data)


@pytest.fixture(scope="module")
def trained(flights_cfg, months):
    out = train_challenger(
        flights_cfg, "2013-03", months["2013-03"], [months["2013-01"], months["2013-02"]], ["2013-01", "2013-02"]
    )
    assert isinstance(out, Trained)
    return out


def test_next_batch_and_quarantine_keep_every_file(tmp_path, flights_cfg, months):
    landing, qdir, log = tmp_path / "landing", tmp_path / "quarantine", BatchLog(tmp_path / "batches.jsonl")
    land(months, landing)
    first = next_batch(landing, log)
    assert first.name == "2013-01"
    target = quarantine(first, qdir, log, error="unreadable on purpose")
    assert target.exists() and (qdir / "2013-01.gx.json").exists() and not first.path.exists()
    assert log.records()[-1]["status"] == "rejected" and log.records()[-1]["failed"] == ["unreadable on purpose"]
    assert next_batch(landing, log).name == "2013-02"


def test_next_batch_hashes_no_file_after_the_one_it_returns(tmp_path, months, monkeypatch):
    import ctpipeline.store.landing as landing_mod

    landing, log = tmp_path / "landing", BatchLog(tmp_path / "batches.jsonl")
    land(months, landing)
    first = next_batch(landing, log)
    log.append({"batch": first.name, "sha256": first.sha256, "status": "accepted"})
    hashed = []
    real = landing_mod.file_sha256
    monkeypatch.setattr(landing_mod, "file_sha256", lambda path: hashed.append(path.stem) or real(path))
    second = next_batch(landing, log)
    assert second.name == sorted(months)[1] and hashed == sorted(months)[:2]
    (landing / f"{first.name}.parquet").write_bytes(b"new content, same name")  # landed again: a new batch
    assert next_batch(landing, log).name == first.name


def test_window_names_are_the_newest_accepted_before_the_batch(flights_cfg):
    accepted = ["2013-01", "2013-02", "2013-03", "2013-04", "2013-06"]
    assert window_names(flights_cfg, accepted, "2013-05") == accepted[-flights_cfg.training.window_batches - 1 : -1]


def test_train_challenger_fits_the_window_and_records_it(trained):
    assert trained.train_batches == ("2013-01", "2013-02") and trained.train_rows > 1000
    assert trained.fit_seconds > 0 and len(trained.input_example) == 5


def test_train_challenger_says_why_it_did_not(flights_cfg, months):
    nothing = train_challenger(flights_cfg, "2013-02", months["2013-02"], [], [])
    assert isinstance(nothing, Skipped) and "not enough accepted data" in nothing.reason
    unlabelled = months["2013-02"].assign(arr_delay=np.nan)
    out = train_challenger(flights_cfg, "2013-02", unlabelled, [months["2013-01"]], ["2013-01"])
    assert isinstance(out, Skipped) and "no labelled rows" in out.reason
    one_class = months["2013-01"].assign(arr_delay=0.0)
    out = train_challenger(flights_cfg, "2013-02", months["2013-02"], [one_class], ["2013-01"])
    assert isinstance(out, Skipped) and "single class" in out.reason


def test_training_rows_from_the_cut_on_are_dropped_and_a_given_labelled_batch_is_the_same(flights_cfg, months, trained):
    from ctpipeline.core.data import labelled

    window, names = [months["2013-01"], months["2013-02"], months["2013-03"]], ["2013-01", "2013-02", "2013-03"]
    overlapping = train_challenger(flights_cfg, "2013-03", months["2013-03"], window, names)
    assert overlapping.train_rows == trained.train_rows  # the batch's own rows lie after the cut: not trained on
    lab = labelled(months["2013-03"], flights_cfg)
    given = train_challenger(flights_cfg, "2013-03", months["2013-03"], window[:2], names[:2], labelled_batch=lab)
    assert given.train_rows == trained.train_rows and given.train_end == trained.train_end
    assert np.array_equal(given.model.predict_proba(lab), trained.model.predict_proba(lab))


def test_evaluate_reuses_the_champion_scores_and_scores_other_baselines(flights_cfg, months, trained):
    from ctpipeline.core.data import labelled, make_xy

    X, y = make_xy(labelled(months["2013-03"], flights_cfg), flights_cfg)
    champion = score_model(flights_cfg, "4", lambda: trained.model, X, y)
    calls = []

    def score_version(version, X_, y_):
        calls.append(version)
        return Scored(version, metric=0.5)

    ev = ev_step.evaluate(
        flights_cfg,
        trained.model,
        months["2013-03"],
        champion,
        score_version,
        {"never_retrain": "1", "always_promote": "4", "none_yet": None},
    )
    assert calls == ["1"]  # v4 is the champion: its scores are reused, not recomputed
    assert ev.baselines == {"never_retrain": 0.5, "always_promote": champion.metric}
    assert ev.champion_version == "4" and abs(ev.backtest.gain) < 1e-12  # the same model on both sides
    decision = ev_step.make_decision(flights_cfg, ev)
    assert not decision.promote and decision.verdict == "reject"


def test_evaluate_on_the_monitors_inputs_is_the_same_evaluation(flights_cfg, months, trained, monkeypatch):
    """The cycle hands the back-test the labelled rows and model inputs the monitor made (CycleRun.labelled_xy):
    the same Evaluation as when the back-test makes them itself, and no second make_xy."""
    from ctpipeline.core.data import labelled, make_xy

    batch = months["2013-03"]
    lab = labelled(batch, flights_cfg)
    X, y = make_xy(lab, flights_cfg)
    champion = score_model(flights_cfg, "4", lambda: trained.model, X, y)
    own = ev_step.evaluate(flights_cfg, trained.model, batch, champion, lambda *a: None, {})
    monkeypatch.setattr(ev_step, "make_xy", lambda *a: pytest.fail("make_xy called again"))
    given = ev_step.evaluate(flights_cfg, trained.model, batch, champion, lambda *a: None, {}, labelled_xy=(lab, X, y))
    assert given.backtest == own.backtest and given.slices == own.slices
    assert given.backtest.rows == len(lab) > 0


def test_cold_start_evaluation_promotes_a_model_that_meets_the_floor(flights_cfg, months, trained):
    ev = ev_step.evaluate(flights_cfg, trained.model, months["2013-03"], None, lambda *a: None, {})
    assert ev.champion_version is None and ev.backtest.champion is None
    decision = ev_step.make_decision(flights_cfg, ev)
    assert decision.promote and any("cold start" in r for r in decision.reasons)


def test_a_champion_that_cannot_be_loaded_is_reported_not_raised(flights_cfg, months):
    from ctpipeline.core.data import labelled, make_xy

    def broken():
        raise OSError("artifact store unreachable")

    X, y = make_xy(labelled(months["2013-03"], flights_cfg), flights_cfg)
    scored = score_model(flights_cfg, "7", broken, X, y)
    assert scored.metric is None and "v7 could not be loaded" in scored.error and "unreachable" in scored.error


def test_monitor_without_champion_fires_cold_start_and_measures_no_drift(flights_cfg, months):
    mon = monitor(
        flights_cfg,
        months["2013-02"],
        reference=[],
        reference_batches=(),
        champion=None,
        has_champion=False,
        champion_reference_metric=None,
        rows_since_training=0,
        last_training=None,
        trigger="replay",
        now=NOW,
    )
    assert mon.drift is None and mon.decision.retrain and "cold_start" in mon.decision.fired
    assert mon.champion_metric is None
