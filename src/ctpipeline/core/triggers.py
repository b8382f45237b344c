"""When to retrain: one pure function over the signals a monitoring step collects.

``should_retrain(signals, cfg, last_training_at, now) -> TriggerDecision`` imports nothing from Prefect,
MLflow or Evidently: the flow gathers the :class:`Signals` (drift summary, the champion's metric on the
new labelled batch, rows since the last training, how the run was started) and this module decides,
with the observed values and thresholds in plain words.

Rules (each one can fire on its own; the decision lists every one that fired):

* ``cold_start``: no champion yet. Always fires, and the cooldown does not apply.
* ``manual``: a person asked (``ctp run``). Bypasses the cooldown.
* ``webhook``: an alert came in. Subject to the cooldown (alert storms must not become training storms)
  unless the signal carries ``force=True``.
* A scheduled run (the deployment's cron, ``TriggerConfig.schedule``, ``Signals.scheduled``) is a moment to
  *check* the rules, not a rule itself: it fires nothing on its own, so under ``ctp serve`` the drift,
  feature, performance, volume and every_batch rules (and cold start) decide, with the cooldown, exactly as
  in the replay. The decision's first reason says the run was scheduled (the MLflow run's ``ctp.trigger``
  tag records it too), so a scheduled run that trained nothing still says why.
* ``every_batch``: retrain on every accepted batch (the replay demo's default).
* ``drift_share``: the share of drifted feature columns is >= ``drift_share``.
* ``drifted_feature:<name>``: one of ``drifted_features`` drifted.
* ``performance_drop``: the champion's metric on the new labelled batch is worse than its reference
  metric (the one it was promoted with) by >= ``performance_drop``, in the metric's own direction.
* ``min_new_rows``: at least this many rows arrived since the last training.

Cooldown: when the last training ended less than ``cooldown_minutes`` before ``now``, a decision that
fired only on other rules is kept but ``retrain`` is False and ``suppressed_by_cooldown`` True.
Naive datetimes are taken as UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ctpipeline.core.cron import validate_cron

__all__ = ["Signals", "TriggerConfig", "TriggerDecision", "should_retrain", "validate_cron"]

_EPS = 1e-9  # float slack for threshold comparisons (0.72 - 0.70 must count as a drop of 0.02)


class TriggerConfig(BaseModel):
    """When a new batch leads to training a challenger."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    drift_share: float | None = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Retrain when the share of drifted feature columns is >= this. null: off.",
    )
    drifted_features: list[str] = Field(
        default_factory=list, description="Retrain when any of these columns drifts (whatever the share)."
    )
    performance_drop: float | None = Field(
        default=0.02,
        ge=0,
        description="Retrain when the champion's metric on the new labelled batch is worse than its reference "
        "metric by at least this much (metric units, in the metric's direction). null: off.",
    )
    min_new_rows: int | None = Field(
        default=None, ge=1, description="Retrain when at least this many rows arrived since the last training."
    )
    every_batch: bool = Field(default=False, description="Retrain on every accepted batch.")
    cooldown_minutes: float = Field(
        default=0,
        ge=0,
        description="No retraining within this many minutes after the last one, except manual runs, "
        "forced webhooks and cold start.",
    )
    schedule: str | None = Field(
        default=None,
        description="Cron string (5 fields, e.g. '0 3 * * 1') for the scheduled deployment. null: no schedule.",
    )

    @field_validator("drifted_features")
    @classmethod
    def _features(cls, v: list[str]) -> list[str]:
        from ctpipeline.core.validators import no_duplicates

        return no_duplicates(v, "features")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        return None if v is None else validate_cron(v)


@dataclass(frozen=True)
class Signals:
    """What the monitoring step observed for one batch."""

    drifted_share: float | None  # None: drift not measured (e.g. no reference yet)
    drifted_columns: tuple[str, ...]
    champion_metric: float | None  # champion on the new labelled batch; None: no labels / no champion
    champion_reference_metric: float | None  # the champion's metric when it was promoted
    higher_is_better: bool
    rows_since_training: int
    manual: bool = False
    webhook: bool = False
    scheduled: bool = False  # started by the cron: the rules are checked, nothing fires for it alone
    no_champion: bool = False
    force: bool = False  # a webhook asking to bypass the cooldown (manual runs always do)


@dataclass(frozen=True)
class TriggerDecision:
    retrain: bool
    fired: tuple[str, ...]  # e.g. ("drift_share", "drifted_feature:temp", "cold_start")
    reasons: tuple[str, ...]  # how a scheduled run started (first), why it fired; else why each check did not
    suppressed_by_cooldown: bool = False

    def to_dict(self) -> dict:
        return {
            "retrain": self.retrain,
            "fired": list(self.fired),
            "reasons": list(self.reasons),
            "suppressed_by_cooldown": self.suppressed_by_cooldown,
        }

    def summary(self) -> str:
        head = (
            "retrain"
            if self.retrain
            else ("no retraining (cooldown)" if self.suppressed_by_cooldown else "no retraining")
        )
        return f"{head}: " + "; ".join(self.reasons)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _minutes(td: timedelta) -> str:
    m = td.total_seconds() / 60
    return f"{m:.0f} min" if abs(m) >= 10 else f"{m:.1f} min"


