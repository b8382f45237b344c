"""The promotion policy: one pure function, every rule tested in milliseconds."""

import dataclasses
import math

import pytest

from ctpipeline.config.schema import PromotionConfig, SliceConfig
from ctpipeline.core import backtest, evaluation
from ctpipeline.core import policy as policy_mod
from ctpipeline.core.backtest import SliceScore
from ctpipeline.core.policy import Evidence, SliceVerdict, decide, judge_slices

AUC = ("roc_auc", True)


def ev(challenger=0.72, champion=0.70, low=0.01, high=0.03, **kw):
    return Evidence(
        challenger=challenger, champion=champion, champion_version="3", ci_low=low, ci_high=high, confidence=0.9, **kw
    )


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
    assert (
        decide(ev(challenger=0.69, low=-0.02, high=-0.01), PromotionConfig(approval="manual"), *AUC).verdict == "reject"
    )


def test_champion_error_policy():
    broken = Evidence(challenger=0.7, champion=None, champion_error="champion v3 could not be loaded: boom")
    d = decide(broken, PromotionConfig(on_champion_error="reject"), *AUC)
    assert not d.promote and "boom" in d.reasons[0]
    d = decide(broken, PromotionConfig(on_champion_error="promote"), *AUC)
    assert d.promote and d.verdict == "promote"


def test_relative_margin_and_lower_is_better():
    policy = PromotionConfig(min_margin=0.05, margin_type="relative")
    d = decide(
        Evidence(challenger=0.40, champion=0.45, champion_version="1", ci_low=0.03, ci_high=0.07, confidence=0.9),
        policy,
        "log_loss",
        False,
    )
    assert d.promote  # gain 0.05 >= 5% of 0.45 and interval lower bound 0.03 > 0.0225
    d = decide(
        Evidence(challenger=0.44, champion=0.45, champion_version="1", ci_low=0.005, ci_high=0.02, confidence=0.9),
        policy,
        "log_loss",
        False,
    )
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


# --------------------------------------------------------------------------- slices: the rule lives in decide()


def carrier(tolerance=0.02, min_count=500):
    return PromotionConfig(slices=[SliceConfig(column="carrier", tolerance=tolerance, min_count=min_count)])


def verdict(decision, value, column="carrier"):
    return next(s for s in decision.slices if (s.column, s.value) == (column, value))


def test_a_slice_below_its_tolerance_rejects():
    d = decide(ev(slices=(slice_("UA", 0.01), slice_("EV", -0.021))), carrier(tolerance=0.02), *AUC)
    assert not d.promote and d.verdict == "reject"
    g = gate(d, "slices")
    assert not g.passed and g.observed == 1 and g.threshold == 0
    assert g.detail == "regressing slices: carrier=EV loses 0.0210 (> 0.02, 1000 rows)" == d.summary
    ev_, ua = verdict(d, "EV"), verdict(d, "UA")
    assert ev_.judged and not ev_.passed and ev_.tolerance == 0.02 and ev_.score == slice_("EV", -0.021)
    assert ua.judged and ua.passed
    # losing exactly the tolerance is still a pass
    assert decide(ev(slices=(slice_("EV", -0.02),)), carrier(tolerance=0.02), *AUC).promote


def test_a_slice_with_fewer_than_min_count_rows_is_reported_not_judged():
    small = slice_("HA", -0.5, rows=499)
    d = decide(ev(slices=(slice_("UA", 0.01), small)), carrier(min_count=500), *AUC)
    assert d.promote and gate(d, "slices").passed
    assert gate(d, "slices").detail == "1 slices of carrier judged, none loses more than its tolerance"
    ha = verdict(d, "HA")
    assert not ha.judged and ha.passed and ha.min_count == 500 and ha.rows == 499 and ha.gain == -0.5
    assert [s.value for s in d.slices] == ["UA", "HA"]  # every slice is reported, in the evidence's order
    # one more row and it is judged (and rejects)
    assert not decide(ev(slices=(slice_("HA", -0.5, rows=500),)), carrier(min_count=500), *AUC).promote


def test_a_slice_without_a_gain_is_not_judged():
    unscored = SliceScore("carrier", "HA", 1000, 0.7, None, None)
    d = decide(ev(slices=(unscored,)), carrier(), *AUC)
    assert d.promote and not verdict(d, "HA").judged and verdict(d, "HA").passed


def test_the_tolerance_used_is_the_slice_configs():
    policy = PromotionConfig(
        slices=[
            SliceConfig(column="carrier", tolerance=0.05, min_count=10),
            SliceConfig(column="origin", tolerance=0.01, min_count=2000),
        ]
    )
    evidence = ev(
        slices=(
            slice_("EV", -0.03),
            slice_("JFK", -0.03, column="origin"),
            slice_("EWR", -0.03, rows=5000, column="origin"),
        )
    )
    d = decide(evidence, policy, *AUC)
    assert [(s.column, s.value, s.tolerance, s.min_count, s.judged, s.passed) for s in d.slices] == [
        ("carrier", "EV", 0.05, 10, True, True),  # loses 0.03 <= 0.05
        ("origin", "JFK", 0.01, 2000, False, True),  # 1000 rows < 2000: not judged
        ("origin", "EWR", 0.01, 2000, True, False),  # loses 0.03 > 0.01
    ]
    assert not d.promote
    assert gate(d, "slices").detail == "regressing slices: origin=EWR loses 0.0300 (> 0.01, 5000 rows)"
    fixed = ev(slices=evidence.slices[:2] + (slice_("EWR", -0.01, rows=5000, column="origin"),))
    d = decide(fixed, policy, *AUC)
    assert (
        d.promote
        and gate(d, "slices").detail == "2 slices of carrier, origin judged, none loses more than its tolerance"
    )


