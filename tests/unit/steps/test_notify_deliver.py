"""Sending a notice without a network: a destination whose variable is unset is skipped with one warning per
variable per process, naming it; a destination that does not take the event is not tried."""

import logging

from ctpipeline.config.notifications import NotificationConfig
from ctpipeline.core.notify import Notice
from ctpipeline.steps.notify import deliver, tag_value
from notify_support import LogLines

NOTICE = Notice("rejected", "t", "b", "warning")


def test_unset_variable_is_warned_once_and_counted():
    dests = [NotificationConfig(url_env="CTP_TEST_DELIVER_UNSET")]
    with LogLines("ctpipeline.steps.notify") as lines:
        assert deliver(dests, NOTICE, environ={}) == (0, 0, 1)
        assert deliver(dests, NOTICE, environ={"CTP_TEST_DELIVER_UNSET": ""}) == (0, 0, 1)
    warned = [r.getMessage() for r in lines.records if r.levelno == logging.WARNING]
    assert warned == ["notifications: $CTP_TEST_DELIVER_UNSET is not set: rejected messages to it are not sent"]


def test_a_destination_without_the_event_is_not_tried():
    dests = [NotificationConfig(url_env="X", events=["promoted"])]
    assert deliver(dests, NOTICE, environ={"X": "json://127.0.0.1:9/never-called"}) == (0, 0, 0)


def test_tag_value():
    assert tag_value("promoted", 1, 0, 0) == "promoted: 1 sent, 0 failed"
    assert tag_value("failed", 0, 1, 2) == "failed: 0 sent, 1 failed, 2 unset"
