"""The promotion decision: one pure function of the evaluation results and the YAML policy."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ctpipeline.config import PromotionConfig


@dataclass(frozen=True)
class Decision:
    promote: bool
    verdict: str                       # "promote" | "reject" | "register_only"
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)

    def explain(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)


def decide(
    challenger: float,
    champion: float | None,
    policy: PromotionConfig,
    metric: str,
    higher_is_better: bool,
) -> Decision:
    """Promote when the challenger beats the champion by at least `min_margin` on `metric`.

    `champion` is None when there is no champion yet (cold start, handled as the policy says).
    """
    if math.isnan(challenger):
        return Decision(False, "reject", (f"challenger {metric} is undefined on the evaluation batch",))
    if champion is None:
        if policy.cold_start == "promote":
            return Decision(True, "promote", (f"no champion yet (cold start): first model becomes champion, "
                                              f"{metric}={challenger:.4f}",))
        return Decision(False, "register_only", ("no champion yet; policy cold_start=register_only",))
    if math.isnan(champion):
        return Decision(False, "reject", (f"champion {metric} is undefined on the evaluation batch; keeping it",))
    gain = (challenger - champion) if higher_is_better else (champion - challenger)
    word = "higher" if higher_is_better else "lower"
    if gain >= policy.min_margin and gain > 0:
        return Decision(True, "promote", (f"challenger {metric}={challenger:.4f} vs champion {champion:.4f}: "
                                          f"{gain:+.4f} ({word} is better) clears margin {policy.min_margin}",))
    return Decision(False, "reject", (f"challenger {metric}={challenger:.4f} vs champion {champion:.4f}: "
                                      f"{gain:+.4f} ({word} is better) does not clear margin {policy.min_margin}",))
