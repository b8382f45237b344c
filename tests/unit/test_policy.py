import math

from ctpipeline.config import PromotionConfig
from ctpipeline.policy import decide


def test_first_model_becomes_champion_on_cold_start():
    d = decide(0.7, None, PromotionConfig(), "roc_auc", True)
    assert d.promote and d.verdict == "promote" and "cold start" in d.reasons[0]


def test_cold_start_register_only():
    d = decide(0.7, None, PromotionConfig(cold_start="register_only"), "roc_auc", True)
    assert not d.promote and d.verdict == "register_only"


def test_promote_when_margin_cleared_higher_is_better():
    d = decide(0.71, 0.70, PromotionConfig(min_margin=0.005), "roc_auc", True)
    assert d.promote and "clears margin" in d.reasons[0]


def test_reject_when_gain_below_margin():
    d = decide(0.703, 0.70, PromotionConfig(min_margin=0.005), "roc_auc", True)
    assert not d.promote and d.verdict == "reject" and "does not clear" in d.reasons[0]


def test_lower_is_better_metrics():
    assert decide(0.40, 0.45, PromotionConfig(min_margin=0.01), "log_loss", False).promote
    assert not decide(0.45, 0.40, PromotionConfig(), "log_loss", False).promote


def test_equal_scores_never_promote_even_with_zero_margin():
    assert not decide(0.7, 0.7, PromotionConfig(min_margin=0.0), "roc_auc", True).promote


def test_undefined_metrics_keep_champion():
    assert not decide(math.nan, 0.7, PromotionConfig(), "roc_auc", True).promote
    assert not decide(0.7, math.nan, PromotionConfig(), "roc_auc", True).promote
