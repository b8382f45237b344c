"""`ctp`: the command-line entry point. `main(argv) -> int` so tests can call it.

Exit codes: 0 success, 1 runtime error (bad data, registry problem), 2 bad usage or bad config,
3 the cycle ran and rejected the batch at the quality gate (`ctp run` only).
"""

from __future__ import annotations

import argparse
import os
import sys

from ctpipeline.cli import champion, cycles, tools
from ctpipeline.errors import CtpError
from ctpipeline.exits import set_exit_code, skip_teardown


def _pipeline_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--config", "-c", help="pipeline YAML (default: $CTP_CONFIG; one of the two is required)")
    sp.set_defaults(needs_config=True)
    sp.add_argument("--state-dir", help="embedded state folder (default: $CTP_HOME or .ctp)")
    sp.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def _json_option(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--json", action="store_true", help="print one JSON document on stdout (docs/cli.md)")
    return sp


def _config_commands(sub) -> None:
    c = sub.add_parser("config", help="validate configs or print their JSON schema")
    csub = c.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    v = csub.add_parser("validate", help="check config files (exit 2 with file, key and reason if invalid)")
    v.add_argument("files", nargs="+", metavar="FILE")
    v.set_defaults(func=tools.cmd_config_validate)
    csub.add_parser("schema", help="print the JSON schema of pipeline configs (for editor completion)").set_defaults(
        func=tools.cmd_config_schema
    )


def _pipeline_commands(sub) -> None:
    def command(name: str, help: str, func, json: bool = False) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        _pipeline_options(sp)
        sp.set_defaults(func=func, json=False)
        return _json_option(sp) if json else sp

    command(
        "land", "cut the configured source into period batches in the landing folder", cycles.cmd_land
    ).add_argument("--overwrite", action="store_true", help="rewrite batch files that already exist")
    run = command(
        "run", "run one cycle on the next unprocessed batch (exit 3 if it was quarantined)", cycles.cmd_run, json=True
    )
    run.add_argument("--trigger", default="manual", help="recorded on the run (default: %(default)s)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="everything up to the decision: nothing registered, no alias moved, the batch neither recorded nor moved",
    )
    for name, help, func in (
        ("replay", "run cycles on the next N batches in one process, then print a table", cycles.cmd_replay),
        ("demo", "land the configured source, then replay it (README's first command)", cycles.cmd_demo),
    ):
        command(name, help, func, json=True).add_argument(
            "--batches", "-n", type=int, default=None, help="how many batches (default: all remaining)"
        )
    command(
        "release", "move a quarantined batch back to landing; the next run processes it", cycles.cmd_release
    ).add_argument("batch", metavar="BATCH", help="the batch name, e.g. 2013-05")
    command(
        "status", "show champion/challenger aliases and processed batches", champion.cmd_status, json=True
    ).add_argument("--all", action="store_true", help="list every batch (default: the last 20 and every rejected one)")
    from ctpipeline.cli import check, init, score

    score.add_command(sub, _pipeline_options)
    check.add_command(sub, _pipeline_options)
    init.add_command(sub)
    command(
        "history",
        "print the ledger of champion moves (promotions, approvals, rollbacks)",
        champion.cmd_history,
        json=True,
    )
    sp = command("rollback", "point the champion back at the previous champion, and record it", champion.cmd_rollback)
    sp.add_argument("--to-version", help="roll back to this version instead of the 'previous' alias")
    sp.add_argument("--reason", default="manual rollback", help="recorded in the ledger")
    command(
        "approve", "promote the challenger awaiting approval (promotion.approval: manual)", champion.cmd_approve
    ).add_argument("--reason", default="approved by hand", help="recorded in the ledger")
    command("reject", "reject the challenger awaiting approval; the champion stays", champion.cmd_reject).add_argument(
        "--reason", default="rejected by hand", help="recorded on the model version"
    )


def _server_commands(sub) -> None:
    sv = sub.add_parser("serve", help="serve one deployment per pipeline config with Prefect (blocks)")
    sv.add_argument(
        "--config",
        "-c",
        action="append",
        required=True,
        metavar="FILE",
        help="pipeline YAML; repeat for several pipelines",
    )
    sv.add_argument(
        "--cron",
        help="cron schedule for every served pipeline, e.g. '0 6 * * *' (default: each YAML's triggers.schedule)",
    )
    sv.add_argument("--limit", type=int, help="at most this many flow runs at once in this process")
    sv.add_argument("--state-dir", help="embedded state folder (default: $CTP_HOME or .ctp)")
    sv.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sv.set_defaults(func=cycles.cmd_serve)
    from ctpipeline.cli import migrate, stack, webhook

    webhook.add_commands(sub)
    stack.add_commands(sub)
    migrate.add_commands(sub)
    sp = sub.add_parser("ui", help="start the MLflow or Prefect UI on the embedded stores")
    sp.add_argument("which", choices=["mlflow", "prefect"])
    sp.add_argument("--state-dir", help="embedded state folder (default: $CTP_HOME or .ctp)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int)
    sp.set_defaults(func=tools.cmd_ui)
    sp = sub.add_parser(
        "prepare", help="build the empty MLflow and Prefect databases new state folders start from (make venv runs it)"
    )
    sp.add_argument("--force", action="store_true", help="build them again even if they exist")
    sp.set_defaults(func=tools.cmd_prepare)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ctp", description="ctpipeline: continuous training with Prefect, MLflow and GX.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _config_commands(sub)
    _pipeline_commands(sub)
    _server_commands(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "batches", None) is not None and args.batches < 1:
        parser.error("--batches must be at least 1")
    if getattr(args, "needs_config", False) and not args.config:
        args.config = os.environ.get("CTP_CONFIG")
        if not args.config:  # no silent default: a forgotten --config must not show another pipeline's state
            print(
                f"error: ctp {args.command}: no pipeline config: pass --config FILE or set CTP_CONFIG", file=sys.stderr
            )
            return 2
    try:
        return args.func(args)
    except CtpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        known = known_failure(exc)
        if known is None:
            raise
        print(f"error: {known}", file=sys.stderr)
        return 1


def known_failure(exc: BaseException) -> str | None:
    """One line for failures of the environment that have a clear cause (a database that is locked or corrupt, a
    file that cannot be written), found anywhere in the exception's chain; None for anything else (a bug: let
    the traceback show)."""
    import sqlite3

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
        for e in (exc, orig):
            if isinstance(e, sqlite3.Error):
                return f"database error: {e} (is another process holding the database, or is the file corrupt?)"
            if isinstance(e, OSError) and getattr(e, "strerror", None):
                return f"{e.strerror}: {e.filename}" if e.filename else str(e)
        exc = exc.__cause__ or exc.__context__
    return None


def entrypoint() -> None:
    skip_teardown()  # first: its atexit handler runs after every other one (ctpipeline.exits)
    try:
        code = main()
    except SystemExit as done:  # argparse's usage errors and --help
        set_exit_code(done.code)
        raise
    except KeyboardInterrupt:  # outside a command (parsing the arguments): the status of a SIGINT, as CPython
        set_exit_code(130)
        raise
    except BrokenPipeError:  # `ctp history | head`: the reader went away; not an error
        sys.stderr.close()
        code = 0
    set_exit_code(code)
    sys.exit(code)
