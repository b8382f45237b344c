"""Rolling-origin back-test: score challenger and champion on the same K most recent time windows,
with a paired block-bootstrap interval on the metric difference and per-slice comparisons.

Pure numpy/pandas: the inputs are labels, the two models' scores and the rows' times.

Method, stated: the back-test rows (all K windows) are resampled *by block of time* (a day by
default: flights on one day share weather and knock-on delays, so rows are not independent),
both models are scored on each resample, and the interval is the percentile interval of the gain
(challenger minus champion, sign-flipped for lower-is-better metrics: `evaluation.gain`). The seed is fixed.

Everything here is a measurement; no threshold of the promotion policy is applied (that is `policy.decide`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ctpipeline.config.schema import BacktestConfig
from ctpipeline.core.data import as_utc
from ctpipeline.core.evaluation import gain, metric_value

BLOCK_FREQ = {"hour": "h", "day": "D", "week": "W"}


def assign_windows(times: pd.Series, cfg: BacktestConfig) -> tuple[np.ndarray, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """Window index (0..K-1, oldest first) for each row, -1 for rows before the first window."""
    t = as_utc(times)
    k = cfg.windows
    end = t.max() + pd.Timedelta(microseconds=1)
    if cfg.window is None:
        start = t.min()
        edges = [start + (end - start) * i / k for i in range(k + 1)]
    else:
        w = pd.Timedelta(cfg.window)
        edges = [end - w * (k - i) for i in range(k + 1)]
    ids = np.full(len(t), -1, dtype=int)
    for i in range(k):
        ids[((t >= edges[i]) & (t < edges[i + 1])).to_numpy()] = i
    return ids, [(edges[i], edges[i + 1]) for i in range(k)]


def block_ids(times: pd.Series, block: str, timezone: str = "UTC") -> np.ndarray:
    """Block of each row: its hour, day or week in `timezone` (a local day, not a UTC day), or itself."""
    if block == "none":
        return np.arange(len(times))
    t = as_utc(times).dt.tz_convert(timezone).dt.tz_localize(None)
    return pd.factorize(t.dt.to_period(BLOCK_FREQ[block]))[0]


def block_auc_terms(y: np.ndarray, s: np.ndarray, block_of_row: np.ndarray, n_blocks: int):
    """The Mann-Whitney terms of ROC AUC between blocks: ``U[a, b]`` counts the (positive in a, negative in b)
    pairs ranked right (ties count half), with the positives and negatives of each block.

    For a resample that takes block b ``c[b]`` times, AUC = c·U·c / ((c·pos)(c·neg)). Every term is an exact
    half-integer in float64, so this is bit for bit the rank-based AUC of the concatenated resample.
    """
    positive = y == 1
    pos = np.bincount(block_of_row[positive], minlength=n_blocks).astype("float64")
    neg = np.bincount(block_of_row[~positive], minlength=n_blocks).astype("float64")
    u = np.zeros((n_blocks, n_blocks))
    s_pos = s[positive]
    order = np.argsort(s_pos, kind="stable")  # sorted needles: searchsorted walks memory in order (~3x faster)
    s_pos, b_pos = s_pos[order], block_of_row[positive][order]
    s_neg, b_neg = s[~positive], block_of_row[~positive]
    for b in range(n_blocks):
        negs = np.sort(s_neg[b_neg == b])
        below = np.searchsorted(negs, s_pos, "left")
        ties = np.searchsorted(negs, s_pos, "right") - below
        u[:, b] = np.bincount(b_pos, weights=below + 0.5 * ties, minlength=n_blocks)
    return u, pos, neg


def _auc_gains(y, challenger, champion, block_of_row, counts: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """AUC gain of every resample at once (rows of `counts`: how often each block was drawn); NaN where a
    resample holds one class."""
    n_blocks = counts.shape[1]
    aucs = []
    for s in (challenger, champion):
        u, pos, neg = block_auc_terms(y, s, block_of_row, n_blocks)
        denom = (counts @ pos) * (counts @ neg)
        with np.errstate(invalid="ignore", divide="ignore"):
            aucs.append(np.where(denom > 0, ((counts @ u) * counts).sum(axis=1) / denom, np.nan))
    return aucs[0] - aucs[1] if higher_is_better else aucs[1] - aucs[0]


def _resample_gains(y, challenger, champion, blocks, metric: str, higher_is_better: bool, resamples: int, seed: int):
    """The gain on each block resample; resamples where it is undefined (one class) are left out."""
    uniq, block_of_row = np.unique(blocks, return_inverse=True)
    n_blocks = len(uniq)
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, n_blocks, n_blocks) for _ in range(resamples)]  # one draw per resample, as ever
    if metric == "roc_auc":  # vectorised over resamples
        counts = np.stack([np.bincount(p, minlength=n_blocks) for p in picks]).astype("float64")
        g = _auc_gains(y, challenger, champion, block_of_row, counts, higher_is_better)
        return [float(x) for x in g if not math.isnan(x)]
    order = np.argsort(blocks, kind="stable")
    groups = np.split(order, np.unique(blocks[order], return_index=True)[1][1:])
    gains = []
    for pick in picks:
        idx = np.concatenate([groups[i] for i in pick])
        g = gain(*(metric_value(metric, y[idx], s[idx]) for s in (challenger, champion)), higher_is_better)
        if g is not None:
            gains.append(g)
    return gains


def paired_bootstrap(
    y, challenger, champion, blocks, metric: str, higher_is_better: bool, resamples: int, confidence: float, seed: int
) -> tuple[float, float, int]:
    """Percentile interval of the gain over block resamples. Returns (low, high, resamples used)."""
    y, challenger, champion = np.asarray(y), np.asarray(challenger, float), np.asarray(champion, float)
    gains = _resample_gains(y, challenger, champion, np.asarray(blocks), metric, higher_is_better, resamples, seed)
    if len(gains) < max(10, resamples // 2):
        return math.nan, math.nan, len(gains)
    alpha = (1 - confidence) / 2
    return float(np.quantile(gains, alpha)), float(np.quantile(gains, 1 - alpha)), len(gains)


@dataclass(frozen=True)
class WindowScore:
    index: int  # 1 = the oldest window; the same number in the record, the markdown, the plots and MLflow's steps
    start: str
    end: str
    rows: int
    challenger: float
    champion: float | None
    gain: float | None
    winner: str  # challenger | champion | tie | -


@dataclass(frozen=True)
class Backtest:
    metric: str
    higher_is_better: bool
    windows: tuple[WindowScore, ...]
    rows: int
    challenger: float  # pooled over all windows
    champion: float | None
    gain: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    resamples: int
    block: str
    wins: int
    losses: int

    def to_dict(self) -> dict:
        return asdict(self)


def run_backtest(
    y,
    challenger_scores,
    champion_scores,
    times: pd.Series,
    metric: str,
    higher_is_better: bool,
    cfg: BacktestConfig,
    timezone: str = "UTC",
) -> Backtest:
    y = np.asarray(y)
    ch = np.asarray(challenger_scores, float)
    cp = None if champion_scores is None else np.asarray(champion_scores, float)
    ids, edges = assign_windows(times, cfg)
    rows = []
    for i, (start, end) in enumerate(edges):
        m = ids == i
        c1 = metric_value(metric, y[m], ch[m]) if m.any() else math.nan
        c2 = metric_value(metric, y[m], cp[m]) if (cp is not None and m.any()) else None
        g = gain(c1, c2, higher_is_better)
        winner = "-" if g is None else ("challenger" if g > 0 else "champion" if g < 0 else "tie")
        rows.append(WindowScore(i + 1, start.isoformat(), end.isoformat(), int(m.sum()), c1, c2, g, winner))
    used = ids >= 0
    pooled_ch = metric_value(metric, y[used], ch[used])
    pooled_cp = metric_value(metric, y[used], cp[used]) if cp is not None else None
    low = high = None
    n = 0
    if cp is not None:
        blocks = block_ids(pd.Series(times).reset_index(drop=True)[used], cfg.block, timezone)
        low, high, n = paired_bootstrap(
            y[used], ch[used], cp[used], blocks, metric, higher_is_better, cfg.bootstrap, cfg.confidence, cfg.seed
        )
    return Backtest(
        metric,
        higher_is_better,
        tuple(rows),
        int(used.sum()),
        pooled_ch,
        pooled_cp,
        gain(pooled_ch, pooled_cp, higher_is_better),
        low,
        high,
        cfg.confidence,
        n,
        cfg.block,
        sum(r.winner == "challenger" for r in rows),
        sum(r.winner == "champion" for r in rows),
    )


@dataclass(frozen=True)
class SliceScore:
    """Both models on the rows of one value of a slice column: a measurement, no verdict (see policy.decide)."""

    column: str
    value: str
    rows: int
    challenger: float
    champion: float | None  # None: no champion scores
    gain: float | None  # evaluation.gain: positive = challenger better; None when either is undefined

    def to_dict(self) -> dict[str, str | int | float | None]:
        return asdict(self)


def slice_scores(
    values: pd.Series, y, challenger_scores, champion_scores, metric: str, higher_is_better: bool, column: str
) -> tuple[SliceScore, ...]:
    """Both models' metric and the gain per value of `values` (missing values form one "(missing)" slice),
    sorted by value. Nothing is judged here: `policy.decide` applies the column's min_count and tolerance."""
    if not isinstance(column, str):  # the old signature took the SliceConfig here
        raise TypeError(f"slice_scores takes the column's name (e.g. sc.column), not {type(column).__name__}")
    y = np.asarray(y)
    ch = np.asarray(challenger_scores, float)
    cp = None if champion_scores is None else np.asarray(champion_scores, float)
    vals = values.astype("object").where(values.notna(), "(missing)").astype(str)
    codes, uniques = pd.factorize(vals)  # compared as integers: one string comparison per row and slice was slow
    out = []
    for code in np.argsort(uniques.to_numpy(), kind="stable"):  # by value, as sorted() orders the strings
        v = uniques[code]
        m = codes == code
        c1 = metric_value(metric, y[m], ch[m])
        c2 = metric_value(metric, y[m], cp[m]) if cp is not None else None
        out.append(SliceScore(column, v, int(m.sum()), c1, c2, gain(c1, c2, higher_is_better)))
    return tuple(out)
