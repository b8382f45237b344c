"""What the promotion rule takes and gives: the evidence (measurements only), its gates, per-slice verdicts and the
decision with its reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ctpipeline.core.backtest import SliceScore

VERDICTS = ("promote", "reject", "register_only", "awaiting-approval")

GateValue = str | int | float | tuple[float, float]


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    observed: GateValue  # the interval gate observes (low, high)
    threshold: GateValue
    detail: str

    def to_dict(self) -> dict[str, str | bool | int | float | list[float]]:
        """For the decision record: an interval is written as a list, [low, high], as it always was."""
        return {**asdict(self), "observed": list(self.observed) if isinstance(self.observed, tuple) else self.observed}


def gate_tags(gates) -> dict[str, str]:
    """The gates' verdicts as model version tags: ``ctp.gate.<name>`` = ``pass`` / ``FAIL``."""
    return {f"ctp.gate.{g.name}": "pass" if g.passed else "FAIL" for g in gates}


@dataclass(frozen=True)
class Evidence:
    """What the evaluation found. Metrics are pooled over the back-test windows."""

    challenger: float
    champion: float | None = None  # None: no champion (or it could not be scored)
    champion_version: str | None = None
    champion_error: str | None = None
    ci_low: float | None = None  # interval on the gain (challenger better = positive)
    ci_high: float | None = None
    confidence: float | None = None
    slices: tuple[SliceScore, ...] = ()  # measurements only; decide() judges them
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
        return {
            **self.score.to_dict(),
            "judged": self.judged,
            "passed": self.passed,
            "tolerance": self.tolerance,
            "min_count": self.min_count,
        }


@dataclass(frozen=True)
class Decision:
    promote: bool
    verdict: str  # one of VERDICTS
    reasons: tuple[str, ...] = ()
    gates: tuple[Gate, ...] = field(default_factory=tuple)
    slices: tuple[SliceVerdict, ...] = ()  # every slice of the evidence, judged or not, on every path

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
        return {
            "promote": self.promote,
            "verdict": self.verdict,
            "summary": self.summary,
            "reasons": list(self.reasons),
            "gates": [g.to_dict() for g in self.gates],
            "slices": [s.to_dict() for s in self.slices],
        }

    def explain(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)
