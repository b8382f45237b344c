"""`ctp stack up | down | status | env` over the whole stack.

`up` starts, in order and each only once healthy: PostgreSQL (cluster created on first use, then the MLflow and
Prefect roles and databases), `mlflow server` and `prefect server start` (together), the work pool and the
deployments of every pipeline, then the workers and the webhook receiver. What is already running is kept; when
everything runs, `up` says so and does nothing. A failure stops what this `up` started and names the log file.
`down` stops every process with a pid file, in reverse order, and leaves none behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctpipeline.errors import CtpError
from ctpipeline.stack import postgres, services
from ctpipeline.stack.credentials import load_secrets
from ctpipeline.stack.layout import HOST, StackPaths, Topology, write_topology
from ctpipeline.stack.processes import (
    Pending,
    PidRecord,
    ProcessSpec,
    StartError,
    is_alive,
    port_free,
    read_pid,
    start,
    stop,
    wait_all,
)

TIMEOUTS = {"postgres": 60.0, "mlflow": 240.0, "prefect": 300.0, "worker": 120.0, "webhook": 90.0}


def _kind(service: str) -> str:
    return "worker" if service.startswith("worker-") else service


def running(paths: StackPaths, service: str) -> PidRecord | None:
    rec = read_pid(paths, service)
    return rec if rec is not None and is_alive(rec) else None


class _Starter:
    """Starts processes of one `up`, remembers them, and stops them all again if the `up` fails."""

    def __init__(self, paths: StackPaths, timeout: float | None, say: Callable[[str], None]):
        self.paths, self.timeout, self.say = paths, timeout, say
        self.started: list[str] = []

    def launch(self, items: list[tuple[ProcessSpec, Callable[..., bool]]]) -> None:
        """Start each spec that is not running yet, then wait until all of them are healthy."""
        pending = []
        for spec, check in items:
            if running(self.paths, spec.name):
                self.say(f"{spec.name:<9} already running")
                continue
            proc, rec = start(spec, self.paths)
            self.started.append(spec.name)
            bound = self.timeout or TIMEOUTS[_kind(spec.name)]
            pending.append(Pending(spec, proc, lambda c=check, r=rec: c(r), bound))
        for name, secs in wait_all(pending, self.paths).items():
            rec = read_pid(self.paths, name)
            self.say(f"{name:<9} ready in {secs:5.1f}s  pid {rec.pid if rec else '?'}  log {self.paths.log(name)}")

    def undo(self) -> None:
        for name in reversed(self.started):
            self.say(f"{name:<9} {stop(self.paths, name)} (the start failed)")


def _check_ports(paths: StackPaths, topo: Topology) -> None:
    for service, port in topo.ports.items():
        if not running(paths, service) and not port_free(port):
            raise StartError(
                f"port {port} for {service} is already taken on {HOST} (another program, or a stack in another "
                f"folder?): choose another with --{service if service != 'postgres' else 'pg'}-port; nothing started"
            )


def _postgres(paths: StackPaths, topo: Topology, secrets: dict[str, str], st: _Starter) -> None:
    bindir = postgres.find_bindir()
    user = postgres.service_user()
    if user is not None:
        postgres.check_reachable(paths.pg_data, user)
    if postgres.init_cluster(paths, bindir, user, secrets["pg_superuser"]):
        st.say(f"postgres  cluster created in {paths.pg_data}" + (f" (runs as {user[2]!r})" if user else ""))
    port = topo.ports["postgres"]
    st.launch([(postgres.postgres_spec(paths, bindir, port, user), lambda r: postgres.pg_ready(bindir, port))])
    created = postgres.ensure_databases(port, secrets)
    if created:
        st.say(f"postgres  created databases {', '.join(created)}")


def _servers(paths: StackPaths, topo: Topology, secrets: dict[str, str], st: _Starter) -> None:
    services.write_auth_ini(topo, paths)
    for d in (paths.artifacts, paths.prefect_home):
        d.mkdir(parents=True, exist_ok=True)
    st.launch(
        [
            (services.mlflow_spec(topo, paths, secrets), lambda r: services.mlflow_healthy(topo)),
            (services.prefect_spec(topo, paths, secrets), lambda r: services.prefect_healthy(topo)),
        ]
    )
    services.mlflow_check_admin(topo, secrets)


def _pipelines(topo: Topology, load_flow: Callable[[], Any], st: _Starter) -> list[str]:
    from ctpipeline.adapters.prefect.deployments import deploy_specs
    from ctpipeline.adapters.prefect.workpool import ensure_work_pool, register_deployments

    specs = deploy_specs(topo.configs, topo.state_dir)
    if ensure_work_pool(topo.prefect_api_url, topo.pool):
        st.say(f"prefect   created work pool {topo.pool!r} (type process)")
    register_deployments(load_flow(), specs, topo.pool, topo.prefect_api_url)
    for s in specs:
        st.say(f"prefect   deployment {s.full_name} on pool {topo.pool!r} ({s.config})")
    return [s.pipeline for s in specs]


def _runners(paths: StackPaths, topo: Topology, secrets: dict[str, str], pipelines: list[str], st: _Starter) -> None:
    items: list[tuple[ProcessSpec, Callable[..., bool]]] = [
        (services.worker_spec(topo, paths, secrets, w), lambda r, w=w: services.worker_online(topo, w, r.started_at))
        for w in topo.worker_names()
    ]
    config = services.write_webhook_config(topo, paths, pipelines)
    items.append((services.webhook_spec(topo, paths, secrets, config), lambda r: services.webhook_healthy(topo)))
    st.launch(items)


def up(
    paths: StackPaths,
    topo: Topology,
    load_flow: Callable[[], Any],
    timeout: float | None = None,
    say: Callable[[str], None] = print,
) -> bool:
    """Bring the stack up; False when it was up already (nothing done)."""
    from ctpipeline.adapters.prefect.deployments import deploy_specs

    if all(running(paths, s) for s in topo.services()):
        say(f"the stack in {paths.root} is already up: nothing to do (`ctp stack status` shows it)")
        return False
    deploy_specs(topo.configs, topo.state_dir)  # bad configs: exit 2 before anything starts
    paths.root.mkdir(parents=True, exist_ok=True)
    _check_ports(paths, topo)
    write_topology(paths, topo)
    secrets = load_secrets(paths.secrets_file)
    t0 = time.monotonic()
    st = _Starter(paths, timeout, say)
    try:
        _postgres(paths, topo, secrets, st)
        _servers(paths, topo, secrets, st)
        pipelines = _pipelines(topo, load_flow, st)
        _runners(paths, topo, secrets, pipelines, st)
    except BaseException:
        st.undo()
        raise
    say(f"stack up in {time.monotonic() - t0:.1f}s: MLflow {topo.mlflow_url}, Prefect {topo.url('prefect')}")
    return True


def down(paths: StackPaths, timeout: float = 30.0, say: Callable[[str], None] = print) -> int:
    """Stop every process of the stack (reverse start order; pid files of any other name first); how many ran."""
    known = ["webhook", *sorted((p.stem for p in paths.root.glob("run/worker-*.pid")), reverse=True)]
    known += ["prefect", "mlflow", "postgres"]
    others = sorted(p.stem for p in paths.root.glob("run/*.pid") if p.stem not in known)
    stopped = 0
    for name in others + known:
        if read_pid(paths, name) is None:
            continue
        was_running = running(paths, name) is not None
        say(f"{name:<9} {stop(paths, name, timeout)}")
        stopped += was_running
    if not stopped:
        say(f"no process of the stack in {paths.root} was running")
    return stopped


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    port: int | None
    url: str
    running: bool
    healthy: bool
    log: str


def _where(topo: Topology, service: str) -> tuple[int | None, str]:
    if service == "postgres":
        return topo.ports["postgres"], f"postgresql://{HOST}:{topo.ports['postgres']} (databases mlflow, prefect)"
    if service == "prefect":
        return topo.ports["prefect"], f"{topo.url('prefect')} (API {topo.prefect_api_url})"
    if service == "webhook":
        return topo.ports["webhook"], topo.url("webhook") + "/alerts"
    if service == "mlflow":
        return topo.ports["mlflow"], topo.mlflow_url
    return None, f"work pool {topo.pool!r} as {services.prefect_worker_name(service)}"


def _healthy(topo: Topology, service: str) -> bool:
    if service == "postgres":
        try:
            return postgres.pg_ready(postgres.find_bindir(), topo.ports["postgres"])
        except CtpError:
            return False
    checks = {
        "mlflow": services.mlflow_healthy,
        "prefect": services.prefect_healthy,
        "webhook": services.webhook_healthy,
    }
    if service in checks:
        return checks[service](topo)
    return services.worker_online(topo, service)


def status(paths: StackPaths, topo: Topology) -> list[ServiceStatus]:
    out = []
    for service in topo.services():
        rec = running(paths, service)
        port, url = _where(topo, service)
        healthy = rec is not None and _healthy(topo, service)
        out.append(
            ServiceStatus(
                service, rec.pid if rec else None, port, url, rec is not None, healthy, str(paths.log(service))
            )
        )
    return out
