"""The webhook receiver's admission rule: may this alert start a run now? Pure: no SQLite, no HTTP, no clock.

For a firing alert of a known model, in this order:

1. **dedupe**: the alert's ``(model, dedupe key)`` started a run less than ``dedupe_window_minutes`` ago:
   ``duplicate``. The window starts at that launch; copies that arrive later do not extend it.
2. **cooldown**: the model started any run less than ``cooldown_minutes`` ago: ``cooldown``.
3. otherwise ``launch``.

Launches **in flight** count too: the receiver records a claim (a pending launch with a lease of
:data:`LAUNCH_LEASE_SECONDS`), releases its lock, calls the orchestrator, then records the result. While the claim
is live, another copy of the alert is a ``duplicate`` and another alert of the model (with a cooldown) is a
``cooldown``; a claim whose lease ran out (the receiver died mid-launch) no longer counts.

The caller reads the facts (the last launch for the key and for the model, the claims) and records a launch;
this module only decides. :func:`reuses_launch_id` is the companion rule for retries: a launch id stored before
a launch that failed is reused while it is recent, so a retry cannot create a second flow run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["launch", "duplicate", "cooldown"]

# a launch id stored before a failed launch is reused for at least this long, whatever the dedupe window
MIN_LAUNCH_ID_REUSE_SECONDS = 60.0
# a claimed launch counts as in flight for at most this long (the launcher's own timeouts are far shorter)
LAUNCH_LEASE_SECONDS = 120.0


@dataclass(frozen=True)
class LastLaunch:
    """When a run was last started (Unix seconds), and which run it was."""

    at: float
    flow_run_id: str | None = None


@dataclass(frozen=True)
class InFlight:
    """A claimed launch not finished yet, whose lease runs until ``until`` (Unix seconds)."""

    until: float

    def live(self, now: float) -> bool:
        return now < self.until


@dataclass(frozen=True)
class Admission:
    """The decision for one alert.

    ``verdict`` is ``launch``, ``duplicate`` or ``cooldown``; for the last two, ``flow_run_id`` and
    ``age_seconds`` describe the earlier run that turns the alert away.
    """

    accepted: bool
    reason: str
    verdict: Verdict
    flow_run_id: str | None = None
    age_seconds: float | None = None


def admit(
    *,
    model: str,
    dedupe_key: str,
    now: float,
    last_for_key: LastLaunch | None,
    last_for_model: LastLaunch | None,
    dedupe_window_minutes: float,
    cooldown_minutes: float,
    in_flight_for_key: InFlight | None = None,
    in_flight_for_model: InFlight | None = None,
) -> Admission:
    """Apply the dedupe window, then the per-model cooldown, counting launches in flight.

    ``last_for_key``: the last run started by this ``(model, dedupe_key)``; ``last_for_model``: the last run
    started for ``model`` by any alert; ``None`` when there was none. ``in_flight_for_key`` /
    ``in_flight_for_model``: the newest claim of a launch not finished yet, for the key / for the model.
    """
    key_rule = ("duplicate", "this alert", dedupe_window_minutes, "dedupe window")
    model_rule = ("cooldown", model, cooldown_minutes, "cooldown")
    for last, (verdict, who, minutes, window) in ((last_for_key, key_rule), (last_for_model, model_rule)):
        age = None if last is None else now - last.at
        if age is not None and age < minutes * 60:
            why = f"{verdict}: {who} started run {last.flow_run_id} {age / 60:.1f} min ago ({window} {minutes:g} min)"
            return Admission(False, why, verdict, last.flow_run_id, age)
        if verdict == "duplicate" and in_flight_for_key is not None and in_flight_for_key.live(now):
            return Admission(False, "duplicate: a launch for this alert is in flight", "duplicate")
    if cooldown_minutes > 0 and in_flight_for_model is not None and in_flight_for_model.live(now):
        return Admission(False, f"cooldown: a run of {model} is being started by another alert", "cooldown")
    if last_for_key is not None:
        why = f"dedupe window for {dedupe_key} over"
    elif last_for_model is not None:
        why = f"new alert {dedupe_key}, cooldown of {model} over"
    else:
        why = f"first alert for {model}"
    return Admission(True, why, "launch")


def reuses_launch_id(now: float, pending_since: float | None, dedupe_window_minutes: float) -> bool:
    """Whether a launch id stored at ``pending_since`` (``None``: none stored) is still the one to use."""
    if pending_since is None:
        return False
    return now - pending_since < max(dedupe_window_minutes * 60, MIN_LAUNCH_ID_REUSE_SECONDS)
