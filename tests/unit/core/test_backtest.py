"""Rolling-origin windows, the paired block bootstrap and slice scores, on seeded data."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from ctpipeline.config.schema import BacktestConfig, PromotionConfig, SliceConfig
from ctpipeline.core.backtest import SliceScore, assign_windows, block_ids, paired_bootstrap, run_backtest, slice_scores
from ctpipeline.core.policy import Evidence, decide


def times(n=3000, days=30, seed=0):
    rng = np.random.default_rng(seed)
    return pd.Series(
        pd.Timestamp("2013-03-01", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, days * 24 * 60, n)), unit="min")
    )


def scores(n, signal, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, y * signal + rng.normal(size=n)


def test_equal_split_windows_cover_everything_in_time_order():
    t = times()
    ids, edges = assign_windows(t, BacktestConfig(windows=3))
    assert set(ids) == {0, 1, 2}
    assert (np.diff(ids) >= 0).all()  # times are sorted, so windows are too
    assert edges[0][0] == t.min() and edges[-1][1] > t.max()


def test_fixed_length_windows_are_the_most_recent_ones():
    t = times()
    ids, edges = assign_windows(t, BacktestConfig(windows=2, window="5D"))
    assert (ids[t < t.max() - pd.Timedelta("10D")] == -1).all()
    assert set(ids[ids >= 0]) == {0, 1}
    assert edges[1][1] - edges[0][0] == pd.Timedelta("10D")


def test_blocks_by_day_and_rows():
    t = times(days=4)
    assert len(np.unique(block_ids(t, "day"))) == 4
    assert len(np.unique(block_ids(t, "none"))) == len(t)


def test_bootstrap_is_reproducible_and_separates_signal_from_noise():
    t = times()
    y, strong = scores(len(t), 1.0, 1)
    rng = np.random.default_rng(2)
    weak = y * 0.3 + rng.normal(size=len(t))
    blocks = block_ids(t, "day")
    a = paired_bootstrap(y, strong, weak, blocks, "roc_auc", True, 200, 0.9, seed=7)
    b = paired_bootstrap(y, strong, weak, blocks, "roc_auc", True, 200, 0.9, seed=7)
    assert a == b
    low, high, n = a
    assert n == 200 and 0 < low < high
    # two equally good models: the interval covers zero
    noise = y * 1.0 + np.random.default_rng(3).normal(size=len(t))
    low, high, _ = paired_bootstrap(y, strong, noise, blocks, "roc_auc", True, 200, 0.9, seed=7)
    assert low < 0 < high


def test_run_backtest_table_and_lower_is_better_sign():
    t = times()
    rng = np.random.default_rng(4)
    y = rng.normal(size=len(t))
    good = y + rng.normal(scale=0.1, size=len(t))
    bad = y + rng.normal(scale=1.0, size=len(t))
    bt = run_backtest(y, good, bad, t, "rmse", False, BacktestConfig(windows=3, bootstrap=100))
    assert len(bt.windows) == 3 and bt.rows == len(t)
    assert bt.wins == 3 and bt.losses == 0
    assert bt.gain > 0 and bt.ci_low > 0  # lower rmse is a positive gain
    assert all(w.winner == "challenger" for w in bt.windows)
    cold = run_backtest(y, good, None, t, "rmse", False, BacktestConfig(windows=3))
    assert cold.champion is None and cold.ci_low is None and cold.windows[0].winner == "-"


def test_slice_scores_judge_big_slices_only():
    n = 3000
    y, s_good = scores(n, 1.0, 5)
    s_champ = s_good.copy()
    values = pd.Series(np.where(np.arange(n) < 2900, "big", "small"))
    s_chal = s_good.copy()
    s_chal[:2900] = np.random.default_rng(6).normal(size=2900)  # the challenger is useless on "big"
    measured = slice_scores(values, y, s_chal, s_champ, "roc_auc", True, "c")
    policy = PromotionConfig(slices=[SliceConfig(column="c", tolerance=0.02, min_count=500)])
    d = decide(
        Evidence(
            challenger=0.8,
            champion=0.7,
            champion_version="1",
            ci_low=0.05,
            ci_high=0.1,
            confidence=0.9,
            slices=measured,
        ),
        policy,
        "roc_auc",
        True,
    )
    out = {s.value: s for s in d.slices}
    assert out["big"].judged and not out["big"].passed
    assert not out["small"].judged and out["small"].passed


def test_bootstrap_and_backtest_intervals_are_pinned():
    """The intervals at a fixed seed, as computed before the slice rule moved to policy.decide."""
    t = times()
    y, strong = scores(len(t), 1.0, 1)
    weak = y * 0.3 + np.random.default_rng(2).normal(size=len(t))
    low, high, n = paired_bootstrap(y, strong, weak, block_ids(t, "day"), "roc_auc", True, 200, 0.9, seed=7)
    assert (low, high, n) == (
        pytest.approx(0.15310354241500632, rel=1e-12),
        pytest.approx(0.19445097748654194, rel=1e-12),
        200,
    )
    rng = np.random.default_rng(4)
    yr = rng.normal(size=len(t))
    good = yr + rng.normal(scale=0.1, size=len(t))
    bad = yr + rng.normal(scale=1.0, size=len(t))
    bt = run_backtest(yr, good, bad, t, "rmse", False, BacktestConfig(windows=3, bootstrap=100))
    assert (bt.gain, bt.ci_low, bt.ci_high, bt.resamples) == (
        pytest.approx(0.8992161475311933, rel=1e-12),
        pytest.approx(0.8777205835686276, rel=1e-12),
        pytest.approx(0.9256544834952631, rel=1e-12),
        100,
    )


def test_slice_scores_are_measurements_only():
    n = 1000
    y, s = scores(n, 1.0, 8)
    values = pd.Series(np.where(np.arange(n) % 10 == 0, None, np.where(np.arange(n) % 2 == 0, "b", "a")))
    out = slice_scores(values, y, s, s * 0.5, "roc_auc", True, "carrier")
    assert isinstance(out, tuple)
    assert [f.name for f in dataclasses.fields(SliceScore)] == [
        "column",
        "value",
        "rows",
        "challenger",
        "champion",
        "gain",
    ]
    assert [(x.column, x.value, x.rows) for x in out] == [
        ("carrier", "(missing)", 100),
        ("carrier", "a", 500),
        ("carrier", "b", 400),
    ]
    assert all(x.gain == pytest.approx(0.0) for x in out)  # the same ranking: no gain in AUC
    assert set(out[0].to_dict()) == {"column", "value", "rows", "challenger", "champion", "gain"}
    cold = slice_scores(values, y, s, None, "roc_auc", True, "carrier")
    assert all(x.champion is None and x.gain is None for x in cold)
    with pytest.raises(TypeError, match="column's name"):
        slice_scores(values, y, s, None, "roc_auc", True, SliceConfig(column="carrier"))


def test_slice_gain_is_positive_when_the_challenger_has_the_lower_rmse():
    n = 2000
    rng = np.random.default_rng(9)
    y = rng.normal(size=n)
    values = pd.Series(np.where(np.arange(n) < 1000, "good", "bad"))
    chal = y + rng.normal(scale=0.1, size=n)
    chal[1000:] = y[1000:] + rng.normal(scale=2.0, size=1000)  # the challenger is worse on "bad"
    champ = y + rng.normal(scale=0.5, size=n)
    out = {x.value: x for x in slice_scores(values, y, chal, champ, "rmse", False, "c")}
    assert out["good"].challenger < out["good"].champion and out["good"].gain > 0
    assert out["bad"].challenger > out["bad"].champion and out["bad"].gain < 0
    assert out["good"].gain == pytest.approx(out["good"].champion - out["good"].challenger)


def _reference_bootstrap(y, ch, cp, blocks, resamples, confidence, seed):
    """The bootstrap as first written: concatenate the picked blocks, rank, score (kept here as the oracle)."""
    from scipy.stats import rankdata

    def auc(yy, s):
        n1 = int(yy.sum())
        n0 = len(yy) - n1
        if n1 == 0 or n0 == 0:
            return np.nan
        r = rankdata(s)
        return float((r[yy == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))

    order = np.argsort(blocks, kind="stable")
    _, starts = np.unique(blocks[order], return_index=True)
    groups = np.split(order, starts[1:])
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(resamples):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        a, b = auc(y[idx], ch[idx]), auc(y[idx], cp[idx])
        if not (np.isnan(a) or np.isnan(b)):
            gains.append(a - b)
    alpha = (1 - confidence) / 2
    return float(np.quantile(gains, alpha)), float(np.quantile(gains, 1 - alpha)), len(gains)


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
def test_vectorised_auc_bootstrap_is_bit_identical_to_the_rank_based_one(seed):
    from ctpipeline.core.backtest import paired_bootstrap

    rng = np.random.default_rng(seed)
    n = 3000
    y = (rng.random(n) < 0.25).astype("int8")
    ch = np.round(rng.random(n) * 0.5 + 0.3 * y, 2)  # rounded: many ties, as tree models give
    cp = np.round(rng.random(n) * 0.5 + 0.25 * y, 3)
    blocks = rng.integers(0, 31, n)
    got = paired_bootstrap(y, ch, cp, blocks, "roc_auc", True, 300, 0.9, seed)
    assert got == _reference_bootstrap(y, ch, cp, blocks, 300, 0.9, seed)  # ==, not approx


def test_slice_scores_are_sorted_by_value_and_score_each_slice_on_its_rows():
    from ctpipeline.core.evaluation import metric_value

    n = 4000
    y, s = scores(n, 1.0, 11)
    rng = np.random.default_rng(12)
    values = pd.Series(rng.choice(["UA", "B6", "9E", None, "AA"], n), dtype=object)
    out = slice_scores(values, y, s, s * 0.5 + rng.normal(size=n), "roc_auc", True, "carrier")
    assert [o.value for o in out] == ["(missing)", "9E", "AA", "B6", "UA"]  # string order, as sorted() gives
    for o in out:
        rows = (values.isna() if o.value == "(missing)" else values == o.value).to_numpy()
        assert o.rows == rows.sum()
        assert o.challenger == metric_value("roc_auc", y[rows], s[rows])
