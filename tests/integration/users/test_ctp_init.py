"""`ctp init` on a generated dataset: a config that passes `ctp config validate`, a GX suite that passes on the data
it was profiled from and fails on a broken copy, leaky columns excluded and named, and a pipeline that lands and
trains as written. Real GX and MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from users_support import run_cycle

from ctpipeline.steps.context import Pipeline

from conftest import run_ctp

ctp = run_ctp  # the CLI in-process: (exit code, stdout + stderr)

pytestmark = pytest.mark.integration


def shop_sales(n: int = 4000, seed: int = 3) -> pd.DataFrame:
    """A monthly regression the project has never seen: daily orders of a shop over a year, naive timestamps."""
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, n), unit="min")
    store = rng.choice(["north", "south", "east", "west", "online"], n)
    price = np.round(rng.gamma(4, 5, n), 2)
    items = rng.integers(1, 12, n)
    sales = np.round(price * items * np.where(store == "online", 0.9, 1.0) + rng.normal(0, 5, n), 2)
    price[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "order_id": rng.permutation(n) + 100000,  # an identifier
            "ordered": ts,
            "store": store,
            "price": price,
            "items": items,
            "sales": sales,
            "sales_net": sales * 0.8,  # derived from the target
            "refund_amount_after": np.where(rng.random(n) < 0.1, sales, 0.0),  # known only after the sale
            "shipped": ts + pd.to_timedelta(rng.integers(1, 72, n), unit="h"),  # after the event
        }
    ).sort_values("ordered", ignore_index=True)


def test_ctp_init_writes_a_config_and_suite_that_work_as_written(tmp_path):
    data = tmp_path / "data" / "shop-sales.parquet"
    data.parent.mkdir()
    df = shop_sales()
    df.to_parquet(data)
    rc, out = ctp("init", "--data", str(data), "--target", "sales", "--out-dir", str(tmp_path))
    assert rc == 0, out
    cfg_file, suite_file = tmp_path / "configs" / "shop-sales.yaml", tmp_path / "expectations" / "shop-sales.json"
    assert cfg_file.exists() and suite_file.exists()
    cfg = yaml.safe_load(cfg_file.read_text())
    assert cfg["data"]["time_column"] == "ordered" and cfg["data"]["granularity"] == "month"
    assert cfg["target"] == {"column": "sales", "task": "regression"} and cfg["evaluation"]["metric"] == "rmse"
    assert set(cfg["features"]["exclude"]) == {"sales_net", "refund_amount_after", "shipped"}
    assert set(cfg["features"]["numeric"]) == {"price", "items"} and cfg["features"]["categorical"] == ["store"]
    for leak in ("sales_net", "refund_amount_after", "shipped"):
        assert f"LEAKY? {leak!r}" in out and f"LEAKY? {leak!r}" in cfg_file.read_text()  # said, and in the file
    assert "'order_id' not a feature" in out
    assert ctp("init", "--data", str(data), "--target", "sales", "--out-dir", str(tmp_path))[0] == 2  # no overwrite

    rc, out = ctp("config", "validate", str(cfg_file))
    assert rc == 0, out
    rc, out = ctp("check", "--config", str(cfg_file), "--data", str(data))
    assert rc == 0, out
    broken = df.drop(columns=["store"]).assign(
        price=df["price"] * 1000, items=np.where(df.index % 3, None, df["items"])
    )
    broken.to_parquet(tmp_path / "broken.parquet")
    rc, out = ctp("check", "--config", str(cfg_file), "--data", str(tmp_path / "broken.parquet"))
    assert rc == 3, out
    for failed in ("expect_column_to_exist(store)", "expect_column_values_to_be_between(price)", "(items)"):
        assert failed in out, out

    # as written, the pipeline lands its source and trains on it
    state = tmp_path / "state"
    assert ctp("land", "--config", str(cfg_file), "--state-dir", str(state))[0] == 0
    p = Pipeline.open(cfg_file, state)
    assert len(list(p.landing_dir.glob("*.parquet"))) == 12
    assert run_cycle(p).gate == "passed"
    second = run_cycle(p)
    assert second.gate == "passed" and second.status == "promoted", second.reasons


def test_ctp_init_on_a_binary_text_target_and_a_folder(tmp_path):
    df = shop_sales(2500, seed=4)
    df["big"] = np.where(df["sales"] > df["sales"].median() * 2, "yes", "no")
    folder = tmp_path / "orders"
    folder.mkdir()
    for month, part in df.groupby(df["ordered"].dt.month):
        part.drop(columns=["sales", "sales_net"]).to_csv(folder / f"2021-{month:02d}.csv", index=False)
    rc, out = ctp("init", "--data", str(folder), "--target", "big", "--out-dir", str(tmp_path))
    assert rc == 0, out
    cfg = yaml.safe_load((tmp_path / "configs" / "orders.yaml").read_text())
    assert cfg["target"] == {"column": "big", "task": "classification", "positive_when": {"==": "yes"}}
    assert cfg["source"]["path"] == "../orders" and cfg["evaluation"]["metric"] == "roc_auc"
    assert ctp("config", "validate", str(tmp_path / "configs" / "orders.yaml"))[0] == 0
    rc, out = ctp("check", "--config", str(tmp_path / "configs" / "orders.yaml"), "--data", str(folder))
    assert rc == 0, out
    rc, out = ctp("init", "--data", str(folder), "--target", "nope", "--out-dir", str(tmp_path / "x"))
    assert rc == 1 and "'nope' is not in the data" in out
