"""Onboarding a dataset the project has never seen (yearly blocks of a binary target, files dropped with naive
times): `ctp check` on a sample before a replay, one suite for both ways data arrives, `ctp status` keeping a
rejected batch in sight. Real GX and MLflow, no Prefect."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from users_support import run_cycle

from ctpipeline.core import data
from ctpipeline.steps.context import Pipeline
from ctpipeline.store import landing

from conftest import run_ctp

ctp = run_ctp  # the CLI in-process: (exit code, stdout + stderr)

pytestmark = pytest.mark.integration

SUITE = {
    "name": "blocks",
    "expectations": [
        # every feature is named by an expectation (`ctp config validate` asks for it)
        *({"type": "expect_column_to_exist", "kwargs": {"column": c}} for c in ("x", "n", "kind")),
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"}},
        # one convention (UTC-aware) for every arrival path: a bound with an offset holds for all of them
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {
                "column": "when",
                "min_value": "1970-01-01T00:00:00+00:00",
                "max_value": "2030-01-01T00:00:00+00:00",
            },
        },
    ],
}


def blocks(years: range, per_year: int = 300, seed: int = 0) -> pd.DataFrame:
    """Yearly blocks: naive timestamps (as a CSV export has them), an int feature, a float one, a 0/1 label."""
    rng = np.random.default_rng(seed)
    when = pd.to_datetime([f"{y}-01-01" for y in years for _ in range(per_year)])
    when = when + pd.to_timedelta(rng.integers(0, 360 * 24, len(when)), unit="h")
    x = rng.normal(size=len(when))
    n = rng.integers(0, 50, len(when))  # int64
    label = (x + 0.02 * n + rng.normal(0, 1, len(when)) > 0.5).astype("int64")
    return pd.DataFrame({"when": when, "x": x, "n": n, "kind": rng.choice(["a", "b"], len(when)), "label": label})


def write_config(tmp_path) -> str:
    (tmp_path / "blocks.json").write_text(json.dumps(SUITE))
    cfg = {
        "name": "blocks",
        "description": "Yearly blocks of a binary target.",
        "data": {"time_column": "when", "granularity": "year"},
        "target": {"column": "label", "task": "classification"},
        "features": {"numeric": ["x", "n"], "categorical": ["kind"], "datetime_parts": ["month"]},
        "model": {"type": "logistic_regression"},
        "training": {"window_batches": 2, "min_train_rows": 100},
        "triggers": {"every_batch": True},
        "backtest": {"windows": 2, "bootstrap": 50, "block": "none"},
        "quality": {"suite": "blocks.json"},
    }
    path = tmp_path / "blocks.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path)


def test_ctp_check_runs_the_suite_on_a_sample_file(tmp_path):
    cfg = write_config(tmp_path)
    sample = blocks(range(2000, 2002))
    sample.to_parquet(tmp_path / "sample.parquet")  # naive times
    sample.to_csv(tmp_path / "sample.csv", index=False)  # times as text
    for f in ("sample.parquet", "sample.csv"):
        rc, out = ctp("check", "--config", cfg, "--data", str(tmp_path / f))
        assert rc == 0, out
        assert "2 year period(s) 2000..2001" in out and "PASSED (5/5" in out
    broken = sample.drop(columns=["x"]).assign(when=sample["when"] + pd.DateOffset(years=40))
    broken.to_parquet(tmp_path / "broken.parquet")
    rc, out = ctp("check", "--config", cfg, "--data", str(tmp_path / "broken.parquet"))
    assert rc == 3
    assert "expect_column_to_exist(x)" in out and "expect_column_values_to_be_between(when)" in out
    assert "model inputs: feature column 'x' is missing" in out and "REJECTED" in out
    rc, out = ctp("check", "--config", cfg, "--data", str(tmp_path / "nope.parquet"))
    assert rc == 1 and "no such file" in out


def test_one_suite_passes_whether_batches_are_landed_or_dropped_and_status_keeps_rejections(tmp_path):
    cfg = write_config(tmp_path)
    state = tmp_path / "state"
    p = Pipeline.open(cfg, state)
    history = blocks(range(2000, 2003), seed=1)
    # 2000 and 2001 through `ctp land`'s path (source read, made UTC), 2002 dropped as a file with naive times
    landed = data.split_batches(data.utc_times(history[history["when"].dt.year < 2002], "when"), p.cfg.data)
    landing.land(landed, p.landing_dir)
    history[history["when"].dt.year == 2002].to_parquet(p.landing_dir / "2002.parquet")
    results = [run_cycle(p) for _ in range(3)]
    assert [r.gate for r in results] == ["passed"] * 3, [r.reasons for r in results]
    assert [r.batch for r in results] == ["2000", "2001", "2002"] and results[1].status == "promoted"

    # a rejected batch long ago must stay in sight among many accepted ones
    bad = blocks(range(2003, 2004), seed=2).drop(columns=["x"])
    bad.to_parquet(p.landing_dir / "2003.parquet")
    assert run_cycle(p).status == "quarantined"
    for year in range(2004, 2030):
        p.batch_log.append({"batch": str(year), "sha256": f"{year:064d}", "status": "accepted", "rows": 1})
    rc, out = ctp("status", "--config", cfg, "--state-dir", str(state))
    assert rc == 0 and "2003" in out and "rejected" in out
    assert "2002 " not in out and "older accepted batches not shown" in out
    rc, out = ctp("status", "--config", cfg, "--state-dir", str(state), "--all")
    assert rc == 0 and all(f"{y} " in out for y in range(2000, 2030))
