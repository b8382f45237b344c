"""Gate and drift cases: the project against naive library use and the numpy floor, with the verdicts compared.

Gate, per size, on a clean batch and on a broken one (``several``: a dropped column, numbers as strings,
unknown categories, values out of range, a label mostly null, bad airport codes; tests/flights_corruptions.py):

* ``naive GX``: ``batch.validate(suite)`` on the whole frame, GX's default result format (SUMMARY);
* ``project``: ``ctpipeline.adapters.gx.validate`` (per-column groups, BOOLEAN_ONLY, details for what failed);
* ``numpy floor``: ``floors.floor_gate``, one vectorised pass per expectation.

Drift, per size: a reference window of three frames (January, as the champion's three training batches) against
a July batch of the same size, the flights config's features:

* ``naive Evidently``: ``Report([DataDriftPreset(columns=features)])`` on the concatenated window and the batch,
  every row (capped: above ``naive_max_rows`` it is not run);
* ``project``: ``ctpipeline.adapters.evidently.detect_drift(window, batch, ..., html=False)`` (10,000 sampled
  rows per side, one ValueDrift per column, the method by sample size);
* ``numpy floor``: ``floors.floor_drift``, numpy/scipy statistics on the same sampled rows.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd

from data import bench_suite, corrupt, flights
from floors import floor_drift, floor_gate
from harness import Case

__all__ = ["drift_cases", "finish", "gate_cases"]


def _naive_gate_failed(result) -> set:
    return {
        (r.expectation_config.type, r.expectation_config.kwargs.get("column")) for r in result.results if not r.success
    }


def _kept(store: dict, name: str, fn):
    """`fn`, keeping its last result in `store[name]` (the naive runs are too slow to run once more for verdicts)."""

    def run():
        store[name] = fn()
        return store[name]

    return run


def finish(case: Case) -> None:
    """After the timed rounds: the naive contender's verdict from its last run, compared with the others'."""
    pending = case.extra.pop("pending", None)
    if pending is None:
        return
    verdicts, kept, to_verdict, what = pending
    for name, result in kept.items():
        verdicts[name] = to_verdict(result)
    case.extra["verdicts"] = _compare(verdicts, what)


def gate_cases(rows: int, cache_dir: Path, work_dir: Path, naive_max_rows: int, log=print) -> list[Case]:
    from ctpipeline.adapters.gx import validate
    from ctpipeline.adapters.gx.context import batch_definition
    from ctpipeline.adapters.gx.suite import cached_suite

    suite_path = bench_suite(work_dir, 10_000_000)
    suite_dict = json.loads(suite_path.read_text())
    _, suite = cached_suite(suite_path)
    clean = flights(rows, 1, "2013-01-01", cache_dir, log)
    cases = []
    for label, df in (("clean", clean), ("broken", corrupt(clean, "several"))):
        contenders, kept = {}, {}
        if rows <= naive_max_rows:
            naive = lambda df=df: batch_definition().get_batch(batch_parameters={"dataframe": df}).validate(suite)  # noqa: E731
            contenders["naive GX"] = _kept(kept, "naive GX", naive)
        contenders["project"] = lambda df=df: validate(df, suite_path)
        contenders["numpy floor"] = lambda df=df: floor_gate(df, suite_dict)
        case = Case("gate", f"{rows:,} rows {label}", contenders, extra={"rows": rows, "batch": label})
        verdicts = {"project": {(f.expectation_type, f.column) for f in validate(df, suite_path).failed}}
        verdicts["numpy floor"] = floor_gate(df, suite_dict)
        if not kept and "naive GX" not in contenders:
            case.notes.append(f"naive GX not run above {naive_max_rows:,} rows (--naive-gate-max-rows)")
        case.extra["pending"] = (verdicts, kept, _naive_gate_failed, "failed_expectations")
        cases.append(case)
    return cases


def _compare(verdicts: dict[str, set], what: str) -> dict:
    """Each contender's verdict and whether it equals the reference (naive library use, else the project)."""
    ref_name = (
        "naive GX" if "naive GX" in verdicts else "naive Evidently" if "naive Evidently" in verdicts else "project"
    )
    ref = verdicts[ref_name]
    shown = {k: sorted([list(x) if isinstance(x, tuple) else x for x in v], key=str) for k, v in verdicts.items()}
    out = {"reference": ref_name, what: shown}
    out["same_as_reference"] = {k: v == ref for k, v in verdicts.items()}
    out["differences"] = {k: sorted(map(str, v ^ ref)) for k, v in verdicts.items() if v != ref}
    return out


def _naive_drift(window: list[pd.DataFrame], current: pd.DataFrame, numeric, categorical) -> set:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    features = [*numeric, *categorical]
    definition = DataDefinition(numerical_columns=list(numeric), categorical_columns=list(categorical))
    reference = pd.concat(window, ignore_index=True)[features]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset(columns=features)], include_tests=True).run(
            Dataset.from_pandas(current[features], data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
    raw = snapshot.dict()
    failed = {
        (t.get("metric_config") or {}).get("metric_id") for t in raw.get("tests", []) if "FAIL" in str(t.get("status"))
    }
    drifted = set()
    for m in raw.get("metrics", []):
        conf = m.get("config") or {}
        if str(conf.get("type", "")).endswith(":ValueDrift") and m.get("id") in failed:
            drifted.add(conf.get("column"))
    return drifted


def drift_cases(rows: int, cache_dir: Path, cfg, naive_max_rows: int, log=print) -> list[Case]:
    from ctpipeline.adapters.evidently import detect_drift

    numeric, categorical = list(cfg.features.numeric), list(cfg.features.categorical)
    january = flights(rows, 1, "2013-01-01", cache_dir, log)
    third = len(january) // 3
    window = [january.iloc[i * third : (i + 1) * third if i < 2 else None].reset_index(drop=True) for i in range(3)]
    current = flights(rows, 2, "2013-07-01", cache_dir, log)
    drift_cfg = cfg.drift.model_copy(update={"report_html": False})
    seed = cfg.training.seed

    def project():
        return detect_drift(window, current, numeric, categorical, drift_cfg, seed=seed, html=False)

    def floor():
        return floor_drift(window, current, numeric, categorical, drift_cfg.max_rows, seed)

    contenders, kept = {}, {}
    if rows <= naive_max_rows:
        naive = lambda: _naive_drift(window, current, numeric, categorical)  # noqa: E731
        contenders["naive Evidently"] = _kept(kept, "naive Evidently", naive)
    contenders.update({"project": project, "numpy floor": floor})
    case = Case("drift", f"{rows:,} + {rows:,} rows", contenders, extra={"rows": rows})
    verdicts = {"project": set(project().drifted_columns()), "numpy floor": {c for c, v in floor().items() if v[2]}}
    if "naive Evidently" not in contenders:
        case.notes.append(f"naive DataDriftPreset not run above {naive_max_rows:,} rows (--naive-drift-max-rows)")
    case.extra["pending"] = (verdicts, kept, lambda drifted: drifted, "drifted_columns")
    return [case]
