"""The rules a batch must meet beyond its suite (core.batch_checks), and the training step's refusals, on small
frames: names that are periods, rows inside their period and not from the future, usable model inputs."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from ctpipeline.core.batch_checks import name_problem, time_problems, usability_problems
from ctpipeline.core.results import Skipped
from ctpipeline.steps.train import train_challenger

from conftest import make_flights_like

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TZ = "America/New_York"


@pytest.mark.parametrize(
    "name, granularity, fragment",
    [
        ("garbage", "month", "is not a month period"),
        ("2013-13", "month", "is not a month period"),
        ("2013-05-01", "month", "is not a month period"),
        ("2013-02-30", "day", "is not a day period"),
        ("2013-W54", "week", "is not a week period"),
        ("2099-01", "month", "has not begun yet"),
        ("2026-07", "month", "has not begun yet"),
        ("2026-W30", "week", "has not begun yet"),
        ("13", "year", "is not a year period"),
        ("2013-05", "year", "is not a year period"),
        ("2099", "year", "has not begun yet"),
    ],
)
def test_names_that_are_no_period_that_has_begun_are_refused(name, granularity, fragment):
    assert fragment in (name_problem(name, granularity, TZ, NOW) or "")


@pytest.mark.parametrize(
    "name, granularity",
    [("2013-05", "month"), ("2026-06", "month"), ("2013-W09", "week"), ("2013", "year"), ("2026", "year")],
)
def test_period_names_are_accepted(name, granularity):
    assert name_problem(name, granularity, TZ, NOW) is None


def test_rows_outside_the_named_period_are_counted_with_an_example():
    df = make_flights_like(600, seed=1, start="2013-06-01")
    dec = make_flights_like(40, seed=2, start="2013-12-01")
    problems = time_problems(pd.concat([df, dec]), "2013-06", "time_hour", "month", TZ, NOW)
    assert len(problems) == 1 and problems[0].startswith("40 of 640 rows are outside period 2013-06")
    assert "(period 2013-12)" in problems[0] and TZ in problems[0]


def test_the_period_is_cut_in_the_configured_time_zone():
    df = make_flights_like(300, seed=1, start="2013-06-01")
    # 01:00 UTC on July 1st is still June 30th in New York: inside 2013-06 there, outside in UTC
    late = df.head(1).assign(time_hour=pd.Timestamp("2013-07-01 01:00", tz="UTC"))
    both = pd.concat([df, late])
    assert time_problems(both, "2013-06", "time_hour", "month", TZ, NOW) == []
    assert "1 of 301 rows" in time_problems(both, "2013-06", "time_hour", "month", "UTC", NOW)[0]


def test_null_future_and_text_timestamps_are_refused():
    df = make_flights_like(300, seed=1, start="2026-06-01")
    df.loc[:4, "time_hour"] = pd.NaT
    df.loc[10:12, "time_hour"] = pd.Timestamp("2026-06-30 23:00", tz=TZ)  # still June, but after `now`
    now = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # 21:00 on June 30th in New York
    problems = time_problems(df, "2026-06", "time_hour", "month", TZ, now)
    assert len(problems) == 2, problems
    assert problems[0].startswith("5 of 300 rows have no time_hour")
    assert problems[1].startswith("3 rows are in the future (after 2026-07-01 01:00 UTC)")
    text = df.assign(time_hour=df["time_hour"].astype(str))
    assert "holds object values, not timestamps" in time_problems(text, "2026-06", "time_hour", "month", TZ, NOW)[0]


@pytest.fixture(scope="module")
def june():
    return make_flights_like(1200, seed=4, start="2013-06-01")


def _one(flights_cfg, df) -> str:
    problems = usability_problems(df, flights_cfg)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda d: d.head(10).assign(wind_gust=20.0), "only 10 rows (data.min_batch_rows is 100)"),
        (lambda d: d.drop(columns=["temp"]), "columns ['temp'] that the config uses are missing"),
        (lambda d: d.assign(temp=np.nan), "feature 'temp' is null in every row"),
        (lambda d: d.assign(temp=d["temp"].where(d.index > 3, np.inf)), "feature 'temp' holds 4 infinite values"),
        (lambda d: d.assign(temp="warm"), "feature 'temp' is declared numeric but holds object values (e.g. 'warm')"),
        (lambda d: d.assign(distance=d["distance"].astype(str)), "'distance' is declared numeric but holds object"),
        (lambda d: d.assign(carrier=7), "feature 'carrier' is declared categorical but holds int64 values"),
        (lambda d: d.assign(carrier=b"\xff\xfe"), "holds 1200 values that are not UTF-8 text"),
        (lambda d: d.assign(arr_delay=np.nan), "target 'arr_delay' is null in every row"),
        (lambda d: d.assign(arr_delay=100.0), "the label is 1 in all 1200 labelled rows (a single class)"),
        (lambda d: d.assign(arr_delay=d["arr_delay"].clip(upper=15)), "(a single class)"),
        (lambda d: d.assign(arr_delay=d["arr_delay"].astype(str)), "holds object values (e.g. '"),
    ],
    ids=[
        "ten-rows",
        "missing",
        "all-null",
        "inf",
        "text",
        "numbers-as-text",
        "int-categories",
        "not-utf8",
        "null-label",
        "constant-label",
        "one-class",
        "text-label",
    ],
)
def test_unusable_batches_are_named_with_the_reason(flights_cfg, june, mutate, fragment):
    assert fragment in _one(flights_cfg, mutate(june.copy()))


def test_a_usable_batch_has_no_problem(flights_cfg, june):
    assert usability_problems(june, flights_cfg) == []


def test_a_0_1_target_without_positive_when_must_hold_0_and_1(flights_cfg, june):
    cfg = flights_cfg.model_copy(update={"target": flights_cfg.target.model_copy(update={"positive_when": None})})
    assert "must hold 0/1 labels" in _one(cfg, june)
    assert usability_problems(june.assign(arr_delay=(june["arr_delay"] > 15).astype(float)), cfg) == []


def test_the_training_step_refuses_an_unusable_window_instead_of_a_worse_model(flights_cfg):
    months = [make_flights_like(1500, seed=s, start=f"2013-0{m}-01") for s, m in ((1, 1), (2, 2))]
    new = make_flights_like(1500, seed=3, start="2013-03-01")
    broken = [months[0].assign(temp=np.nan), months[1].assign(temp=np.nan)]
    out = train_challenger(flights_cfg, "2013-03", new, broken, ["2013-01", "2013-02"])
    assert isinstance(out, Skipped) and "['temp'] are null in every row of the training window" in out.reason
    inf = [m.assign(distance=m["distance"].astype(float).where(m.index > 0, np.inf)) for m in months]
    out = train_challenger(flights_cfg, "2013-03", new, inf, ["2013-01", "2013-02"])
    assert isinstance(out, Skipped) and "infinite" in out.reason
    text_label = [m.assign(arr_delay=m["arr_delay"].astype(str)) for m in months]
    out = train_challenger(flights_cfg, "2013-03", new, text_label, ["2013-01", "2013-02"])
    assert isinstance(out, Skipped) and "training window 2013-01,2013-02 cannot be used" in out.reason
