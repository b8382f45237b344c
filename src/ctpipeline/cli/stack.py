"""`ctp stack up | down | status | env`: the team stack on 127.0.0.1 (docs/stack.md)."""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import asdict, replace
from pathlib import Path

from ctpipeline.errors import CtpError


def _paths(args):
    from ctpipeline.stack.layout import StackPaths, resolve_stack_dir
    from ctpipeline.store.state import resolve_state_dir

    state = resolve_state_dir(args.state_dir)
    return state, StackPaths(resolve_stack_dir(args.stack_dir, state))


def _recorded(args):
    """(stack paths, the topology of the last `up`); CtpError when there was none."""
    from ctpipeline.stack.layout import read_topology

    _, paths = _paths(args)
    topo = read_topology(paths)
    if topo is None:
        raise CtpError(f"no stack in {paths.root} (run `ctp stack up` first, or pass its --stack-dir)")
    return paths, topo


def cmd_up(args) -> int:
    from ctpipeline.env import configure_environment
    from ctpipeline.stack.layout import merge_topology, read_topology
    from ctpipeline.stack.up import up
    from ctpipeline.store.state import StatePaths

    state, paths = _paths(args)
    ports = {f"{s}_port": getattr(args, f"{s}_port") for s in ("postgres", "mlflow", "prefect", "webhook")}
    topo = merge_topology(
        read_topology(paths),
        state,
        configs=args.config,
        workers=args.workers,
        mlflow_workers=args.mlflow_workers,
        webhook_config=args.webhook_config,
        mlflow_admin=os.environ.get("CTP_MLFLOW_ADMIN_USERNAME"),
        **ports,
    )
    if not topo.configs:
        topo = replace(topo, configs=(str(Path("configs/flights.yaml").resolve()),))
    from ctpipeline.adapters.prefect.deployments import deploy_specs

    deploy_specs(topo.configs, state)  # a bad config: exit 2, nothing created
    # this process registers the deployments: Prefect's home is the stack's, its server the stack's
    os.environ.setdefault("PREFECT_HOME", str(paths.prefect_home))
    configure_environment(StatePaths(state))

    def load_flow():
        from ctpipeline.flow import continuous_training

        return continuous_training

    if up(paths, topo, load_flow, timeout=args.timeout):
        print(f'pipelines run against it with: eval "$(ctp stack env --stack-dir {shlex.quote(str(paths.root))})"')
    return 0


def cmd_down(args) -> int:
    from ctpipeline.stack.up import down

    _, paths = _paths(args)
    down(paths, timeout=args.timeout)
    return 0


def cmd_status(args) -> int:
    from ctpipeline.cli.common import emit_json
    from ctpipeline.stack.up import status

    paths, topo = _recorded(args)
    rows = status(paths, topo)
    ok = all(r.healthy for r in rows)
    if args.json:
        emit_json({"stack_dir": str(paths.root), "up": ok, "services": [asdict(r) for r in rows]})
        return 0 if ok else 1
    print(f"stack in {paths.root}: {'up' if ok else 'NOT fully up'}")
    for r in rows:
        state = "healthy" if r.healthy else "running, NOT healthy" if r.running else "not running"
        print(f"  {r.name:<9} {state:<21} pid {r.pid or '-':<8} {r.url}")
    return 0 if ok else 1


def cmd_env(args) -> int:
    from ctpipeline.cli.common import emit_json
    from ctpipeline.stack.credentials import load_secrets
    from ctpipeline.stack.services import client_env

    paths, topo = _recorded(args)
    secrets = load_secrets(paths.secrets_file, create=False)
    missing = [k for k in ("mlflow_admin", "webhook") if k not in secrets]
    if missing:
        raise CtpError(f"no {' or '.join(missing)} secret in the environment or {paths.secrets_file}")
    env = {**client_env(topo, secrets), "CTP_WEBHOOK_SECRET": secrets["webhook"]}  # for `ctp webhook send`
    if args.json:
        emit_json(env)
    else:
        for k, v in env.items():
            print(f"export {k}={shlex.quote(v)}")
    return 0


def _folders(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--state-dir", help="state folder of the pipelines (default: $CTP_HOME or .ctp)")
    sp.add_argument("--stack-dir", help="the stack's folder (default: <state-dir>/stack)")


def add_commands(sub) -> None:
    st = sub.add_parser("stack", help="the team stack: PostgreSQL, MLflow, Prefect server and workers, webhook")
    ssub = st.add_subparsers(dest="stack_command", required=True, metavar="SUBCOMMAND")

    u = ssub.add_parser("up", help="start the stack (each server only once healthy); a no-op when it is up")
    _folders(u)
    u.add_argument("--config", "-c", action="append", metavar="FILE", help="pipeline YAML to deploy; repeatable")
    u.add_argument("--workers", type=int, help="Prefect worker processes on the work pool (default 1)")
    for name, default in (("pg", 5433), ("mlflow", 5000), ("prefect", 4200), ("webhook", 8787)):
        dest = "postgres_port" if name == "pg" else f"{name}_port"
        u.add_argument(f"--{name}-port", dest=dest, type=int, help=f"default {default}, or the last up's")
    u.add_argument("--mlflow-workers", type=int, help="uvicorn workers of the MLflow server (default 2)")
    u.add_argument("--webhook-config", help="the receiver's YAML (default: one written into the stack folder)")
    u.add_argument("--timeout", type=float, help="seconds each server may take to become healthy")
    u.set_defaults(func=cmd_up)

    d = ssub.add_parser("down", help="stop every process of the stack (TERM, then KILL after --timeout)")
    _folders(d)
    d.add_argument("--timeout", type=float, default=30.0, help="seconds before KILL (default: %(default)s)")
    d.set_defaults(func=cmd_down)

    s = ssub.add_parser("status", help="what runs where: pid, port, URL, healthy (exit 1 unless all healthy)")
    _folders(s)
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    s.set_defaults(func=cmd_status)

    e = ssub.add_parser("env", help='the exports pipelines need: eval "$(ctp stack env)"')
    _folders(e)
    e.add_argument("--json", action="store_true", help="one JSON object on stdout")
    e.set_defaults(func=cmd_env)
