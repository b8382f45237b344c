"""The stack's process handling with real (small) processes: pid files that survive pid reuse, a server that dies
during start or never gets healthy (clear error naming its log), a port already taken, a process tree that
ignores TERM (KILL after the timeout, nothing left), secrets in a 0600 file with the environment winning, the
topology merge, and the missing-PostgreSQL message. Seconds, no server binary needed."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from ctpipeline.errors import ConfigError, CtpError
from ctpipeline.stack import credentials, postgres, processes
from ctpipeline.stack.layout import StackPaths, Topology, merge_topology, read_topology, write_topology
from ctpipeline.stack.processes import ProcessSpec, StartError, process_tree, read_pid, start, start_ticks, stop
from ctpipeline.stack.up import down

from conftest import FLIGHTS_YAML, free_port

pytestmark = pytest.mark.integration


def spec(name: str, code: str, **kw) -> ProcessSpec:
    return ProcessSpec(name, [sys.executable, "-c", code], {"PATH": os.environ["PATH"]}, Path.cwd(), **kw)


def test_a_process_that_dies_while_starting_is_an_error_naming_its_log(tmp_path):
    paths = StackPaths(tmp_path)
    s = spec("mlflow", "import sys; print('cannot connect to the database'); sys.exit(3)", mask={"pw": "database"})
    proc, _ = start(s, paths)
    with pytest.raises(StartError) as exc:
        processes.wait_all([processes.Pending(s, proc, lambda: False, 30)], paths)
    msg = str(exc.value)
    assert "mlflow exited with code 3 while starting" in msg and str(paths.log("mlflow")) in msg
    assert "cannot connect to the ***" in msg  # the log tail, with secrets masked


def test_a_process_that_never_gets_healthy_times_out_naming_its_log(tmp_path):
    paths = StackPaths(tmp_path)
    s = spec("prefect", "import time; print('migrating', flush=True); time.sleep(60)")
    proc, _ = start(s, paths)
    try:
        t0 = time.monotonic()
        with pytest.raises(StartError, match=r"prefect not healthy after 2s; see .*prefect\.log"):
            processes.wait_all([processes.Pending(s, proc, lambda: False, 2)], paths)
        assert time.monotonic() - t0 < 10
    finally:
        assert stop(paths, "prefect", timeout=5).startswith("stopped")


def test_stop_ends_the_whole_tree_even_a_child_that_ignores_term(tmp_path):
    paths = StackPaths(tmp_path)
    # the leader starts a grandchild in a session of its own that ignores SIGTERM (like a flow run of a worker)
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " time.sleep(120)'], start_new_session=True)\n"
        "time.sleep(120)\n"
    )
    proc, rec = start(spec("worker-1", code), paths)
    deadline = time.monotonic() + 20
    while len(process_tree(rec.pid)) < 2:
        assert time.monotonic() < deadline, "the grandchild did not start"
        time.sleep(0.1)
    tree = process_tree(rec.pid)
    assert read_pid(paths, "worker-1") == rec and processes.is_alive(rec)
    how = stop(paths, "worker-1", timeout=2)
    proc.wait(timeout=10)
    assert how == "killed after 2s"
    assert not [p for p, t in tree.items() if start_ticks(p) == t]
    assert read_pid(paths, "worker-1") is None and stop(paths, "worker-1") == "not running"


def test_a_recycled_pid_is_not_taken_for_ours(tmp_path):
    paths = StackPaths(tmp_path)
    mine = processes.PidRecord("mlflow", os.getpid(), (start_ticks(os.getpid()) or 0) + 1, 5000, time.time(), 15, True)
    paths.pid("mlflow").parent.mkdir(parents=True)
    paths.pid("mlflow").write_text(__import__("json").dumps(mine.__dict__))
    assert not processes.is_alive(mine)
    assert stop(paths, "mlflow") == "not running (stale pid file removed)"  # and this process is still here
    assert down(paths, say=lambda _: None) == 0


def test_port_taken_is_detected_and_a_time_wait_socket_is_not(tmp_path):
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and PostgreSQL do
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not processes.port_free(port)
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end stays in TIME_WAIT, as after a server restart
        client.close()
    assert processes.port_free(port)


def test_up_refuses_a_taken_port_before_starting_anything(tmp_path):
    from ctpipeline.stack.up import up

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        ports = {"postgres_port": free_port(), "prefect_port": free_port(), "webhook_port": free_port()}
        topo = merge_topology(None, tmp_path, configs=[str(FLIGHTS_YAML)], mlflow_port=s.getsockname()[1], **ports)
        with pytest.raises(StartError, match=rf"port {s.getsockname()[1]} for mlflow is already taken.*--mlflow-port"):
            up(StackPaths(tmp_path / "stack"), topo, load_flow=lambda: None, say=lambda _: None)
    assert not (tmp_path / "stack" / "run").exists()


def test_secrets_generated_once_into_a_private_file_environment_wins(tmp_path, monkeypatch):
    for var in credentials.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "secrets.env"
    first = credentials.load_secrets(path)
    assert set(first) == set(credentials.ENV_VARS) and len(set(first.values())) == len(first)
    assert path.stat().st_mode & 0o777 == 0o600
    assert credentials.load_secrets(path) == first  # stable across ups
    monkeypatch.setenv("CTP_MLFLOW_ADMIN_PASSWORD", "from-the-environment")
    assert credentials.load_secrets(path)["mlflow_admin"] == "from-the-environment"
    assert "from-the-environment" not in path.read_text()
    assert credentials.load_secrets(tmp_path / "none.env", create=False) == {"mlflow_admin": "from-the-environment"}


def test_topology_options_override_the_last_up_which_overrides_defaults(tmp_path):
    paths = StackPaths(tmp_path)
    paths.root.mkdir(exist_ok=True)
    assert read_topology(paths) is None
    first = merge_topology(None, tmp_path, configs=["configs/flights.yaml"], mlflow_port=15000, workers=2)
    write_topology(paths, first)
    again = merge_topology(read_topology(paths), tmp_path, prefect_port=14200)
    assert again.ports["mlflow"] == 15000 and again.ports["prefect"] == 14200 and again.workers == 2
    assert again.configs == (str(Path("configs/flights.yaml").resolve()),)
    assert again.services() == ["postgres", "mlflow", "prefect", "worker-1", "worker-2", "webhook"]
    with pytest.raises(ConfigError, match="two services on one port"):
        merge_topology(again, tmp_path, webhook_port=15000)
    assert Topology.from_json(again.to_json()) == again


def test_missing_postgresql_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.delenv("CTP_PG_BINDIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_config, no initdb
    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: [])  # no /usr/lib/postgresql/*/bin
    with pytest.raises(CtpError, match=r"install Debian's `postgresql` package"):
        postgres.find_bindir()


def test_unreachable_data_folder_is_named(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root hands PostgreSQL to another user")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    os.chmod(locked, 0o700)
    user = postgres.service_user()
    with pytest.raises(CtpError, match=r"cannot pass through (/\S+) \(mode d.{9}\): `chmod o\+x") as exc:
        postgres.check_reachable(locked / "stack" / "postgres" / "data", user)
    named = Path(str(exc.value).split("cannot pass through ")[1].split(" ")[0])
    assert named == locked or named in locked.parents  # pytest's own 0700 folders come first, if still closed


def test_signal_numbers_survive_the_pid_file(tmp_path):
    paths = StackPaths(tmp_path)
    proc, rec = start(
        spec("postgres", "import time; time.sleep(30)", stop_signal=signal.SIGINT, group_signal=False), paths
    )
    assert read_pid(paths, "postgres").stop_signal == signal.SIGINT
    assert stop(paths, "postgres", timeout=10).startswith("stopped")  # SIGINT ends a plain python too
    proc.wait(timeout=10)


def test_a_service_started_where_its_stop_signal_is_ignored_still_stops_on_it(tmp_path):
    """A script that ignores SIGINT (a background job, nohup) starts the stack: the service must not inherit that."""
    paths = StackPaths(tmp_path)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc, _ = start(
            spec("postgres", "import time; time.sleep(30)", stop_signal=signal.SIGINT, group_signal=False), paths
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stop(paths, "postgres", timeout=10).startswith("stopped")
    proc.wait(timeout=10)
