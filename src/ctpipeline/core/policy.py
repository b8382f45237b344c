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
from dataclasses import asdict, dataclass, field

from ctpipeline.config.schema import PromotionConfig, SliceConfig
from ctpipeline.core.backtest import SliceScore
from ctpipeline.core.evaluation import gain

VERDICTS = ("promote", "reject", "register_only", "awaiting-approval")

GateValue = str | int | float | tuple[float, float]


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    observed: GateValue                       # the interval gate observes (low, high)
    threshold: GateValue
    detail: str

    def to_dict(self) -> dict[str, str | bool | int | float | list[float]]:
        """For the decision record: an interval is written as a list, [low, high], as it always was."""
        return {**asdict(self), "observed": list(self.observed) if isinstance(self.observed, tuple) else self.observed}


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
    slices: tuple[SliceScore, ...] = ()      # measurements only; decide() judges them
    latency_ms_per_1k: float | None = None
    model_mb: float | None = None


@dataclass(frozen=True)
class SliceVerdict:
    """One slice as judged by the policy: its measurement, the rule of its column, and the outcome.

    A slice is judged when it has at least `min_count` rows and a gain (both models scored); a judged
    slice passes when it loses at most `tolerance`. A slice that is not judged is reported and passes.
    """

    score: SliceScore
    tolerance: float
    min_count: int
    judged: bool
    passed: bool

    @property
    def column(self) -> str:
        return self.score.column

    @property
    def value(self) -> str:
        return self.score.value

    @property
    def rows(self) -> int:
        return self.score.rows

    @property
    def gain(self) -> float | None:
        return self.score.gain

    def to_dict(self) -> dict[str, str | int | float | bool | None]:
        """Flat: the measurement's fields, then judged, passed, tolerance and min_count."""
        return {**self.score.to_dict(), "judged": self.judged, "passed": self.passed, "tolerance": self.tolerance,
                "min_count": self.min_count}


@dataclass(frozen=True)
class Decision:
    promote: bool
    verdict: str                              # one of VERDICTS
    reasons: tuple[str, ...] = ()
    gates: tuple[Gate, ...] = field(default_factory=tuple)
    slices: tuple[SliceVerdict, ...] = ()     # every slice of the evidence, judged or not, on every path

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

    def to_dict(self) -> dict[str, object]:
        """The decision for a record: gates and slices as flat dicts (Gate.to_dict, SliceVerdict.to_dict)."""
        return {"promote": self.promote, "verdict": self.verdict, "summary": self.summary,
                "reasons": list(self.reasons), "gates": [g.to_dict() for g in self.gates],
                "slices": [s.to_dict() for s in self.slices]}

    def explain(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)


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
            raise ValueError(f"slice score for column {s.column!r} has no entry in promotion.slices "
                             f"({', '.join(by_column) or 'none'})")
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
        gates.append(Gate("champion_scored", not keep, "error", "scored",
                          f"{ev.champion_error}; policy on_champion_error={policy.on_champion_error} "
                          f"{'keeps it' if keep else 'treats it as absent'}"))
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
    gates = [Gate("challenger_metric", defined, _f(ev.challenger), "defined",
                  f"challenger {metric} = {_f(ev.challenger)}" if defined else
                  f"challenger {metric} is undefined on the back-test windows")]
    if policy.floor is not None:
        above = gain(ev.challenger, policy.floor, higher_is_better)
        ok = defined and above is not None and above >= 0
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
    return gates


def _margin_gate(ev: Evidence, policy: PromotionConfig, metric: str, higher_is_better: bool) -> tuple[Gate, float]:
    """The pooled gain against the required margin; also returns the margin (the interval gate needs it)."""
    word = "higher" if higher_is_better else "lower"
    g = gain(ev.challenger, ev.champion, higher_is_better)
    required = policy.min_margin if policy.margin_type == "absolute" else policy.min_margin * abs(ev.champion)
    ok = g is not None and g > 0 and g >= required
    shown = math.nan if g is None else g
    return Gate("margin", ok, _f(g), round(required, 6),
                f"challenger {metric} {_f(ev.challenger)} vs champion v{ev.champion_version} {_f(ev.champion)}: "
                f"gain {shown:+.4f} {'clears' if ok else 'does not clear'} the margin {required:.4f} "
                f"({word} is better)"), required


def _interval_gate(ev: Evidence, required: float) -> Gate:
    """The lower bound of the bootstrap interval of the gain must clear the margin too."""
    low, high = ev.ci_low, ev.ci_high
    if low is None or math.isnan(low):
        return Gate("interval", False, "n/a", round(required, 6),
                    "no bootstrap interval could be computed, so the gain cannot be told from noise")
    ok = low > required
    level = f"{(ev.confidence or 0) * 100:.0f}%"
    straddle = "" if ok else (" (the interval straddles the margin: the gain may be noise)"
                              if high is not None and high > required else " (the challenger is not better)")
    return Gate("interval", ok, (round(low, 5), round(high, 5)), round(required, 6),
                f"{level} interval of the gain [{low:+.4f}, {high:+.4f}] "
                f"{'clears' if ok else 'does not clear'} the margin {required:.4f}{straddle}")


def _slices_gate(slices: tuple[SliceVerdict, ...]) -> Gate:
    """One gate over all slices: it fails when any judged slice loses more than its tolerance."""
    judged = [s for s in slices if s.judged]
    failing = [s for s in judged if not s.passed]
    columns = sorted({s.column for s in slices})
    detail = (f"{len(judged)} slices of {', '.join(columns)} judged, none loses more than its tolerance"
              if not failing else "regressing slices: " + ", ".join(
                  f"{s.column}={s.value} loses {-(s.gain or 0):.4f} (> {s.tolerance}, {s.rows} rows)"
                  for s in failing))
    return Gate("slices", not failing, len(failing), 0, detail)


def _verdict(gates: list[Gate], policy: PromotionConfig, slices: tuple[SliceVerdict, ...], cold: bool) -> Decision:
    failed = [g for g in gates if not g.passed]
    if failed:
        return Decision(False, "reject", tuple(g.detail for g in failed), tuple(gates), slices)
    if cold:
        head = "no champion yet (cold start)"
        if policy.cold_start == "register_only":
            return Decision(False, "register_only", (f"{head}; policy cold_start=register_only",), tuple(gates),
                            slices)
        if policy.cold_start == "manual" or policy.approval == "manual":
            return Decision(False, "awaiting-approval", (f"{head}; waiting for `ctp approve`",), tuple(gates), slices)
        return Decision(True, "promote", (f"{head}: the first model that passes its gates becomes champion",)
                        + tuple(g.detail for g in gates), tuple(gates), slices)
    reasons = tuple(g.detail for g in gates)
    if policy.approval == "manual":
        return Decision(False, "awaiting-approval", ("all gates pass; waiting for `ctp approve`",) + reasons,
                        tuple(gates), slices)
    return Decision(True, "promote", reasons, tuple(gates), slices)
