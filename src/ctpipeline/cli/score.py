"""`ctp score`: score a Parquet/CSV file with the champion (or a given version), writing the rows plus a score."""

from __future__ import annotations

import sys
from pathlib import Path

from ctpipeline.cli.common import open_pipeline


def add_command(sub, pipeline_options) -> None:
    sp = sub.add_parser("score", help="score a Parquet/CSV file with the champion; write the rows plus a score column")
    pipeline_options(sp)
    sp.add_argument("--input", "-i", required=True, type=Path, help="rows to score (.parquet or .csv, or a folder)")
    sp.add_argument("--output", "-o", required=True, type=Path, help="where to write them (.parquet or .csv)")
    sp.add_argument("--version", help="score with this registered version instead of the champion")
    sp.add_argument("--column", default="score", help="name of the score column (default: %(default)s)")
    sp.set_defaults(func=cmd_score)


def cmd_score(args) -> int:
    from ctpipeline.steps.score import score_rows
    from ctpipeline.store.tables import read_table, write_table

    p = open_pipeline(args, read_only=True)
    if args.input.resolve() == args.output.resolve():
        print("error: --output must not overwrite --input", file=sys.stderr)
        return 2
    df = read_table(args.input)
    out, ref = score_rows(p, df, args.version, args.column)
    write_table(out, args.output)
    what = "probability of the positive class" if p.cfg.target.task == "classification" else "prediction"
    source = f"version {args.version}" if args.version else f"{p.name}@champion"
    print(f"scored {len(out)} rows with {ref.uri} ({source}): column {args.column!r} = {what}")
    print(f"wrote {args.output}")
    return 0
