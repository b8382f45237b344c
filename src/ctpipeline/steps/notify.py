"""Announce a cycle's outcome (promoted, rejected by the gate, awaiting approval, failed) to the destinations of
`notifications:`. A notification never changes the cycle: whatever goes wrong (an unset variable, a URL Apprise
cannot use, a destination that is down or slow) is a warning naming the URL's scheme and its variable, never the
URL, which carries the token; each message waits at most the destination's `timeout_seconds` to connect and as
long to read."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ctpipeline.adapters.notify import send
from ctpipeline.config.notifications import NotificationConfig
from ctpipeline.core.cycle import CycleResult
from ctpipeline.core.notify import Notice, approval_notice, cycle_notice, event_of, run_link, url_scheme
from ctpipeline.steps.context import Pipeline

log = logging.getLogger(__name__)

_unset_warned: set[str] = set()  # each unset variable is named once per process, not on every cycle


def deliver(
    destinations: list[NotificationConfig], notice: Notice, environ: Mapping[str, str] | None = None
) -> tuple[int, int, int]:
    """Send `notice` to each destination subscribed to its event: (sent, failed, unset variable)."""
    environ = os.environ if environ is None else environ
    sent = failed = unset = 0
    for n in destinations:
        if notice.event not in n.events:
            continue
        url = environ.get(n.url_env)
        if not url:
            unset += 1
            if n.url_env not in _unset_warned:
                _unset_warned.add(n.url_env)
                log.warning("notifications: $%s is not set: %s messages to it are not sent", n.url_env, notice.event)
            continue
        why = send(url, notice.title, notice.body, notice.level, n.timeout_seconds)
        if why is None:
            sent += 1
            log.info("notification %s sent to %s:// ($%s)", notice.event, url_scheme(url), n.url_env)
        else:
            failed += 1
            log.warning("notification %s to %s:// ($%s) not sent: %s", notice.event, url_scheme(url), n.url_env, why)
    return sent, failed, unset


def tag_value(event: str, sent: int, failed: int, unset: int) -> str:
    """The `ctp.notified` tag: ``promoted: 1 sent, 0 failed`` (and how many variables were unset)."""
    return f"{event}: {sent} sent, {failed} failed" + (f", {unset} unset" if unset else "")


def notify_cycle(p: Pipeline, res: CycleResult, *, failed_with: str | None = None) -> str | None:
    """Send the message of the finished cycle `res` (`failed_with`: the type of the error it crashed with).
    Returns the `ctp.notified` tag value, or None when the outcome is no event or no destination wants it."""
    event = event_of(res, failed=failed_with is not None)
    if event is None or not any(event in n.events for n in p.cfg.notifications):
        return None
    try:
        link = None
        if res.run_id and not p.embedded:  # a tracking server: its UI has a page for the run
            link = run_link(p.tracking_uri, p.tracking.ensure_experiment(), res.run_id)
        counts = deliver(p.cfg.notifications, cycle_notice(p.name, res, event, error=failed_with, link=link))
    except Exception as exc:  # never let a message change the cycle; the text may hold a URI: type only
        log.warning("notification %s not sent: %s", event, type(exc).__name__)
        return f"{event}: not sent ({type(exc).__name__})"
    return tag_value(event, *counts)


def notify_approval(p: Pipeline, version: str, was: str | None, reason: str) -> None:
    """`ctp approve` promoted the challenger that waited for approval."""
    if not any("promoted" in n.events for n in p.cfg.notifications):
        return
    try:
        deliver(p.cfg.notifications, approval_notice(p.name, version, was, reason))
    except Exception as exc:
        log.warning("notification promoted not sent: %s", type(exc).__name__)


NOTIFIED = "ctp_notified"  # set on an exception whose `failed` message was sent (CycleRun's close)


@contextmanager
def failures_announced(p: Pipeline) -> Iterator[None]:
    """The `failed` message for a cycle that fails outside its MLflow run: the training slot not granted, the
    tracking store down while the run opens, an error before the batch is known. A failure inside the run was
    announced by the run's close, which marks the exception, so no failure is announced twice."""
    try:
        yield
    except Exception as exc:
        if not getattr(exc, NOTIFIED, False):
            notify_cycle(p, CycleResult(batch=None, status="failed"), failed_with=type(exc).__name__)
        raise
