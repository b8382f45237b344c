"""The promotion policy: one pure function, every rule tested in milliseconds."""

import math

from ctpipeline.core.backtest import SliceScore
from ctpipeline.config.schema import PromotionConfig, SliceConfig
from ctpipeline.core.policy import Evidence, decide

AUC = ("roc_auc", True)


def ev(challenger=0.72, champion=0.70, low=0.01, high=0.03, **kw):
    return Evidence(challenger=challenger, champion=champion, champion_version="3", ci_low=low, ci_high=high,
                    confidence=0.9, **kw)


def gate(decision, name):
    return next(g for g in decision.gates if g.name == name)


def test_promote_when_interval_clears_margin():
    d = decide(ev(), PromotionConfig(min_margin=0.005), *AUC)
    assert d.promote and d.verdict == "promote"
    assert gate(d, "margin").passed and gate(d, "interval").passed
    assert any("interval of the gain" in r for r in d.reasons)
    assert d.summary.startswith("90% interval of the gain")


def test_reject_for_margin():
    d = decide(ev(challenger=0.703, low=0.001, high=0.005), PromotionConfig(min_margin=0.005), *AUC)
    assert not d.promote and d.verdict == "reject"
    assert not gate(d, "margin").passed
    assert any("does not clear the margin" in r for r in d.reasons)


def test_reject_when_interval_straddles_margin_even_if_point_gain_clears_it():
    d = decide(ev(challenger=0.72, low=-0.004, high=0.04), PromotionConfig(min_margin=0.005), *AUC)
    assert not d.promote
    assert gate(d, "margin").passed and not gate(d, "interval").passed
    assert any("straddles the margin" in r for r in d.reasons)
    assert "straddles" in d.summary


def test_point_estimate_only_when_not_noise_aware():
    d = decide(ev(challenger=0.72, low=-0.004, high=0.04), PromotionConfig(min_margin=0.005, noise_aware=False), *AUC)
    assert d.promote and all(g.name != "interval" for g in d.gates)


def test_missing_interval_is_not_taken_as_a_pass():
    d = decide(ev(low=None, high=None), PromotionConfig(), *AUC)
    assert not d.promote and not gate(d, "interval").passed


def test_reject_for_floor_even_when_better_than_champion():
    d = decide(ev(challenger=0.58, champion=0.55, low=0.02, high=0.04), PromotionConfig(floor=0.6), *AUC)
    assert not d.promote and not gate(d, "floor").passed
    assert any("below the floor" in r for r in d.reasons)


def test_floor_for_lower_is_better_metric():
    d = decide(Evidence(challenger=0.9, champion=None), PromotionConfig(floor=0.5), "log_loss", False)
    assert not d.promote and not gate(d, "floor").passed


def slice_(value, gain, rows=1000, column="carrier"):
    """A measurement only: the tolerance and min_count come from the policy's SliceConfig."""
    return SliceScore(column, value, rows, 0.7 + gain, 0.7, gain)


def test_reject_for_a_regressing_slice_and_ignore_small_ones():
    policy = PromotionConfig(slices=[SliceConfig(column="carrier", tolerance=0.02, min_count=500)])
    d = decide(ev(slices=(slice_("UA", 0.01), slice_("EV", -0.05))), policy, *AUC)
    assert not d.promote and not gate(d, "slices").passed
    assert any("carrier=EV loses 0.0500" in r for r in d.reasons)
    small = slice_("HA", -0.2, rows=40)
    d2 = decide(ev(slices=(slice_("UA", 0.01), small)), policy, *AUC)
    assert d2.promote and gate(d2, "slices").passed


def test_cold_start_promote_register_only_and_manual():
    first = Evidence(challenger=0.65)
    assert decide(first, PromotionConfig(cold_start="promote"), *AUC).verdict == "promote"
    d = decide(first, PromotionConfig(cold_start="register_only"), *AUC)
    assert not d.promote and d.verdict == "register_only"
    d = decide(first, PromotionConfig(cold_start="manual"), *AUC)
    assert not d.promote and d.verdict == "awaiting-approval"
    # a cold start still respects the floor
    assert decide(first, PromotionConfig(floor=0.7), *AUC).verdict == "reject"


def test_manual_approval_waits_when_all_gates_pass_and_rejects_otherwise():
    d = decide(ev(), PromotionConfig(approval="manual"), *AUC)
    assert not d.promote and d.verdict == "awaiting-approval"
    assert "ctp approve" in d.reasons[0]
    assert decide(ev(challenger=0.69, low=-0.02, high=-0.01), PromotionConfig(approval="manual"), *AUC).verdict == \
        "reject"


def test_champion_error_policy():
    broken = Evidence(challenger=0.7, champion=None, champion_error="champion v3 could not be loaded: boom")
    d = decide(broken, PromotionConfig(on_champion_error="reject"), *AUC)
    assert not d.promote and "boom" in d.reasons[0]
    d = decide(broken, PromotionConfig(on_champion_error="promote"), *AUC)
    assert d.promote and d.verdict == "promote"


def test_relative_margin_and_lower_is_better():
    policy = PromotionConfig(min_margin=0.05, margin_type="relative")
    d = decide(Evidence(challenger=0.40, champion=0.45, champion_version="1", ci_low=0.03, ci_high=0.07,
                        confidence=0.9), policy, "log_loss", False)
    assert d.promote  # gain 0.05 >= 5% of 0.45 and interval lower bound 0.03 > 0.0225
    d = decide(Evidence(challenger=0.44, champion=0.45, champion_version="1", ci_low=0.005, ci_high=0.02,
                        confidence=0.9), policy, "log_loss", False)
    assert not d.promote


def test_latency_and_size_guards():
    policy = PromotionConfig(max_latency_ms_per_1k=10, max_model_mb=1)
    d = decide(ev(latency_ms_per_1k=25.0, model_mb=0.5), policy, *AUC)
    assert not d.promote and not gate(d, "latency").passed and gate(d, "model_size").passed
    d = decide(ev(latency_ms_per_1k=5.0, model_mb=3.0), policy, *AUC)
    assert not d.promote and not gate(d, "model_size").passed


def test_undefined_challenger_metric_rejects():
    assert not decide(ev(challenger=math.nan), PromotionConfig(), *AUC).promote


def test_equal_scores_never_promote():
    assert not decide(ev(challenger=0.7, champion=0.7, low=-0.01, high=0.01), PromotionConfig(), *AUC).promote
