"""`ctp config validate | schema`, `ctp ui mlflow | prefect` and `ctp prepare`."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from ctpipeline.cli.common import state_paths
from ctpipeline.errors import CtpError


def cmd_config_validate(args) -> int:
    from ctpipeline.adapters.gx import load_suite
    from ctpipeline.config.notifications import unset_variables
    from ctpipeline.config.schema import load_config
    from ctpipeline.core.models import check_model_params
    from ctpipeline.errors import ConfigError

    rc = 0
    for f in args.files:  # check every file, report each
        try:
            cfg = load_config(f)
            check_model_params(cfg, f)
            suite = load_suite(cfg.suite_path)
            check_source(cfg, f)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            rc = exc.exit_code
            continue
        print(
            f"{f}: OK (pipeline {cfg.name!r}, {cfg.target.task} on {cfg.target.column!r}, model {cfg.model.type}, "
            f"suite {suite.get('name')!r} with {len(suite.get('expectations', []))} expectations, "
            f"hash {cfg.config_hash()})"
        )
        for key, why in unset_variables(cfg.notifications, os.environ):  # a warning: exit code unchanged
            print(f"warning: {f}: {key}: {why}", file=sys.stderr)
    return rc


def check_source(cfg, file: str) -> None:
    """A `file` source must name an existing .parquet/.csv file or a folder holding some (ConfigError otherwise):
    `ctp land` would fail on it later."""
    from ctpipeline.errors import ConfigError, DataError
    from ctpipeline.store.landing import source_path
    from ctpipeline.store.tables import table_files

    if cfg.source is None or cfg.source.kind != "file":
        return
    try:
        table_files(source_path(cfg.source, cfg.config_dir))
    except DataError as exc:
        raise ConfigError(file, [("source.path", str(exc))]) from None


def ui_command(which: str, paths, host: str, port: int | None) -> tuple[list[str], dict[str, str]]:
    """The UI's command line and the environment it needs. The Prefect UI asks its server for the API URL it
    talks to: it is set to this server, whatever the port (and whatever PREFECT_API_URL said before)."""
    bindir = Path(sys.executable).parent
    if which == "mlflow":
        store = f"sqlite:///{paths.mlflow_db}"
        return [
            str(bindir / "mlflow"),
            "ui",
            "--backend-store-uri",
            store,
            "--host",
            host,
            "--port",
            str(port or 5000),
        ], {}
    port = port or 4200
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # a browser's address for a wildcard bind
    api = f"http://{'[' + reach + ']' if ':' in reach else reach}:{port}/api"
    env = {
        "PREFECT_UI_API_URL": api,
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
    }
    return [str(bindir / "prefect"), "server", "start", "--host", host, "--port", str(port)], env


def cmd_config_schema(args) -> int:
    from ctpipeline.config.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_ui(args) -> int:
    from ctpipeline.env import configure_environment

    paths = state_paths(args)
    configure_environment(paths)
    _seed_database(args.which, paths)
    cmd, env = ui_command(args.which, paths, args.host, args.port)
    os.environ.update(env)
    print("$ " + " ".join([*(f"{k}={v}" for k, v in env.items() if k.endswith("API_URL")), *cmd]), flush=True)
    if shutil.which(cmd[0]) is None:
        raise CtpError(f"{cmd[0]} not found; run `make venv` first")
    os.execv(cmd[0], cmd)
    return 0  # unreachable


def _seed_database(which: str, paths) -> None:
    """A UI opened on a new state folder starts from the database templates too (`ctp prepare`)."""
    if which == "mlflow":
        from ctpipeline.adapters.mlflow import dbtemplate, sqlite_tracking_uri

        dbtemplate.seed(sqlite_tracking_uri(paths.mlflow_db))
        return
    from ctpipeline.adapters.prefect import dbtemplate

    dbtemplate.seed()


def cmd_prepare(args) -> int:
    """Build the empty MLflow and Prefect databases new state folders are copied from (`store.templates`)."""
    from ctpipeline.adapters.mlflow import dbtemplate as mlflow_template
    from ctpipeline.adapters.prefect import dbtemplate as prefect_template
    from ctpipeline.env import TELEMETRY_OFF
    from ctpipeline.store.templates import TEMPLATES_ENV, template_dir, template_path

    if template_dir() is None:
        print(f"{TEMPLATES_ENV} is set empty: database templates are off, nothing to build")
        return 0
    for key, value in TELEMETRY_OFF.items():  # as every other command: no usage reporting from the tools
        os.environ.setdefault(key, value)
    for tool, build in (("mlflow", mlflow_template.build), ("prefect", prefect_template.build)):
        path = template_path(tool)
        if path.exists() and not args.force:
            print(f"{tool}: {path} (built before; --force builds it again)")
            continue
        started = time.perf_counter()
        try:
            path = build()
        except (OSError, RuntimeError) as exc:  # RuntimeError: the tool's migrations failed
            raise CtpError(f"cannot build the {tool} database template {path}: {exc}") from None
        print(f"{tool}: {path} ({time.perf_counter() - started:.1f} s)")
    return 0
