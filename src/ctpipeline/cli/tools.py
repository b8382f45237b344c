"""`ctp config validate | schema` and `ctp ui mlflow | prefect`."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from ctpipeline.cli.common import state_paths
from ctpipeline.errors import CtpError


def cmd_config_validate(args) -> int:
    from ctpipeline.adapters.gx import load_suite
    from ctpipeline.config.schema import load_config
    from ctpipeline.core.models import check_model_params
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
        print(
            f"{f}: OK (pipeline {cfg.name!r}, {cfg.target.task} on {cfg.target.column!r}, model {cfg.model.type}, "
            f"suite {suite.get('name')!r} with {len(suite.get('expectations', []))} expectations, "
            f"hash {cfg.config_hash()})"
        )
    return rc


def cmd_config_schema(args) -> int:
    from ctpipeline.config.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_ui(args) -> int:
    from ctpipeline.env import configure_environment

    paths = state_paths(args)
    configure_environment(paths)
    bindir = Path(sys.executable).parent
    if args.which == "mlflow":
        cmd = [
            str(bindir / "mlflow"),
            "ui",
            "--backend-store-uri",
            f"sqlite:///{paths.mlflow_db}",
            "--host",
            args.host,
            "--port",
            str(args.port or 5000),
        ]
    else:
        cmd = [str(bindir / "prefect"), "server", "start", "--host", args.host, "--port", str(args.port or 4200)]
    print("$ " + " ".join(cmd), flush=True)
    if shutil.which(cmd[0]) is None:
        raise CtpError(f"{cmd[0]} not found; run `make venv` first")
    os.execv(cmd[0], cmd)
    return 0  # unreachable
