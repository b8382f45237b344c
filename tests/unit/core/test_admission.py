"""The receiver's admission rule, pure: dedupe window first, then the per-model cooldown."""

from __future__ import annotations

import pytest

from ctpipeline.core.admission import Admission, InFlight, LastLaunch, admit, reuses_launch_id

T0 = 1_750_000_000.0
MIN = 60.0


def decide(now=T0, key=None, model=None, window=60, cooldown=30, flying_key=None, flying_model=None) -> Admission:
    return admit(
        model="flights-delay",
        dedupe_key="generic:drift-1",
        now=now,
        last_for_key=key,
        last_for_model=model,
        dedupe_window_minutes=window,
        cooldown_minutes=cooldown,
        in_flight_for_key=flying_key,
        in_flight_for_model=flying_model,
    )


def test_first_alert_ever_is_launched():
    a = decide()
    assert a == Admission(True, "first alert for flights-delay", "launch")
    assert a.flow_run_id is None and a.age_seconds is None


def test_new_key_is_launched_when_the_model_cooldown_is_over():
    a = decide(model=LastLaunch(T0 - 31 * MIN, "run-1"))
    assert a.accepted and a.verdict == "launch" and "cooldown of flights-delay over" in a.reason


def test_new_key_within_the_model_cooldown_is_turned_away():
    a = decide(model=LastLaunch(T0 - 10 * MIN, "run-1"))
    assert not a.accepted and a.verdict == "cooldown"
    assert a.flow_run_id == "run-1" and a.age_seconds == 600
    assert a.reason == "cooldown: flights-delay started run run-1 10.0 min ago (cooldown 30 min)"


def test_duplicate_inside_the_window_is_turned_away_and_wins_over_the_cooldown():
    last = LastLaunch(T0 - 45 * MIN, "run-1")
    a = decide(key=last, model=last)
    assert not a.accepted and a.verdict == "duplicate" and a.flow_run_id == "run-1"
    assert a.reason == "duplicate: this alert started run run-1 45.0 min ago (dedupe window 60 min)"
    # inside the cooldown too: still reported as the duplicate it is
    b = decide(now=T0 - 40 * MIN, key=last, model=last)
    assert b.verdict == "duplicate" and b.reason.startswith("duplicate: this alert started run run-1 5.0 min ago")


def test_duplicate_after_the_window_is_launched_again():
    last = LastLaunch(T0 - 62 * MIN, "run-1")
    a = decide(key=last, model=last)
    assert a.accepted and a.verdict == "launch" and a.reason == "dedupe window for generic:drift-1 over"


def test_duplicate_after_the_window_but_inside_the_cooldown_is_cooldown():
    key = LastLaunch(T0 - 62 * MIN, "run-1")
    model = LastLaunch(T0 - 5 * MIN, "run-2")  # another alert of the model started run-2 since
    a = decide(key=key, model=model)
    assert not a.accepted and a.verdict == "cooldown" and a.flow_run_id == "run-2"
    # a window shorter than the cooldown: the same key is past its window but the model still cools down
    a = decide(key=LastLaunch(T0 - 10 * MIN, "run-1"), model=LastLaunch(T0 - 10 * MIN, "run-1"), window=5)
    assert a.verdict == "cooldown" and "(cooldown 30 min)" in a.reason


def test_cooldown_is_per_model_the_caller_passes_only_this_model_s_last_launch():
    # another model's launch is not this model's fact: with none for this model, it launches
    assert decide(model=None).accepted
    assert admit(
        model="churn",
        dedupe_key="generic:x",
        now=T0,
        last_for_key=None,
        last_for_model=LastLaunch(T0 - MIN, "run-9"),
        dedupe_window_minutes=60,
        cooldown_minutes=30,
    ).reason.startswith("cooldown: churn started run run-9 1.0 min ago")


@pytest.mark.parametrize(("age_min", "accepted"), [(59.99, False), (60, True), (60.01, True)])
def test_the_window_boundary_is_exclusive(age_min, accepted):
    last = LastLaunch(T0 - age_min * MIN, "run-1")
    assert decide(key=last, model=last, cooldown=0).accepted is accepted


def test_zero_window_and_zero_cooldown_admit_everything():
    last = LastLaunch(T0, "run-1")
    assert decide(key=last, model=last, window=0, cooldown=0).accepted


def test_a_launch_in_the_future_clock_went_back_still_counts():
    last = LastLaunch(T0 + 5 * MIN, "run-1")
    assert decide(key=last, model=last).verdict == "duplicate"


def test_admission_is_frozen():
    with pytest.raises(AttributeError):
        decide().accepted = False  # type: ignore[misc]


def test_a_pending_launch_id_is_reused_while_recent():
    assert not reuses_launch_id(T0, None, 60)
    assert reuses_launch_id(T0, T0 - 59 * MIN, 60)
    assert not reuses_launch_id(T0, T0 - 60 * MIN, 60)
    # at least a minute, even with a shorter (or no) dedupe window
    assert reuses_launch_id(T0, T0 - 59, 0) and not reuses_launch_id(T0, T0 - 60, 0)


# --------------------------------------------------------------------------- launches in flight


def test_a_copy_of_an_alert_whose_launch_is_in_flight_is_a_duplicate_whatever_the_window():
    live = InFlight(until=T0 + 100)
    for window in (60, 0):
        a = decide(flying_key=live, flying_model=live, window=window, cooldown=0)
        assert a == Admission(False, "duplicate: a launch for this alert is in flight", "duplicate")
    # a finished launch inside the window is reported with its run, before any claim
    last = LastLaunch(T0 - MIN, "run-1")
    assert decide(key=last, flying_key=live).flow_run_id == "run-1"


def test_another_alert_of_a_model_being_launched_is_a_cooldown_only_with_a_cooldown():
    live = InFlight(until=T0 + 100)
    a = decide(flying_model=live)
    assert not a.accepted and a.verdict == "cooldown" and a.flow_run_id is None
    assert a.reason == "cooldown: a run of flights-delay is being started by another alert"
    assert decide(flying_model=live, cooldown=0).accepted


def test_a_claim_whose_lease_ran_out_counts_no_more():
    dead = InFlight(until=T0)
    assert not dead.live(T0) and InFlight(until=T0 + 0.1).live(T0)
    assert decide(flying_key=dead, flying_model=dead).accepted
