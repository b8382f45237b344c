"""What a cycle's steps cost on one real month, as ratios against a bare baseline run in the same process.

Baseline: what a script without any pipeline would do: fit the configured model on the training window
and score it on the new month. Each step of the pipeline (GX gate, Evidently drift, back-test with the
paired bootstrap and slices) is then timed and its peak traced memory measured the same way.

    .venv/bin/python bench/cycle_overhead.py [--config configs/flights.yaml] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(fn, repeat: int):
    """(best seconds, peak traced MB) over `repeat` runs; the first, untimed run warms imports and caches."""
    fn()
    best, peak = float("inf"), 0.0
    for _ in range(repeat):
        tracemalloc.start()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.stop()
    return best, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "flights.yaml"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from ctpipeline.adapters import gx as quality
    from ctpipeline.adapters.evidently import detect_drift
    from ctpipeline.config.schema import load_config
    from ctpipeline.core import data
    from ctpipeline.core.backtest import run_backtest, slice_scores
    from ctpipeline.core.evaluation import metric_value, predict_for_metric
    from ctpipeline.core.models import build_model

    cfg = load_config(args.config)
    batches = data.split_batches(data.load_source(cfg.source, cfg.data, cfg.config_dir), cfg.data)
    names = sorted(batches)
    train_df = data.training_frame([batches[n] for n in names[1:4]], cfg)
    new = batches[names[4]]
    new = new[new[cfg.target.column].notna()].reset_index(drop=True)
    Xt, yt = data.make_xy(train_df, cfg)
    Xn, yn = data.make_xy(new, cfg)
    task, metric, higher = cfg.target.task, cfg.evaluation.metric, cfg.evaluation.higher_is_better
    print(f"train {names[1]}..{names[3]}: {len(Xt)} rows; new month {names[4]}: {len(Xn)} rows; model {cfg.model.type}")

    def baseline():
        m = build_model(cfg).fit(Xt, yt)
        metric_value(metric, yn, predict_for_metric(m, Xn, task))

    champion = build_model(cfg).fit(*data.make_xy(batches[names[0]], cfg))
    challenger = build_model(cfg).fit(Xt, yt)
    s_ch, s_cp = predict_for_metric(challenger, Xn, task), predict_for_metric(champion, Xn, task)

    def backtest():
        run_backtest(yn.to_numpy(), s_ch, s_cp, new[cfg.data.time_column], metric, higher, cfg.backtest)
        for sc in cfg.promotion.slices:
            slice_scores(new[sc.column], yn.to_numpy(), s_ch, s_cp, metric, higher, sc)

    drift_no_html = cfg.drift.model_copy(update={"report_html": False})
    steps = {
        "baseline: fit + score": baseline,
        "quality gate (GX)": lambda: quality.validate(batches[names[4]], cfg.suite_path),
        "drift (Evidently, no HTML)": lambda: detect_drift(
            train_df, new, cfg.features.numeric, cfg.features.categorical, drift_no_html
        ),
        "drift (Evidently, HTML)": lambda: detect_drift(
            train_df, new, cfg.features.numeric, cfg.features.categorical, cfg.drift
        ),
        f"back-test ({cfg.backtest.bootstrap} resamples + slices)": backtest,
    }
    results = {name: measure(fn, args.repeat) for name, fn in steps.items()}
    base_s, base_mb = results["baseline: fit + score"]
    print(f"\n{'step':<42} {'seconds':>8} {'x base':>7} {'peak MB':>8} {'x base':>7}")
    for name, (s, mb) in results.items():
        print(f"{name:<42} {s:8.2f} {s / base_s:7.2f} {mb:8.1f} {mb / base_mb:7.2f}")


if __name__ == "__main__":
    main()
