"""The promotion decision: one pure function of the evidence and the YAML policy.

`decide(evidence, policy, metric, higher_is_better) -> Decision` touches no registry, file or clock,
so every rule is testable in milliseconds. Each gate is reported with its observed value and its
threshold, and the verdict comes with reasons in plain words.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ctpipeline.config.schema import PromotionConfig

VERDICTS = ("promote", "reject", "register_only", "awaiting-approval")


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    observed: Any
    threshold: Any
    detail: str


@dataclass(frozen=True)
class Evidence:
    """What the evaluation found. Metrics are pooled over the back-test windows."""

    challenger: float
    champion: float | None = None            # None: no champion (or it could not be scored)
    champion_version: str | None = None
    champion_error: str | None = None
    ci_low: float | None = None              # interval on the gain (challenger better = positive)
    ci_high: float | None = None
    confidence: float | None = None
    slices: tuple = ()                        # backtest.SliceScore
    latency_ms_per_1k: float | None = None
    model_mb: float | None = None


@dataclass(frozen=True)
class Decision:
    promote: bool
    verdict: str                              # one of VERDICTS
    reasons: tuple[str, ...] = ()
    gates: tuple[Gate, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        """The one reason that decided it: the first failing gate, else the interval (or margin) that cleared."""
        failed = [g for g in self.gates if not g.passed]
        if failed:
            return failed[0].detail
        for name in ("interval", "margin"):
            for g in self.gates:
                if g.name == name:
                    return g.detail
        return self.reasons[0] if self.reasons else self.verdict

    def to_dict(self) -> dict:
        return asdict(self)

    def explain(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)


def _f(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def _better(a: float, b: float, higher: bool) -> bool:
    return a >= b if higher else a <= b


def decide(ev: Evidence, policy: PromotionConfig, metric: str, higher_is_better: bool) -> Decision:
    gates: list[Gate] = []
    word = "higher" if higher_is_better else "lower"

    defined = not math.isnan(ev.challenger)
    gates.append(Gate("challenger_metric", defined, _f(ev.challenger), "defined",
                      f"challenger {metric} = {_f(ev.challenger)}" if defined else
                      f"challenger {metric} is undefined on the back-test windows"))
    if policy.floor is not None:
        ok = defined and _better(ev.challenger, policy.floor, higher_is_better)
        gates.append(Gate("floor", ok, _f(ev.challenger), policy.floor,
                          f"challenger {metric} {_f(ev.challenger)} {'meets' if ok else 'is below'} the floor "
                          f"{policy.floor} ({word} is better)"))
    if policy.max_latency_ms_per_1k is not None and ev.latency_ms_per_1k is not None:
        ok = ev.latency_ms_per_1k <= policy.max_latency_ms_per_1k
        gates.append(Gate("latency", ok, round(ev.latency_ms_per_1k, 2), policy.max_latency_ms_per_1k,
                          f"prediction takes {ev.latency_ms_per_1k:.1f} ms per 1k rows (limit "
                          f"{policy.max_latency_ms_per_1k})"))
    if policy.max_model_mb is not None and ev.model_mb is not None:
        ok = ev.model_mb <= policy.max_model_mb
        gates.append(Gate("model_size", ok, round(ev.model_mb, 3), policy.max_model_mb,
                          f"model is {ev.model_mb:.2f} MB (limit {policy.max_model_mb} MB)"))

    no_champion = ev.champion is None and ev.champion_error is None
    if ev.champion_error is not None:
        if policy.on_champion_error == "reject":
            gates.append(Gate("champion_scored", False, "error", "scored",
                              f"{ev.champion_error}; policy on_champion_error=reject keeps it"))
            return _verdict(gates, policy, metric, cold=False)
        gates.append(Gate("champion_scored", True, "error", "scored",
                          f"{ev.champion_error}; policy on_champion_error=promote treats it as absent"))
        no_champion = True

    if no_champion:
        return _verdict(gates, policy, metric, cold=True)

    g = (ev.challenger - ev.champion) if higher_is_better else (ev.champion - ev.challenger)
    required = policy.min_margin if policy.margin_type == "absolute" else policy.min_margin * abs(ev.champion)
    ok = defined and not math.isnan(g) and g > 0 and g >= required
    gates.append(Gate("margin", ok, _f(g), round(required, 6),
                      f"challenger {metric} {_f(ev.challenger)} vs champion v{ev.champion_version} {_f(ev.champion)}: "
                      f"gain {g:+.4f} {'clears' if ok else 'does not clear'} the margin {required:.4f} "
                      f"({word} is better)"))
    if policy.noise_aware:
        low, high = ev.ci_low, ev.ci_high
        if low is None or math.isnan(low):
            gates.append(Gate("interval", False, "n/a", round(required, 6),
                              "no bootstrap interval could be computed, so the gain cannot be told from noise"))
        else:
            ok = low > required
            level = f"{(ev.confidence or 0) * 100:.0f}%"
            straddle = "" if ok else (" (the interval straddles the margin: the gain may be noise)"
                                      if high is not None and high > required else " (the challenger is not better)")
            gates.append(Gate("interval", ok, [round(low, 5), round(high, 5)], round(required, 6),
                              f"{level} interval of the gain [{low:+.4f}, {high:+.4f}] "
                              f"{'clears' if ok else 'does not clear'} the margin {required:.4f}{straddle}"))
    judged = [s for s in ev.slices if s.judged]
    failing = [s for s in judged if not s.passed]
    if ev.slices:
        by_col = sorted({s.column for s in ev.slices})
        detail = (f"{len(judged)} slices of {', '.join(by_col)} judged, none loses more than its tolerance"
                  if not failing else "regressing slices: " + ", ".join(
                      f"{s.column}={s.value} loses {-(s.gain or 0):.4f} (> {s.tolerance}, {s.rows} rows)"
                      for s in failing))
        gates.append(Gate("slices", not failing, len(failing), 0, detail))
    return _verdict(gates, policy, metric, cold=False)


def _verdict(gates: list[Gate], policy: PromotionConfig, metric: str, cold: bool) -> Decision:
    failed = [g for g in gates if not g.passed]
    if failed:
        return Decision(False, "reject", tuple(g.detail for g in failed), tuple(gates))
    if cold:
        head = "no champion yet (cold start)"
        if policy.cold_start == "register_only":
            return Decision(False, "register_only", (f"{head}; policy cold_start=register_only",), tuple(gates))
        if policy.cold_start == "manual" or policy.approval == "manual":
            return Decision(False, "awaiting-approval", (f"{head}; waiting for `ctp approve`",), tuple(gates))
        return Decision(True, "promote", (f"{head}: the first model that passes its gates becomes champion",)
                        + tuple(g.detail for g in gates), tuple(gates))
    reasons = tuple(g.detail for g in gates)
    if policy.approval == "manual":
        return Decision(False, "awaiting-approval", ("all gates pass; waiting for `ctp approve`",) + reasons,
                        tuple(gates))
    return Decision(True, "promote", reasons, tuple(gates))
