"""`ctp check --data FILE`: the pipeline's quality gate (GX suite) and model inputs checked on a sample file before
a replay, read with the same time convention as landed batches."""

from __future__ import annotations

import sys
from pathlib import Path

EXIT_REJECTED = 3


def add_command(sub, pipeline_options) -> None:
    sp = sub.add_parser(
        "check", help="run the quality gate on a sample file before a replay (exit 3 naming the failed expectations)"
    )
    pipeline_options(sp)
    sp.add_argument("--data", "-d", required=True, type=Path, help="sample .parquet or .csv file (or a folder)")
    sp.set_defaults(func=cmd_check)


def check_sample(cfg, path: Path):
    """(GX result, problems with the model inputs) for the sample at `path`."""
    from ctpipeline.adapters.gx import validate
    from ctpipeline.core.data import labelled, make_xy
    from ctpipeline.errors import DataError
    from ctpipeline.store.tables import read_table

    df = read_table(path, cfg.data.time_column)
    result = validate(df, cfg.suite_path)
    problems = []
    try:
        make_xy(df, cfg)  # every feature present and numeric where declared
        if not len(labelled(df, cfg)):
            problems.append(f"no row has a label in {cfg.target.column!r}")
    except DataError as exc:
        problems.append(str(exc))
    return df, result, problems


def cmd_check(args) -> int:
    from ctpipeline.config import load_config
    from ctpipeline.core.data import period_names
    from ctpipeline.env import configure_logging

    configure_logging(getattr(args, "verbose", False))
    cfg = load_config(args.config)
    df, result, problems = check_sample(cfg, args.data)
    periods = sorted(set(period_names(df[cfg.data.time_column].dropna(), cfg.data.granularity, cfg.data.timezone)))
    span = f"{periods[0]}..{periods[-1]}" if len(periods) > 1 else (periods[0] if periods else "-")
    print(f"{args.data}: {len(df)} rows, {len(periods)} {cfg.data.granularity} period(s) {span}")
    print(f"suite {result.suite_name!r}: {result.summary()}")
    for problem in problems:
        print(f"model inputs: {problem}")
    if result.success and not problems:
        print(f"OK: batches like this one pass the gate of pipeline {cfg.name!r}")
        return 0
    print("REJECTED: a batch like this one would be quarantined", file=sys.stderr)
    return EXIT_REJECTED