def test_slice_verdicts_come_with_every_decision_and_flatten_for_the_record():
    scores = (slice_("UA", 0.01), slice_("HA", -0.3, rows=40))
    cold = decide(
        Evidence(challenger=0.7, slices=tuple(dataclasses.replace(s, champion=None, gain=None) for s in scores)),
        carrier(),
        *AUC,
    )
    assert cold.verdict == "promote" and [s.judged for s in cold.slices] == [False, False]
    assert all(g.name != "slices" for g in cold.gates)  # no champion: nothing to compare, no slices gate
    broken = decide(ev(champion_error="champion v3 could not be loaded: boom", slices=scores), carrier(), *AUC)
    assert broken.verdict == "reject" and len(broken.slices) == 2
    d = decide(ev(slices=scores), carrier(), *AUC)
    assert d.slices[0].to_dict() == {
        "column": "carrier",
        "value": "UA",
        "rows": 1000,
        "challenger": 0.71,
        "champion": 0.7,
        "gain": 0.01,
        "judged": True,
        "passed": True,
        "tolerance": 0.02,
        "min_count": 500,
    }
    record = d.to_dict()
    assert record["slices"] == [s.to_dict() for s in d.slices] and record["summary"] == d.summary
    assert gate(d, "interval").observed == (0.01, 0.03)  # frozen: a tuple on the Gate,
    assert record["gates"][2] == {
        "name": "interval",
        "passed": True,
        "observed": [0.01, 0.03],
        "threshold": 0.0,
        "detail": gate(d, "interval").detail,
    }  # a list in the record, as before
    assert d.slices == judge_slices(scores, carrier().slices)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.slices[0].passed = False  # type: ignore[misc]
    assert isinstance(d.slices[0], SliceVerdict)


def test_a_slice_of_a_column_the_policy_does_not_list_is_an_error():
    with pytest.raises(ValueError, match="'origin' has no entry in promotion.slices"):
        decide(ev(slices=(slice_("JFK", 0.0, column="origin"),)), carrier(), *AUC)
    twice = PromotionConfig(slices=[SliceConfig(column="carrier"), SliceConfig(column="carrier", tolerance=0.1)])
    with pytest.raises(ValueError, match="lists column 'carrier' twice"):
        decide(ev(slices=(slice_("UA", 0.0),)), twice, *AUC)


def test_lower_is_better_gain_sign_comes_from_one_function():
    assert backtest.gain is evaluation.gain and policy_mod.gain is evaluation.gain
    assert not hasattr(policy_mod, "_better")
    assert evaluation.gain(0.40, 0.45, higher_is_better=False) == pytest.approx(0.05)  # lower log_loss: better
    assert evaluation.gain(0.50, 0.45, higher_is_better=False) == pytest.approx(-0.05)
    assert evaluation.gain(0.72, 0.70, higher_is_better=True) == pytest.approx(0.02)
    assert evaluation.gain(math.nan, 0.45, False) is None and evaluation.gain(0.4, None, False) is None
    better = Evidence(challenger=0.40, champion=0.45, champion_version="1", ci_low=0.03, ci_high=0.07, confidence=0.9)
    d = decide(better, PromotionConfig(), "log_loss", False)
    assert d.promote and gate(d, "margin").observed == "0.0500"
    assert "gain +0.0500 clears the margin 0.0000 (lower is better)" in gate(d, "margin").detail
    worse = dataclasses.replace(better, challenger=0.50, ci_low=-0.07, ci_high=-0.03)
    assert "gain -0.0500 does not clear" in gate(decide(worse, PromotionConfig(), "log_loss", False), "margin").detail
    # a slice where the challenger's log_loss is higher (worse) loses: negative gain, judged against the tolerance
    policy = PromotionConfig(slices=[SliceConfig(column="carrier", tolerance=0.02, min_count=1)])
    loses = SliceScore("carrier", "EV", 100, 0.50, 0.45, evaluation.gain(0.50, 0.45, False))
    d = decide(dataclasses.replace(better, slices=(loses,)), policy, "log_loss", False)
    assert not d.promote and "carrier=EV loses 0.0500" in d.summary
    # the floor: at or below it passes for a lower-is-better metric
    assert gate(decide(better, PromotionConfig(floor=0.40), "log_loss", False), "floor").passed
    assert not gate(decide(better, PromotionConfig(floor=0.39), "log_loss", False), "floor").passed
