"""What each server of the stack is started with, and how its health is checked.

Connection strings and passwords go through environment variables only (MLFLOW_BACKEND_STORE_URI,
MLFLOW_AUTH_ADMIN_PASSWORD, PREFECT_API_DATABASE_CONNECTION_URL, ...): the command lines hold ports and paths.
"""

from __future__ import annotations

import base64
import os
import shutil
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from ctpipeline.errors import CtpError
from ctpipeline.stack.credentials import ENV_VARS
from ctpipeline.stack.layout import HOST, StackPaths, Topology
from ctpipeline.stack.postgres import database_url
from ctpipeline.stack.processes import ProcessSpec

TELEMETRY_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
# never inherited by a service: each gets its own, or none
NOT_INHERITED = {
    "PREFECT_API_URL",
    "PREFECT_PROFILE",
    "PREFECT_PROFILES_PATH",
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_BACKEND_STORE_URI",
    *ENV_VARS.values(),
}
# how often a worker asks the server for runs (Prefect's default is 10 s); the environment wins
WORKER_QUERY_SECONDS = "5"


def program(name: str) -> str:
    """A console script of this Python's environment (mlflow, prefect), else one on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise CtpError(f"`{name}` not found next to {sys.executable} or on PATH; run `make venv` first")
    return found


def base_env(topo: Topology, paths: StackPaths) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env.update(TELEMETRY_OFF)
    env.update({"PYTHONUNBUFFERED": "1", "PREFECT_HOME": str(paths.prefect_home), "CTP_HOME": topo.state_dir})
    return env


def client_env(topo: Topology, secrets: dict[str, str]) -> dict[str, str]:
    """What a process needs to run pipelines against the stack (also `ctp stack env`)."""
    return {
        "MLFLOW_TRACKING_URI": topo.mlflow_url,
        "MLFLOW_TRACKING_USERNAME": topo.mlflow_admin,
        "MLFLOW_TRACKING_PASSWORD": secrets["mlflow_admin"],
        "PREFECT_API_URL": topo.prefect_api_url,
        "CTP_HOME": topo.state_dir,
    }


def write_auth_ini(topo: Topology, paths: StackPaths) -> None:
    """MLflow's auth config: users in SQLite in the stack folder, READ for every signed-in user by default. The
    admin password is not in it (MLFLOW_AUTH_ADMIN_PASSWORD); MLflow uses it once, to create the admin."""
    paths.auth_ini.parent.mkdir(parents=True, exist_ok=True)
    paths.auth_ini.write_text(
        "# written by `ctp stack up`; the admin password comes from MLFLOW_AUTH_ADMIN_PASSWORD\n"
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{paths.auth_db}\n"
        f"admin_username = {topo.mlflow_admin}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )


def mlflow_spec(topo: Topology, paths: StackPaths, secrets: dict[str, str]) -> ProcessSpec:
    argv = [program("mlflow"), "server", "--host", HOST, "--port", str(topo.ports["mlflow"])]
    argv += ["--workers", str(topo.mlflow_workers), "--app-name", "basic-auth"]
    argv += ["--serve-artifacts", "--artifacts-destination", str(paths.artifacts)]
    env = base_env(topo, paths)
    env.update(
        {
            "MLFLOW_BACKEND_STORE_URI": database_url(
                "postgresql", "mlflow", secrets["mlflow_db"], topo.ports["postgres"]
            ),
            "MLFLOW_AUTH_CONFIG_PATH": str(paths.auth_ini),
            "MLFLOW_AUTH_ADMIN_USERNAME": topo.mlflow_admin,
            "MLFLOW_AUTH_ADMIN_PASSWORD": secrets["mlflow_admin"],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets["mlflow_flask_key"],
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # GenAI job runners: not used, two processes fewer
        }
    )
    return ProcessSpec("mlflow", argv, env, paths.root, port=topo.ports["mlflow"], mask=secrets)


def prefect_spec(topo: Topology, paths: StackPaths, secrets: dict[str, str]) -> ProcessSpec:
    argv = [program("prefect"), "server", "start", "--host", HOST, "--port", str(topo.ports["prefect"])]
    env = base_env(topo, paths)
    url = database_url("postgresql+asyncpg", "prefect", secrets["prefect_db"], topo.ports["postgres"])
    env.update({"PREFECT_API_DATABASE_CONNECTION_URL": url, "PREFECT_API_URL": topo.prefect_api_url})
    return ProcessSpec("prefect", argv, env, paths.root, port=topo.ports["prefect"], mask=secrets)


def prefect_worker_name(service: str) -> str:
    return f"ctp-{service}"


def worker_spec(topo: Topology, paths: StackPaths, secrets: dict[str, str], service: str) -> ProcessSpec:
    argv = [program("prefect"), "worker", "start", "--pool", topo.pool, "--type", "process"]
    argv += ["--name", prefect_worker_name(service), "--install-policy", "never", "--no-create-pool-if-not-found"]
    env = base_env(topo, paths)
    env.update(client_env(topo, secrets))
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", WORKER_QUERY_SECONDS)
    # the flow run's own process: ctpipeline's log lines go to Prefect (console and UI)
    env.update({"PREFECT_LOGGING_EXTRA_LOGGERS": "ctpipeline", "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"})
    # flow runs write the pipelines' state folder (landing, ledger) as any `ctp` command would: our umask
    return ProcessSpec(service, argv, env, paths.root, mask=secrets, umask=-1)


def write_webhook_config(topo: Topology, paths: StackPaths, pipelines: list[str]) -> Path:
    """The receiver's YAML for the stack's pipelines (unless the user gave one with --webhook-config)."""
    import yaml

    if topo.webhook_config:
        return Path(topo.webhook_config)
    doc = {
        "secret_env": ENV_VARS["webhook"],
        "models": {p: f"continuous-training/{p}" for p in pipelines},
        "state_path": str(paths.webhook_state),
        "host": HOST,
        "port": topo.ports["webhook"],
    }
    paths.webhook_config.parent.mkdir(parents=True, exist_ok=True)
    header = "# written by `ctp stack up` (give your own with --webhook-config); see docs/webhook.md\n"
    paths.webhook_config.write_text(header + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return paths.webhook_config


def webhook_spec(topo: Topology, paths: StackPaths, secrets: dict[str, str], config: Path) -> ProcessSpec:
    argv = [sys.executable, "-m", "ctpipeline", "webhook", "serve", "--config", str(config)]
    argv += ["--host", HOST, "--port", str(topo.ports["webhook"]), "--state-dir", topo.state_dir]
    env = base_env(topo, paths)
    env.update({"PREFECT_API_URL": topo.prefect_api_url, ENV_VARS["webhook"]: secrets["webhook"]})
    return ProcessSpec("webhook", argv, env, paths.root, port=topo.ports["webhook"], mask=secrets)


# --------------------------------------------------------------------------- health


def http_status(url: str, auth: tuple[str, str] | None = None, timeout: float = 3.0) -> tuple[int | None, str]:
    """(HTTP status, body) of a GET; (None, reason) when nothing answered."""
    req = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (OSError, ValueError) as exc:
        return None, str(exc)


def mlflow_healthy(topo: Topology) -> bool:
    return http_status(topo.mlflow_url + "/health")[0] == 200


def mlflow_check_admin(topo: Topology, secrets: dict[str, str]) -> None:
    """CtpError unless the admin's credentials open the REST API (MLflow keeps the first admin password)."""
    url = topo.mlflow_url + "/api/2.0/mlflow/experiments/search?max_results=1"
    code, why = http_status(url, auth=(topo.mlflow_admin, secrets["mlflow_admin"]), timeout=10)
    if code == 401:
        raise CtpError(
            f"MLflow rejected the password of {topo.mlflow_admin!r}: its auth database keeps the password it was "
            f"created with; set {ENV_VARS['mlflow_admin']} to that one (see docs/stack.md, Troubleshooting)"
        )
    if code != 200:
        raise CtpError(f"MLflow REST API {url} answered {code or why}")


def prefect_healthy(topo: Topology) -> bool:
    return http_status(topo.prefect_api_url + "/health")[0] == 200


def webhook_healthy(topo: Topology) -> bool:
    return http_status(topo.url("webhook") + "/healthz")[0] == 200


def worker_online(topo: Topology, service: str, since: float | None = None) -> bool:
    """The worker is registered with the pool (ONLINE), with a heartbeat after `since` (epoch seconds) if given."""
    from ctpipeline.adapters.prefect.workpool import pool_workers

    try:
        workers = pool_workers(topo.prefect_api_url, topo.pool)
    except CtpError:
        return False
    for w in workers:
        if w.name == prefect_worker_name(service) and w.status == "ONLINE":
            if since is None or (w.last_heartbeat and w.last_heartbeat >= datetime.fromtimestamp(since - 2, UTC)):
                return True
    return False
