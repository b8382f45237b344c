"""`ctp init --data FILE_OR_FOLDER --target COLUMN`: a starting pipeline config and a GX suite profiled from the
data, with likely leaky columns excluded and a list of what to review before the first replay."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def add_command(sub) -> None:
    sp = sub.add_parser("init", help="write a starting config and a GX suite profiled from a data file or folder")
    sp.add_argument("--data", "-d", required=True, type=Path, help=".parquet/.csv file, or a folder of period files")
    sp.add_argument("--target", "-t", required=True, help="the column to predict")
    sp.add_argument("--time-column", help="the event-time column (default: the first timestamp column)")
    sp.add_argument("--name", help="pipeline name (default: from the data file or folder)")
    sp.add_argument("--out-dir", type=Path, default=Path("."), help="writes configs/ and expectations/ here (.)")
    sp.add_argument("--force", action="store_true", help="overwrite an existing config or suite")
    sp.set_defaults(func=cmd_init)


def config_for(p, name: str, data_path: str, suite_path: str) -> dict:
    from ctpipeline.core.onboarding import rows_per_period

    metric = "roc_auc" if p.task == "classification" else "rmse"
    target = {"column": p.target, "task": p.task}
    if p.positive_when:
        target["positive_when"] = p.positive_when
    features = {"numeric": p.numeric, "categorical": p.categorical, "datetime_parts": p.datetime_parts}
    return {
        "name": name,
        "description": f"{p.task} of {p.target!r} (starting config from `ctp init`: review it)",
        "source": {"kind": "file", "path": data_path},
        "data": {"time_column": p.time_column, "granularity": p.granularity, "timezone": "UTC"},
        "target": target,
        "features": {**features, "exclude": sorted(p.leaky)},
        "model": {"type": "hist_gradient_boosting", "params": {"max_iter": 200}},
        "training": {"window_batches": 3, "min_train_rows": rows_per_period(p)},
        "evaluation": {"metric": metric},
        "triggers": {"every_batch": True},
        "promotion": {"min_margin": 0.0, "noise_aware": True, "cold_start": "promote"},
        "quality": {"suite": suite_path},
    }


def review_lines(p, source: Path, rows: int) -> list[str]:
    lines = [f"profiled {rows} rows of {source}; review before the first replay:"]
    lines += [f"  - {n}" for n in p.notes]
    lines += [
        f"  - LEAKY? {c!r} excluded: {why} (re-add it only if it is known at prediction time)"
        for c, why in p.leaky.items()
    ]
    lines += [f"  - {c!r} not a feature: {why}" for c, why in p.excluded.items()]
    lines += [
        f"  - features: {len(p.numeric)} numeric, {len(p.categorical)} categorical, time parts {p.datetime_parts}",
        "  - data.timezone is UTC: set the zone periods and hours should be cut in (e.g. America/New_York)",
        "  - the suite's ranges and category sets come from this sample, with margins: tighten or widen them",
    ]
    return lines


def cmd_init(args) -> int:
    import yaml

    from ctpipeline.core.data import utc_times
    from ctpipeline.core.onboarding import propose
    from ctpipeline.core.suite_profile import profile_suite
    from ctpipeline.errors import DataError
    from ctpipeline.store.tables import read_table

    df = read_table(args.data, args.time_column)
    try:
        p = propose(df, args.target, args.time_column)
    except ValueError as exc:
        raise DataError(f"{args.data}: {exc}") from None
    df = utc_times(df, p.time_column)  # a guessed time column held as text is parsed too
    name = args.name or (args.data.stem if args.data.is_file() else args.data.name).replace(" ", "-")
    configs, suites = args.out_dir / "configs", args.out_dir / "expectations"
    cfg_file, suite_file = configs / f"{name}.yaml", suites / f"{name}.json"
    for f in (cfg_file, suite_file):
        if f.exists() and not args.force:
            print(f"error: {f} exists; pass --force to overwrite it", file=sys.stderr)
            return 2
    numeric, categorical = p.numeric, p.categorical
    suite = profile_suite(name, df, p.time_column, p.target, numeric, categorical, max(1, p.min_period_rows // 10))
    data_rel = os.path.relpath(args.data.resolve(), configs.resolve())
    cfg = config_for(p, name, data_rel, os.path.relpath(suite_file.resolve(), configs.resolve()))
    configs.mkdir(parents=True, exist_ok=True)
    suites.mkdir(parents=True, exist_ok=True)
    suite_file.write_text(json.dumps(suite, indent=2, default=str) + "\n", encoding="utf-8")
    header = "\n".join(f"# {line}" for line in review_lines(p, args.data, len(df)))
    cfg_file.write_text(header + "\n" + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    print("\n".join(review_lines(p, args.data, len(df))))
    print(f"\nwrote {cfg_file} and {suite_file} ({len(suite['expectations'])} expectations)")
    print(f"next: ctp config validate {cfg_file} && ctp check --config {cfg_file} --data {args.data}")
    return 0