class _Verdicts:
    """Collects, rule by rule, what fired (with why) and what did not (with why not)."""

    def __init__(self) -> None:
        self.fired: list[str] = []
        self.why: list[str] = []
        self.why_not: list[str] = []
        self.notes: list[str] = []  # how the run started, when that fires nothing: first in either list

    def fire(self, name: str, reason: str) -> None:
        self.fired.append(name)
        self.why.append(reason)

    def hold(self, reason: str) -> None:
        self.why_not.append(reason)

    def note(self, text: str) -> None:
        self.notes.append(text)


def _how_started(v: _Verdicts, s: Signals, cfg: TriggerConfig) -> None:
    if s.no_champion:
        v.fire("cold_start", "no champion yet: the first model must be trained")
    if s.manual:
        v.fire("manual", "manual request")
    if s.webhook:
        v.fire("webhook", "webhook alert" + (" (forced)" if s.force else ""))
    if s.scheduled:
        v.note("scheduled run" + (f" (cron '{cfg.schedule}')" if cfg.schedule else "") + ": the triggers decide")
    if cfg.every_batch:
        v.fire("every_batch", "every_batch is on: retrain on every batch")
    else:
        v.hold("every_batch is off")


def _drift(v: _Verdicts, s: Signals, cfg: TriggerConfig) -> None:
    share = s.drifted_share
    if cfg.drift_share is None:
        v.hold("drift_share check is off")
    elif share is None:
        v.hold("drifted share not measured")
    elif share >= cfg.drift_share - _EPS:
        v.fire("drift_share", f"drifted share {share:.2f} >= {cfg.drift_share:.2f}")
    else:
        v.hold(f"drifted share {share:.2f} < {cfg.drift_share:.2f}")
    if not cfg.drifted_features:
        return
    hits = [f for f in cfg.drifted_features if f in set(s.drifted_columns)]
    for f in hits:
        v.fire(f"drifted_feature:{f}", f"watched feature {f!r} drifted")
    if not hits:
        measured = share is not None or s.drifted_columns
        v.hold(
            f"none of the watched features {cfg.drifted_features} drifted"
            if measured
            else f"watched features {cfg.drifted_features}: drift not measured"
        )


def _performance(v: _Verdicts, s: Signals, cfg: TriggerConfig) -> None:
    """The champion's metric on the new labelled batch against its reference, in the metric's direction."""
    metric, ref = s.champion_metric, s.champion_reference_metric
    if cfg.performance_drop is None:
        v.hold("performance_drop check is off")
        return
    if metric is None or ref is None or not (math.isfinite(metric) and math.isfinite(ref)):
        missing = (
            "no champion metric on this batch"
            if metric is None or not math.isfinite(metric)
            else "no reference metric for the champion"
        )
        v.hold(f"performance drop not measured ({missing})")
        return
    drop = (ref - metric) if s.higher_is_better else (metric - ref)
    direction = "higher is better" if s.higher_is_better else "lower is better"
    observed = f"champion metric {metric:.4f} vs reference {ref:.4f} ({direction})"
    if drop >= cfg.performance_drop - _EPS:
        v.fire("performance_drop", f"{observed}: worse by {drop:.4f} >= {cfg.performance_drop:.4f}")
    elif drop > 0:
        v.hold(f"{observed}: worse by {drop:.4f} < {cfg.performance_drop:.4f}")
    else:
        v.hold(f"{observed}: not worse")


def _volume(v: _Verdicts, s: Signals, cfg: TriggerConfig) -> None:
    rows = s.rows_since_training
    if cfg.min_new_rows is None:
        v.hold("min_new_rows check is off")
    elif rows >= cfg.min_new_rows:
        v.fire("min_new_rows", f"{rows:,} new rows since the last training >= {cfg.min_new_rows:,}")
    else:
        v.hold(f"{rows:,} new rows since the last training < {cfg.min_new_rows:,}")


def _cooldown(s: Signals, cfg: TriggerConfig, last_training_at: datetime | None, now: datetime) -> str | None:
    """Why the cooldown holds a retraining back, or None."""
    bypass = s.no_champion or s.manual or (s.webhook and s.force)
    if cfg.cooldown_minutes <= 0 or last_training_at is None or bypass:
        return None
    elapsed = _utc(now) - _utc(last_training_at)
    window = timedelta(minutes=cfg.cooldown_minutes)
    if elapsed >= window:
        return None
    until = _utc(last_training_at) + window
    return (
        f"suppressed by the cooldown: last training {_minutes(elapsed)} ago < {cfg.cooldown_minutes:g} min "
        f"(next possible at {until.isoformat(timespec='minutes')})"
    )


def should_retrain(
    signals: Signals, cfg: TriggerConfig, last_training_at: datetime | None, now: datetime
) -> TriggerDecision:
    """Decide whether this batch leads to training a challenger (pure; milliseconds)."""
    v = _Verdicts()
    for rule in (_how_started, _drift, _performance, _volume):
        rule(v, signals, cfg)
    if not v.fired:
        return TriggerDecision(False, (), (*v.notes, *v.why_not))
    held = _cooldown(signals, cfg, last_training_at, now)
    if held:
        return TriggerDecision(False, tuple(v.fired), (*v.notes, *v.why, held), suppressed_by_cooldown=True)
    return TriggerDecision(True, tuple(v.fired), (*v.notes, *v.why))
