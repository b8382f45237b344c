"""`ctp`: the command-line entry point. `main(argv) -> int` so tests can call it.

Exit codes: 0 success, 1 runtime error (bad data, registry problem), 2 bad usage or bad config,
3 the cycle ran and rejected the batch at the quality gate (`ctp run` only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from ctpipeline.cli.common import open_pipeline as _pipeline
from ctpipeline.cli.common import setup_process as _setup
from ctpipeline.cli.common import state_paths as _paths
from ctpipeline.errors import CtpError

EXIT_REJECTED = 3


# --------------------------------------------------------------------------- config


def cmd_config_validate(args) -> int:
    from ctpipeline.config.schema import load_config
    from ctpipeline.core.models import check_model_params
    from ctpipeline.adapters.gx import load_suite

    from ctpipeline.errors import ConfigError

    rc = 0
    for f in args.files:  # check every file, report each
        try:
            cfg = load_config(f)
            check_model_params(cfg, f)
            suite = load_suite(cfg.suite_path)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            rc = exc.exit_code
            continue
        print(f"{f}: OK (pipeline {cfg.name!r}, {cfg.target.task} on {cfg.target.column!r}, model {cfg.model.type}, "
              f"suite {suite.get('name')!r} with {len(suite.get('expectations', []))} expectations, "
              f"hash {cfg.config_hash()})")
    return rc


def cmd_config_schema(args) -> int:
    from ctpipeline.config.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


# --------------------------------------------------------------------------- data


def cmd_land(args) -> int:
    from ctpipeline.core import data

    p = _pipeline(args)
    if p.cfg.source is None:
        raise CtpError(f"{args.config}: no 'source' section; drop Parquet batch files into {p.landing_dir} instead")
    t0 = time.perf_counter()
    df = data.load_source(p.cfg.source, p.cfg.data, p.cfg.config_dir)
    batches = data.split_batches(df, p.cfg.data)
    written = data.land(batches, p.landing_dir, overwrite=args.overwrite)
    print(f"landed {len(written)} new batch files ({len(batches)} periods, {len(df)} rows) in {p.landing_dir} "
          f"in {time.perf_counter() - t0:.1f}s")
    return 0


# --------------------------------------------------------------------------- cycles


def _cycles(args, paths, n: int | None, trigger: str) -> list[dict]:
    """Run up to n cycles (None: until no batch is left) in this process: one Prefect server start."""
    from ctpipeline.flow import continuous_training

    results = []
    i = 0
    while n is None or i < n:
        t0 = time.perf_counter()
        state = continuous_training(config=str(Path(args.config).resolve()), state_dir=str(paths.root),
                                    trigger=trigger, return_state=True)
        res = state.result(raise_on_failure=True)
        if res["status"] == "no-batch":
            if i == 0:
                print("no new batch in the landing folder: nothing to do")
            break
        i += 1
        results.append(res)
        total = f"/{n}" if n else ""
        chal = res.get("challenger_metric")
        metric = f" {res['metric']}={chal:.4f}" if chal is not None else ""
        print(f"[{i}{total}] batch {res['batch']}: {res['status']}{metric} "
              f"(champion v{res.get('champion_version_after') or '-'}, {time.perf_counter() - t0:.1f}s)", flush=True)
        for r in res.get("reasons", []):
            print("      " + r.replace("\n", "\n      "), flush=True)
    return results


def _check_config(args) -> None:
    """Fail fast, before a Prefect server starts, when the config is broken."""
    from ctpipeline.config.schema import load_config
    from ctpipeline.core.models import check_model_params

    check_model_params(load_config(args.config), args.config)


def cmd_run(args) -> int:
    _check_config(args)
    paths = _setup(args, flows=True)
    results = _cycles(args, paths, 1, args.trigger)
    if results and results[0]["status"] == "quarantined":
        return EXIT_REJECTED
    return 0


def cmd_replay(args) -> int:
    from ctpipeline.core.report import REPLAY_COLUMNS, SERVED_COLUMNS, replay_rows, served_comparison, table

    _check_config(args)
    paths = _setup(args, flows=True)
    t0 = time.perf_counter()
    results = _cycles(args, paths, args.batches, "replay")
    if results:
        print()
        print(table(replay_rows(results), REPLAY_COLUMNS))
        rows, summary = served_comparison(results)
        if rows:
            metric = results[-1]["metric"]
            print(f"\nServed model's {metric} on each month, against two baselines scored on the same months:")
            print(table(rows, SERVED_COLUMNS))
            if summary["months"]:
                print(f"average over {summary['months']} months: policy {summary['served']:.4f} "
                      f"({summary['promotions']} promotions), never retrain {summary['never']:.4f}, "
                      f"always promote {summary['always']:.4f} ({summary['always_promote_promotions']} promotions)")
        print(f"\n{len(results)} batches in {time.perf_counter() - t0:.0f}s; state in {paths.root}")
    _print_ui_hint(paths)
    return 0


def cmd_demo(args) -> int:
    args.overwrite = False
    cmd_land(args)
    return cmd_replay(args)


def cmd_status(args) -> int:
    from ctpipeline.core.report import table

    p = _pipeline(args)
    for alias in ("champion", "challenger"):
        ref = p.registry.get_alias(alias)
        print(f"{alias:<11} {('v' + ref.version + '  ' + ref.uri) if ref else '(none)'}")
    recs = p.batch_log.records()
    print(f"\nbatches processed: {len(recs)} (log: {p.batch_log.path})")
    if recs:
        print(table(recs[-20:], [("batch", "batch"), ("status", "status"), ("outcome", "outcome"),
                                 ("rows", "rows"), ("champion_version", "champion"), ("at", "at")]))
    return 0


# --------------------------------------------------------------------------- promotion history


def cmd_history(args) -> int:
    from ctpipeline.store.ledger import Ledger
    from ctpipeline.core.report import table

    p = _pipeline(args)
    rows = Ledger(p.ledger_path).rows()
    if not rows:
        print(f"no champion moves recorded yet ({p.ledger_path})")
        return 0
    for r in rows:
        r["move"] = f"v{r['from_version'] or '-'} -> v{r['to_version']}"
    print(table(rows, [("at", "at"), ("action", "action"), ("move", "champion"), ("trigger", "trigger"),
                       ("actor", "by"), ("reason", "reason")]))
    return 0


def cmd_rollback(args) -> int:
    from ctpipeline.steps import pipeline

    p = _pipeline(args)
    old, new = pipeline.rollback(p, args.to_version, args.reason)
    print(f"{p.name}: champion rolled back from v{old} to v{new} (models:/{p.name}@champion); "
          f"v{old} is now 'previous'")
    return 0


def cmd_approve(args) -> int:
    from ctpipeline.steps import pipeline

    p = _pipeline(args)
    v = pipeline.approve(p, args.reason)
    print(f"{p.name}: v{v} approved and promoted to champion")
    return 0


def cmd_reject(args) -> int:
    from ctpipeline.steps import pipeline

    p = _pipeline(args)
    v = pipeline.reject(p, args.reason)
    print(f"{p.name}: v{v} rejected; the champion is unchanged")
    return 0


# --------------------------------------------------------------------------- UIs


def _print_ui_hint(paths) -> None:
    print("\nLook at the results:")
    print(f"  MLflow UI:  .venv/bin/ctp ui mlflow    (= mlflow ui --backend-store-uri sqlite:///{paths.mlflow_db})")
    print(f"  Prefect UI: .venv/bin/ctp ui prefect   (= PREFECT_HOME={paths.prefect_home} prefect server start)")


def cmd_ui(args) -> int:
    from ctpipeline.env import configure_environment

    paths = _paths(args)
    configure_environment(paths)
    bindir = Path(sys.executable).parent
    if args.which == "mlflow":
        cmd = [str(bindir / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{paths.mlflow_db}",
               "--host", args.host, "--port", str(args.port or 5000)]
    else:
        cmd = [str(bindir / "prefect"), "server", "start", "--host", args.host, "--port", str(args.port or 4200)]
    print("$ " + " ".join(cmd), flush=True)
    if shutil.which(cmd[0]) is None:
        raise CtpError(f"{cmd[0]} not found; run `make venv` first")
    os.execv(cmd[0], cmd)
    return 0  # unreachable


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ctp", description="ctpipeline: continuous training with Prefect, MLflow and GX.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, config=True):
        if config:
            sp.add_argument("--config", "-c", default="configs/flights.yaml", help="pipeline YAML (default: %(default)s)")
        sp.add_argument("--state-dir", help="embedded state folder (default: $CTP_HOME or .ctp)")
        sp.add_argument("--verbose", "-v", action="store_true", help="debug logging")

    c = sub.add_parser("config", help="validate configs or print their JSON schema")
    csub = c.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    v = csub.add_parser("validate", help="check config files (exit 2 with file, key and reason if invalid)")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.set_defaults(func=cmd_config_validate)
    s = csub.add_parser("schema", help="print the JSON schema of pipeline configs (for editor completion)")
    s.set_defaults(func=cmd_config_schema)

    def command(name: str, help: str, func):
        sp = sub.add_parser(name, help=help)
        common(sp)
        sp.set_defaults(func=func)
        return sp

    command("land", "cut the configured source into period batches in the landing folder", cmd_land).add_argument(
        "--overwrite", action="store_true", help="rewrite batch files that already exist")
    command("run", "run one cycle on the next unprocessed batch (exit 3 if it was quarantined)", cmd_run).add_argument(
        "--trigger", default="manual", help="recorded on the run (default: %(default)s)")
    command("replay", "run cycles on the next N batches in one process, then print a table", cmd_replay).add_argument(
        "--batches", "-n", type=int, default=None, help="how many batches (default: all remaining)")
    command("demo", "land the configured source, then replay it (README's first command)", cmd_demo).add_argument(
        "--batches", "-n", type=int, default=None, help="how many batches (default: all)")
    command("status", "show champion/challenger aliases and processed batches", cmd_status)
    command("history", "print the ledger of champion moves (promotions, approvals, rollbacks)", cmd_history)
    sp = command("rollback", "point the champion back at the previous champion, and record it", cmd_rollback)
    sp.add_argument("--to-version", help="roll back to this version instead of the 'previous' alias")
    sp.add_argument("--reason", default="manual rollback", help="recorded in the ledger")
    command("approve", "promote the challenger awaiting approval (promotion.approval: manual)",
            cmd_approve).add_argument("--reason", default="approved by hand", help="recorded in the ledger")
    command("reject", "reject the challenger awaiting approval; the champion stays", cmd_reject).add_argument(
        "--reason", default="rejected by hand", help="recorded on the model version")

    from ctpipeline.cli import webhook as webhook_cli

    webhook_cli.add_commands(sub)

    sp = sub.add_parser("ui", help="start the MLflow or Prefect UI on the embedded stores")
    sp.add_argument("which", choices=["mlflow", "prefect"])
    sp.add_argument("--state-dir", help="embedded state folder (default: $CTP_HOME or .ctp)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int)
    sp.set_defaults(func=cmd_ui)
    return ap


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "batches", None) is not None and args.batches < 1:
        parser.error("--batches must be at least 1")
    try:
        return args.func(args)
    except CtpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entrypoint() -> None:
    try:
        sys.exit(main())
    except BrokenPipeError:  # `ctp history | head`: the reader went away; not an error
        sys.stderr.close()
        sys.exit(0)
