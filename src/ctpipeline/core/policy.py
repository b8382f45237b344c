"""The promotion decision: one pure function of the evidence and the YAML policy.

`decide(evidence, policy, metric, higher_is_better) -> Decision` touches no registry, file or clock,
so every rule is testable in milliseconds. The whole rule lives here: the evidence holds only
measurements (the back-test and the per-slice scores), and `decide()` applies every threshold of the
policy to them, the slices' `min_count` and `tolerance` included. Each gate is reported with its
observed value and its threshold, each slice with its own verdict, and the verdict comes with reasons
in plain words. The metric's direction is applied in one place, `evaluation.gain`.
"""

from __future__ import annotations

import math

from ctpipeline.config.schema import PromotionConfig, SliceConfig
from ctpipeline.core.backtest import SliceScore
from ctpipeline.core.evaluation import gain
from ctpipeline.core.verdicts import VERDICTS, Decision, Evidence, Gate, GateValue, SliceVerdict


def _f(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def judge_slices(scores: tuple[SliceScore, ...], configs: list[SliceConfig]) -> tuple[SliceVerdict, ...]:
    """Each slice judged by the SliceConfig of its column (min_count, then tolerance)."""
    by_column: dict[str, SliceConfig] = {}
    for sc in configs:
        if sc.column in by_column:
            raise ValueError(f"promotion.slices lists column {sc.column!r} twice: which tolerance applies is ambiguous")
        by_column[sc.column] = sc
    verdicts = []
    for s in scores:
        sc = by_column.get(s.column)
        if sc is None:
            raise ValueError(
                f"slice score for column {s.column!r} has no entry in promotion.slices "
                f"({', '.join(by_column) or 'none'})"
            )
        judged = s.rows >= sc.min_count and s.gain is not None
        passed = (not judged) or s.gain >= -sc.tolerance
        verdicts.append(SliceVerdict(s, sc.tolerance, sc.min_count, judged, passed))
    return tuple(verdicts)


def decide(ev: Evidence, policy: PromotionConfig, metric: str, higher_is_better: bool) -> Decision:
    """The verdict: the challenger's own gates, then (with a champion) margin, interval and slices."""
    slices = judge_slices(ev.slices, policy.slices)
    gates = _challenger_gates(ev, policy, metric, higher_is_better)
    no_champion = ev.champion is None and ev.champion_error is None
    if ev.champion_error is not None:
        keep = policy.on_champion_error == "reject"
        gates.append(
            Gate(
                "champion_scored",
                not keep,
                "error",
                "scored",
                f"{ev.champion_error}; policy on_champion_error={policy.on_champion_error} "
                f"{'keeps it' if keep else 'treats it as absent'}",
            )
        )
        if keep:
            return _verdict(gates, policy, slices, cold=False)
        no_champion = True
    if no_champion:
        return _verdict(gates, policy, slices, cold=True)
    margin, required = _margin_gate(ev, policy, metric, higher_is_better)
    gates.append(margin)
    if policy.noise_aware:
        gates.append(_interval_gate(ev, required))
    if slices:
        gates.append(_slices_gate(slices))
    return _verdict(gates, policy, slices, cold=False)


def _challenger_gates(ev: Evidence, policy: PromotionConfig, metric: str, higher_is_better: bool) -> list[Gate]:
    """The gates on the challenger alone: its metric is defined, meets the floor, and the latency and size guards."""
    word = "higher" if higher_is_better else "lower"
    defined = not math.isnan(ev.challenger)
    gates = [
        Gate(
            "challenger_metric",
            defined,
            _f(ev.challenger),
            "defined",
            f"challenger {metric} = {_f(ev.challenger)}"
            if defined
            else f"challenger {metric} is undefined on the back-test windows",
        )
    ]
    if policy.floor is not None:
        above = gain(ev.challenger, policy.floor, higher_is_better)
        ok = defined and above is not None and above >= 0
        gates.append(
            Gate(
                "floor",
                ok,
                _f(ev.challenger),
                policy.floor,
                f"challenger {metric} {_f(ev.challenger)} {'meets' if ok else 'is below'} the floor "
                f"{policy.floor} ({word} is better)",
            )
        )
    limits = (
        ("latency", ev.latency_ms_per_1k, policy.max_latency_ms_per_1k, 2, "prediction takes {:.1f} ms per 1k rows"),
        ("model_size", ev.model_mb, policy.max_model_mb, 3, "model is {:.2f} MB"),
    )
    for name, observed, limit, digits, text in limits:  # optional guards: at most `limit`
        if limit is not None and observed is not None:
            unit = " MB" if name == "model_size" else ""
            detail = f"{text.format(observed)} (limit {limit}{unit})"
            gates.append(Gate(name, observed <= limit, round(observed, digits), limit, detail))
    return gates


def _margin_gate(ev: Evidence, policy: PromotionConfig, metric: str, higher_is_better: bool) -> tuple[Gate, float]:
    """The pooled gain against the required margin; also returns the margin (the interval gate needs it)."""
    word = "higher" if higher_is_better else "lower"
    g = gain(ev.challenger, ev.champion, higher_is_better)
    required = policy.min_margin if policy.margin_type == "absolute" else policy.min_margin * abs(ev.champion)
    ok = g is not None and g > 0 and g >= required
    shown = math.nan if g is None else g
    return Gate(
        "margin",
        ok,
        _f(g),
        round(required, 6),
        f"challenger {metric} {_f(ev.challenger)} vs champion v{ev.champion_version} {_f(ev.champion)}: "
        f"gain {shown:+.4f} {'clears' if ok else 'does not clear'} the margin {required:.4f} "
        f"({word} is better)",
    ), required


def _interval_gate(ev: Evidence, required: float) -> Gate:
    """The lower bound of the bootstrap interval of the gain must clear the margin too."""
    low, high = ev.ci_low, ev.ci_high
    if low is None or math.isnan(low):
        return Gate(
            "interval",
            False,
            "n/a",
            round(required, 6),
            "no bootstrap interval could be computed, so the gain cannot be told from noise",
        )
    ok = low > required
    level = f"{(ev.confidence or 0) * 100:.0f}%"
    straddle = (
        ""
        if ok
        else (
            " (the interval straddles the margin: the gain may be noise)"
            if high is not None and high > required
            else " (the challenger is not better)"
        )
    )
    return Gate(
        "interval",
        ok,
        (round(low, 5), round(high, 5)),
        round(required, 6),
        f"{level} interval of the gain [{low:+.4f}, {high:+.4f}] "
        f"{'clears' if ok else 'does not clear'} the margin {required:.4f}{straddle}",
    )


def _slices_gate(slices: tuple[SliceVerdict, ...]) -> Gate:
    """One gate over all slices: it fails when any judged slice loses more than its tolerance."""
    judged = [s for s in slices if s.judged]
    failing = [s for s in judged if not s.passed]
    columns = sorted({s.column for s in slices})
    detail = (
        f"{len(judged)} slices of {', '.join(columns)} judged, none loses more than its tolerance"
        if not failing
        else "regressing slices: "
        + ", ".join(
            f"{s.column}={s.value} loses {-(s.gain or 0):.4f} (> {s.tolerance}, {s.rows} rows)" for s in failing
        )
    )
    return Gate("slices", not failing, len(failing), 0, detail)


def _verdict(gates: list[Gate], policy: PromotionConfig, slices: tuple[SliceVerdict, ...], cold: bool) -> Decision:
    failed = [g for g in gates if not g.passed]
    if failed:
        return Decision(False, "reject", tuple(g.detail for g in failed), tuple(gates), slices)
    if cold:
        head = "no champion yet (cold start)"
        if policy.cold_start == "register_only":
            return Decision(False, "register_only", (f"{head}; policy cold_start=register_only",), tuple(gates), slices)
        if policy.cold_start == "manual" or policy.approval == "manual":
            return Decision(False, "awaiting-approval", (f"{head}; waiting for `ctp approve`",), tuple(gates), slices)
        return Decision(
            True,
            "promote",
            (f"{head}: the first model that passes its gates becomes champion",) + tuple(g.detail for g in gates),
            tuple(gates),
            slices,
        )
    reasons = tuple(g.detail for g in gates)
    if policy.approval == "manual":
        return Decision(
            False, "awaiting-approval", ("all gates pass; waiting for `ctp approve`",) + reasons, tuple(gates), slices
        )
    return Decision(True, "promote", reasons, tuple(gates), slices)


__all__ = ["VERDICTS", "Decision", "Evidence", "Gate", "GateValue", "SliceVerdict", "decide", "judge_slices"]
