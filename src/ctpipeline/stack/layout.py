"""The stack folder and the stack's topology.

Layout (default ``<state-dir>/stack``, i.e. ``.ctp/stack``)::

    stack.json               topology of the last `up`: ports, pipelines, workers, state folder
    secrets.env              generated passwords and keys (0600); environment variables win
    logs/<service>.log       each process's stdout and stderr (appended, one header line per start)
    run/<service>.pid        pid and kernel start time of each running process
    postgres/data/           the PostgreSQL cluster (owned by the unprivileged user when run as root)
    mlflow/basic_auth.ini    MLflow's auth config (MLFLOW_AUTH_CONFIG_PATH); no secret in it
    mlflow/basic_auth.db     MLflow's users and permissions (SQLite)
    mlartifacts/             MLflow's proxied artifact store (--artifacts-destination)
    prefect/                 PREFECT_HOME of the Prefect server and the workers
    webhook/webhook.yaml     the receiver's config (unless --webhook-config); webhook/state.db its dedupe state
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ctpipeline.errors import ConfigError

HOST = "127.0.0.1"
POOL = "ctp-pool"
DEFAULT_PORTS = {"postgres": 5433, "mlflow": 5000, "prefect": 4200, "webhook": 8787}
SERVERS = ("postgres", "mlflow", "prefect")


# where each piece of the stack lives, relative to its folder
_PLACES = {
    "topology_file": "stack.json",
    "secrets_file": "secrets.env",
    "pg_home": "postgres",
    "pg_data": "postgres/data",
    "auth_ini": "mlflow/basic_auth.ini",
    "auth_db": "mlflow/basic_auth.db",
    "artifacts": "mlartifacts",
    "prefect_home": "prefect",
    "webhook_config": "webhook/webhook.yaml",
    "webhook_state": "webhook/state.db",
}


@dataclass(frozen=True)
class StackPaths:
    """The stack folder's layout: `topology_file`, `secrets_file`, `pg_home`, `pg_data`, `auth_ini`, `auth_db`,
    `artifacts`, `prefect_home`, `webhook_config`, `webhook_state` (see `_PLACES`), and per-service logs and pids."""

    root: Path

    def __post_init__(self) -> None:
        for name, rel in _PLACES.items():
            object.__setattr__(self, name, self.root / rel)

    def log(self, service: str) -> Path:
        return self.root / "logs" / f"{service}.log"

    def pid(self, service: str) -> Path:
        return self.root / "run" / f"{service}.pid"


def resolve_stack_dir(stack_dir: str | Path | None, state_dir: Path) -> Path:
    return Path(stack_dir).expanduser().resolve() if stack_dir else state_dir / "stack"


@dataclass(frozen=True)
class Topology:
    """What runs where: recorded by `up` in stack.json, read by `down`, `status` and `env`."""

    state_dir: str
    configs: tuple[str, ...] = ()
    workers: int = 1
    pool: str = POOL
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    mlflow_workers: int = 2
    mlflow_admin: str = "admin"
    webhook_config: str | None = None  # the user's receiver YAML; None: the stack writes one

    def url(self, service: str) -> str:
        return f"http://{HOST}:{self.ports[service]}"

    @property
    def mlflow_url(self) -> str:
        return self.url("mlflow")

    @property
    def prefect_api_url(self) -> str:
        return self.url("prefect") + "/api"

    def worker_names(self) -> list[str]:
        return [f"worker-{i}" for i in range(1, self.workers + 1)]

    def services(self) -> list[str]:
        """Every process of the stack, in start order."""
        return [*SERVERS, *self.worker_names(), "webhook"]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["configs"] = list(self.configs)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Topology:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["configs"] = tuple(known.get("configs", ()))
        known["ports"] = {**DEFAULT_PORTS, **known.get("ports", {})}
        return cls(**known)


def read_topology(paths: StackPaths) -> Topology | None:
    """The topology of the last `up`, or None when there was none."""
    try:
        return Topology.from_json(json.loads(paths.topology_file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(paths.topology_file), f"not a stack topology ({exc}); delete it to start afresh")


def write_topology(paths: StackPaths, topo: Topology) -> None:
    tmp = paths.topology_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(topo.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, paths.topology_file)


def merge_topology(previous: Topology | None, state_dir: Path, **options: Any) -> Topology:
    """Options given on the command line (not None) override the previous `up`'s, which override the defaults."""
    base = previous or Topology(state_dir=str(state_dir))
    ports = dict(base.ports)
    for service in DEFAULT_PORTS:
        port = options.pop(f"{service}_port", None)
        if port is not None:
            ports[service] = port
    changes = {k: v for k, v in options.items() if v is not None}
    if "configs" in changes:
        changes["configs"] = tuple(str(Path(c).resolve()) for c in changes["configs"])
    if "webhook_config" in changes:
        changes["webhook_config"] = str(Path(changes["webhook_config"]).resolve())
    topo = replace(base, ports=ports, state_dir=str(state_dir), **changes)
    if len(set(topo.ports.values())) != len(topo.ports):
        raise ConfigError("--*-port", f"two services on one port: {topo.ports}")
    if topo.workers < 1:
        raise ConfigError("--workers", "at least one worker is needed")
    return topo
