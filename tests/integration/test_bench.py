"""bench/: the harness's arithmetic, the floors against the libraries, and one tiny run of the command itself.

The benchmark's figures are not asserted (they depend on the machine): these tests check that the command runs,
writes its JSON and finds the project's verdicts equal to naive library use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flights_corruptions import CORRUPTIONS

from conftest import make_flights_like

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from floors import floor_drift, floor_gate  # noqa: E402
from harness import Case, interleave, memory, summarise  # noqa: E402


def test_ratios_are_taken_round_by_round_and_a_capped_baseline_stands_for_every_round():
    case = Case("s", "c", {"base": lambda: None, "cand": lambda: None})
    case.times = {"base": [2.0, 4.0, 2.0], "cand": [1.0, 1.0, 1.0]}
    out = summarise(case)
    assert out["cand"]["ratio_to_baseline_median"] == 0.5  # 1/2, 1/4, 1/2
    assert (out["base"]["min_s"], out["base"]["median_s"], out["base"]["runs"]) == (2.0, 2.0, 3)
    case.times = {"base": [10.0], "cand": [1.0, 2.0, 3.0]}
    assert summarise(case)["cand"]["ratio_to_baseline_median"] == 0.2


def test_a_contender_over_the_cap_runs_once_and_memory_is_a_separate_pass():
    import time

    calls = {"slow": 0, "fast": 0}

    def slow():
        calls["slow"] += 1
        time.sleep(0.05)

    def fast():
        calls["fast"] += 1

    case = interleave(Case("s", "c", {"slow": slow, "fast": fast}), rounds=3, cap_s=0.01, log=lambda m: None)
    assert calls == {"slow": 1, "fast": 3} and len(case.times["fast"]) == 3
    assert "run once" in case.notes[0]
    memory(case, skip={"slow"}, log=lambda m: None)
    assert calls["fast"] == 5  # one run for the RSS peak, one under tracemalloc
    assert "peak_traced_mb" in case.memory["fast"] and "skipped" in case.memory["slow"]


@pytest.fixture(scope="module")
def batch():
    return make_flights_like(3000, seed=4)


@pytest.mark.parametrize("name", ["clean", *sorted(CORRUPTIONS)])
def test_the_gate_floor_fails_what_gx_fails_on_the_flights_suite(batch, name):
    from ctpipeline.adapters.gx import validate

    suite = ROOT / "expectations" / "flights.json"
    df = batch if name == "clean" else CORRUPTIONS[name](batch)
    gx_failed = {(f.expectation_type, f.column) for f in validate(df, suite).failed}
    assert floor_gate(df, json.loads(suite.read_text())) == gx_failed


def test_the_drift_floor_finds_the_seasonal_drift(flights_cfg):
    numeric, categorical = list(flights_cfg.features.numeric), list(flights_cfg.features.categorical)
    january, july = make_flights_like(6000, seed=1), make_flights_like(6000, seed=2, start="2013-07-01")
    out = floor_drift([january.iloc[:3000], january.iloc[3000:]], july, numeric, categorical, 4000, seed=0)
    assert {"temp", "dewp"} <= {c for c, (_, _, drifted) in out.items() if drifted}
    assert not out["carrier"][2] and out["temp"][0] == "wasserstein"


def test_the_command_runs_and_finds_the_verdicts_of_naive_library_use(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "bench" / "run.py"), "--only", "gate,drift", "--rows", "3000", "--rounds", "1"]
    cmd += ["--no-memory", "--cache-dir", str(tmp_path / "cache"), "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    cases = {(c["section"], c["case"]): c for c in report["cases"]}
    assert set(cases) == {("gate", "3,000 rows clean"), ("gate", "3,000 rows broken"), ("drift", "3,000 + 3,000 rows")}
    for case in cases.values():
        assert set(case["results"]) == {case["verdicts"]["reference"], "project", "numpy floor"}
        assert case["verdicts"]["same_as_reference"]["project"], case["verdicts"]
    assert "gate: 3,000 rows broken" in proc.stdout and "3,000" in json.dumps(report["gate_plus_drift"])
