"""The retraining-trigger policy: a pure function, every rule tested in milliseconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from ctpipeline.core.triggers import Signals, TriggerConfig, should_retrain, validate_cron

NOW = datetime(2013, 10, 1, 6, 0, tzinfo=UTC)

# every rule off: a test turns on the one it checks
QUIET = dict(drift_share=None, performance_drop=None, min_new_rows=None, every_batch=False)


def sig(**kw) -> Signals:
    base = dict(
        drifted_share=0.0,
        drifted_columns=(),
        champion_metric=0.72,
        champion_reference_metric=0.72,
        higher_is_better=True,
        rows_since_training=0,
    )
    return Signals(**{**base, **kw})


def cfg(**kw) -> TriggerConfig:
    return TriggerConfig(**{**QUIET, **kw})


def decide(signals=None, config=None, last=None, now=NOW):
    return should_retrain(signals or sig(), config or cfg(), last, now)


# --------------------------------------------------------------------------- each rule alone


def test_drift_share_fires_alone_with_values_in_the_reason():
    d = decide(sig(drifted_share=0.41, drifted_columns=("temp", "dewp")), cfg(drift_share=0.3))
    assert d.retrain and d.fired == ("drift_share",)
    assert d.reasons == ("drifted share 0.41 >= 0.30",)
    assert not d.suppressed_by_cooldown


def test_drift_share_at_the_threshold_fires():
    assert decide(sig(drifted_share=0.3), cfg(drift_share=0.3)).fired == ("drift_share",)


def test_watched_feature_fires_alone_and_names_the_feature():
    d = decide(sig(drifted_share=0.1, drifted_columns=("temp", "visib")), cfg(drifted_features=["precip", "temp"]))
    assert d.retrain and d.fired == ("drifted_feature:temp",)
    assert d.reasons == ("watched feature 'temp' drifted",)


def test_performance_drop_fires_for_higher_is_better_metric():
    d = decide(sig(champion_metric=0.69, champion_reference_metric=0.72), cfg(performance_drop=0.02))
    assert d.retrain and d.fired == ("performance_drop",)
    (reason,) = d.reasons
    assert "0.6900" in reason and "0.7200" in reason and "worse by 0.0300 >= 0.0200" in reason


def test_performance_drop_exactly_at_threshold_fires_despite_float_rounding():
    # 0.72 - 0.70 == 0.019999999999999907 in floating point
    d = decide(sig(champion_metric=0.70, champion_reference_metric=0.72), cfg(performance_drop=0.02))
    assert d.fired == ("performance_drop",)


def test_performance_drop_is_direction_aware_for_lower_is_better_metric():
    config = cfg(performance_drop=0.02)
    # log loss went up from 0.40 to 0.45: worse
    worse = decide(sig(champion_metric=0.45, champion_reference_metric=0.40, higher_is_better=False), config)
    assert worse.retrain and worse.fired == ("performance_drop",)
    assert "lower is better" in worse.reasons[0] and "worse by 0.0500" in worse.reasons[0]
    # log loss went down from 0.40 to 0.35: better, even though the number dropped by 0.05
    better = decide(sig(champion_metric=0.35, champion_reference_metric=0.40, higher_is_better=False), config)
    assert not better.retrain and better.fired == ()
    assert any("not worse" in r for r in better.reasons)


def test_min_new_rows_fires_alone():
    d = decide(sig(rows_since_training=1500), cfg(min_new_rows=1000))
    assert d.retrain and d.fired == ("min_new_rows",)
    assert d.reasons == ("1,500 new rows since the last training >= 1,000",)


def test_every_batch_fires_alone():
    d = decide(sig(), cfg(every_batch=True))
    assert d.retrain and d.fired == ("every_batch",)


@pytest.mark.parametrize("flag, name", [("manual", "manual"), ("webhook", "webhook"), ("no_champion", "cold_start")])
def test_how_the_run_started_fires_alone(flag, name):
    d = decide(sig(**{flag: True}), cfg())
    assert d.retrain and d.fired == (name,)
    assert len(d.reasons) == 1 and d.reasons[0]


def test_cold_start_fires_whatever_the_config():
    # no champion: no metric either; every rule off, a long cooldown just started
    d = decide(
        sig(no_champion=True, champion_metric=None, champion_reference_metric=None, drifted_share=None),
        cfg(cooldown_minutes=10_000),
        last=NOW - timedelta(minutes=1),
    )
    assert d.retrain and d.fired == ("cold_start",) and not d.suppressed_by_cooldown
    assert "no champion" in d.reasons[0]


# --------------------------------------------------------------------------- scheduled runs check the rules


def test_a_scheduled_run_alone_does_not_retrain_and_says_it_was_scheduled():
    d = decide(sig(scheduled=True), cfg(schedule="0 3 * * 1"))
    assert not d.retrain and d.fired == () and not d.suppressed_by_cooldown
    assert d.reasons[0] == "scheduled run (cron '0 3 * * 1'): the triggers decide"
    assert "every_batch is off" in d.reasons
    assert d.summary().startswith("no retraining: scheduled run (cron '0 3 * * 1')")


def test_a_scheduled_run_without_cron_in_the_config_still_says_so():
    assert decide(sig(scheduled=True)).reasons[0] == "scheduled run: the triggers decide"


def test_a_scheduled_quiet_batch_under_the_shipped_defaults_does_not_retrain():
    quiet = sig(scheduled=True, drifted_share=0.2, champion_metric=0.715, champion_reference_metric=0.72)
    d = decide(quiet, TriggerConfig(schedule="0 6 1 * *"))
    assert not d.retrain and d.fired == ()
    assert "drifted share 0.20 < 0.30" in d.reasons and "worse by 0.0050 < 0.0200" in " | ".join(d.reasons)


@pytest.mark.parametrize(
    "signals, config, fired",
    [
        (dict(drifted_share=0.41), dict(drift_share=0.3), ("drift_share",)),
        (dict(drifted_columns=("temp",)), dict(drifted_features=["temp"]), ("drifted_feature:temp",)),
        (dict(champion_metric=0.69), dict(performance_drop=0.02), ("performance_drop",)),
        (dict(rows_since_training=1500), dict(min_new_rows=1000), ("min_new_rows",)),
        (dict(), dict(every_batch=True), ("every_batch",)),
        (dict(no_champion=True, champion_metric=None), dict(), ("cold_start",)),
    ],
)
def test_a_scheduled_run_retrains_when_a_real_rule_fires(signals, config, fired):
    d = decide(sig(scheduled=True, **signals), cfg(schedule="0 3 * * 1", **config))
    assert d.retrain and d.fired == fired
    assert d.reasons[0].startswith("scheduled run (cron '0 3 * * 1')") and len(d.reasons) == 2


def test_a_scheduled_run_obeys_the_cooldown_like_the_replay():
    config = cfg(drift_share=0.3, cooldown_minutes=60)
    last = NOW - timedelta(minutes=20)
    scheduled = decide(sig(scheduled=True, drifted_share=0.5), config, last=last)
    replay = decide(sig(drifted_share=0.5), config, last=last)
    assert not scheduled.retrain and scheduled.suppressed_by_cooldown and scheduled.fired == ("drift_share",)
    assert scheduled.reasons[1:] == replay.reasons and (scheduled.retrain, scheduled.fired) == (False, replay.fired)
    after = decide(sig(scheduled=True, drifted_share=0.5), config, last=last, now=last + timedelta(minutes=60))
    assert after.retrain and after.fired == ("drift_share",)


def test_cold_start_on_a_scheduled_run_ignores_the_cooldown():
    d = decide(sig(scheduled=True, no_champion=True), cfg(cooldown_minutes=60), last=NOW - timedelta(minutes=1))
    assert d.retrain and d.fired == ("cold_start",) and not d.suppressed_by_cooldown


def test_several_rules_fire_together_in_a_stable_order():
    d = decide(
        sig(drifted_share=0.5, drifted_columns=("temp",), champion_metric=0.6, rows_since_training=10),
        TriggerConfig(drift_share=0.3, drifted_features=["temp"], performance_drop=0.02, min_new_rows=5),
    )
    assert d.fired == ("drift_share", "drifted_feature:temp", "performance_drop", "min_new_rows")
    assert len(d.reasons) == 4


# --------------------------------------------------------------------------- nothing fires


def test_nothing_fires_and_every_check_says_why():
    d = decide(
        sig(
            drifted_share=0.1,
            drifted_columns=("visib",),
            champion_metric=0.715,
            champion_reference_metric=0.72,
            rows_since_training=200,
        ),
        TriggerConfig(drift_share=0.3, drifted_features=["temp"], performance_drop=0.02, min_new_rows=1000),
    )
    assert not d.retrain and d.fired == () and not d.suppressed_by_cooldown
    text = " | ".join(d.reasons)
    assert "drifted share 0.10 < 0.30" in text
    assert "none of the watched features ['temp'] drifted" in text
    assert "worse by 0.0050 < 0.0200" in text
    assert "200 new rows since the last training < 1,000" in text
    assert "every_batch is off" in text


def test_nothing_measured_says_so():
    d = decide(sig(drifted_share=None, champion_metric=None), TriggerConfig())
    assert not d.retrain
    assert "drifted share not measured" in d.reasons
    assert any("performance drop not measured" in r for r in d.reasons)


def test_default_config_quiet_batch_does_not_retrain():
    d = decide(sig(drifted_share=0.2, champion_metric=0.715, champion_reference_metric=0.72), TriggerConfig())
    assert not d.retrain and d.fired == ()


# --------------------------------------------------------------------------- cooldown


def test_cooldown_suppresses_then_allows_after_the_window():
    config = cfg(drift_share=0.3, cooldown_minutes=60)
    drifted = sig(drifted_share=0.5)
    last = NOW - timedelta(minutes=20)

    during = decide(drifted, config, last=last)
    assert not during.retrain and during.suppressed_by_cooldown
    assert during.fired == ("drift_share",)  # what fired is still reported
    assert any("cooldown" in r and "20 min ago < 60 min" in r for r in during.reasons)

    after = decide(drifted, config, last=last, now=last + timedelta(minutes=60))
    assert after.retrain and not after.suppressed_by_cooldown and after.fired == ("drift_share",)


def test_cooldown_off_or_no_previous_training_never_suppresses():
    drifted = sig(drifted_share=0.5)
    assert decide(drifted, cfg(drift_share=0.3, cooldown_minutes=0), last=NOW).retrain
    assert decide(drifted, cfg(drift_share=0.3, cooldown_minutes=60), last=None).retrain


def test_manual_bypasses_cooldown():
    d = decide(sig(manual=True), cfg(cooldown_minutes=60), last=NOW - timedelta(minutes=1))
    assert d.retrain and d.fired == ("manual",) and not d.suppressed_by_cooldown


def test_webhook_obeys_cooldown_unless_forced():
    last = NOW - timedelta(minutes=5)
    config = cfg(cooldown_minutes=30)
    storm = decide(sig(webhook=True), config, last=last)
    assert not storm.retrain and storm.suppressed_by_cooldown and storm.fired == ("webhook",)
    forced = decide(sig(webhook=True, force=True), config, last=last)
    assert forced.retrain and not forced.suppressed_by_cooldown


def test_naive_datetimes_are_taken_as_utc():
    last = datetime(2013, 10, 1, 5, 30)  # naive, 30 min before NOW
    d = decide(sig(drifted_share=0.5), cfg(drift_share=0.3, cooldown_minutes=60), last=last)
    assert d.suppressed_by_cooldown


def test_to_dict_is_json_serialisable():
    d = decide(sig(drifted_share=0.5), cfg(drift_share=0.3, cooldown_minutes=60), last=NOW)
    data = json.loads(json.dumps(d.to_dict()))
    assert data == {
        "retrain": False,
        "fired": ["drift_share"],
        "reasons": list(d.reasons),
        "suppressed_by_cooldown": True,
    }
    assert d.summary().startswith("no retraining (cooldown): drifted share 0.50 >= 0.30")


# --------------------------------------------------------------------------- config validation


def test_defaults():
    c = TriggerConfig()
    assert (c.drift_share, c.performance_drop, c.min_new_rows, c.every_batch, c.cooldown_minutes, c.schedule) == (
        0.3,
        0.02,
        None,
        False,
        0,
        None,
    )


def test_config_rejects_unknown_keys():
    with pytest.raises(ValidationError, match="drift_shar"):
        TriggerConfig(drift_shar=0.3)


def test_config_is_frozen():
    with pytest.raises(ValidationError):
        TriggerConfig().drift_share = 0.5


@pytest.mark.parametrize("bad", ["61 * * * *", "* * * *", "0 0 30 2 *", "every day", "H * * * *", "0 0 1 1 * 2020"])
def test_config_rejects_bad_cron(bad):
    with pytest.raises(ValidationError, match="invalid cron string"):
        TriggerConfig(schedule=bad)


@pytest.mark.parametrize("good", ["0 3 * * 1", "*/15 * * * *", "@daily", "0 6 1 * *", "0 0 * * MON-FRI"])
def test_config_accepts_cron(good):
    assert TriggerConfig(schedule=good).schedule == good


def test_validate_cron_normalises_spaces():
    assert validate_cron("  0   3 * *  1 ") == "0 3 * * 1"


@pytest.mark.parametrize(
    "kw",
    [
        {"drift_share": 0},
        {"drift_share": 1.5},
        {"performance_drop": -0.1},
        {"min_new_rows": 0},
        {"cooldown_minutes": -1},
        {"drifted_features": ["a", "a"]},
    ],
)
def test_config_rejects_out_of_range_values(kw):
    with pytest.raises(ValidationError):
        TriggerConfig(**kw)
