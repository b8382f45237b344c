"""A scheduled run (``ctp serve``, trigger="schedule") goes through the monitor step like the replay: the
triggers decide, the schedule alone trains nothing (issue #8)."""

from datetime import UTC, datetime

import pytest

from ctpipeline.core.data import split_batches
from ctpipeline.core.results import Scored
from ctpipeline.steps.monitor import monitor

from conftest import make_flights_like

NOW = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def month(flights_cfg):
    return split_batches(make_flights_like(3000, seed=11, months=2), flights_cfg.data)["2013-02"]


def _monitor(cfg, df, trigger: str, champion_metric: float):
    # the batch against itself: nothing drifts; the shipped YAML's thresholds (drift 0.3, drop 0.02, 100k rows)
    return monitor(
        cfg,
        df,
        reference=[df],
        reference_batches=("2013-02",),
        champion=Scored("3", metric=champion_metric),
        has_champion=True,
        champion_reference_metric=0.70,
        rows_since_training=0,
        last_training=None,
        trigger=trigger,
        now=NOW,
    )


def test_a_quiet_scheduled_batch_trains_nothing_and_says_it_was_scheduled(flights_cfg, month):
    mon = _monitor(flights_cfg, month, "schedule", champion_metric=0.70)
    assert mon.drift is not None and mon.drift.drifted_share == 0
    assert not mon.decision.retrain and mon.decision.fired == ()
    assert mon.decision.reasons[0] == "scheduled run (cron '0 6 1 * *'): the triggers decide"


def test_a_scheduled_batch_whose_champion_dropped_retrains_like_the_replay(flights_cfg, month):
    scheduled = _monitor(flights_cfg, month, "schedule", champion_metric=0.65)
    replay = _monitor(flights_cfg, month, "replay", champion_metric=0.65)
    assert scheduled.decision.retrain and scheduled.decision.fired == ("performance_drop",) == replay.decision.fired
    assert scheduled.decision.reasons[1:] == replay.decision.reasons
