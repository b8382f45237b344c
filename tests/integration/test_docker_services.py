"""docker/compose.yaml's services, run for real outside Docker (no engine here): a PostgreSQL cluster from Debian's
`postgresql` package, docker/initdb/01-databases.sql run twice as a superuser, then the compose file's own `mlflow`
and `prefect` commands and environments (host names and ports re-pointed at 127.0.0.1, paths at tmp) started
through docker/entrypoint.sh with the secrets as files, and docker/worker.sh against that Prefect server.

What this proves: the init script is idempotent outside Docker, both servers reach PostgreSQL with the password
from PGPASSWORD only (none in a URI or on a command line), MLflow's basic-auth app is on with the admin password
from its secret file, and the worker script creates the process pool, the training limit and the deployment."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
import yaml

from conftest import free_port, require_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
PG_GLOB = "/usr/lib/postgresql/*/bin/"
DB_PASSWORD, ADMIN_PASSWORD = "db-pw-from-a-secret-file", "admin-pw-from-a-secret-file"


def compose_service(name: str) -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"][name]


class Cluster:
    """An unprivileged PostgreSQL cluster on 127.0.0.1 (run as the `postgres` OS user when the tests run as root,
    since initdb refuses root): local connections trusted, TCP connections by password (scram-sha-256)."""

    def __init__(self, bindir: Path):
        self.bindir, self.port = bindir, free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ctp-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    def run(self, *cmd: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run(
            list(cmd), input=stdin, capture_output=True, text=True, timeout=180, user=self.user, cwd=self.root
        )
        if check and out.returncode != 0:
            raise AssertionError(f"{cmd[0]} failed ({out.returncode}): {out.stdout}{out.stderr}")
        return out

    def start(self) -> None:
        data = str(self.root / "data")
        self.run(str(self.bindir / "initdb"), "-D", data, "-U", "postgres", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "-E", "UTF8")  # fmt: skip
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        log = str(self.root / "pg.log")
        self.run(str(self.bindir / "pg_ctl"), "-D", data, "-o", opts, "-l", log, "-w", "-t", "120", "start")

    def stop(self) -> None:
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        base = [str(self.bindir / "psql"), "-X", "-h", str(self.root), "-p", str(self.port), "-U", "postgres"]
        return self.run(*base, "-v", "ON_ERROR_STOP=1", *args, stdin=stdin, check=check)

    def query(self, sql: str, db: str = "postgres") -> str:
        return self.psql("-d", db, "-tA", "-c", sql).stdout.strip()


@pytest.fixture(scope="module")
def cluster():
    bindir = Path(require_binary("initdb", PG_GLOB + "initdb")).resolve().parent  # Debian: not on PATH
    for tool in ("pg_ctl", "psql"):
        require_binary(tool, str(bindir / tool))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root needs the `postgres` OS user (Debian's postgresql package creates it)")
    c = Cluster(bindir)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def databases(cluster):
    """The init script run twice as the superuser; then the role gets its password, fed on stdin."""
    script = Path(cluster.root) / "01-databases.sql"
    shutil.copy(DOCKER / "initdb" / "01-databases.sql", script)
    os.chmod(script, 0o644)
    first = cluster.psql("-f", str(script))
    second = cluster.psql("-f", str(script))
    cluster.psql(stdin=f"ALTER ROLE ctp PASSWORD '{DB_PASSWORD}';\n")
    return first, second


def test_init_script_creates_role_and_databases_idempotently_outside_docker(cluster, databases):
    first, second = databases
    assert "CREATE ROLE" in first.stdout and first.stdout.count("CREATE DATABASE") == 2
    assert "CREATE" not in second.stdout  # the second run creates nothing and fails on nothing
    assert cluster.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'ctp'") == "t"
    owners = cluster.query(
        "SELECT string_agg(datname || ':' || pg_get_userbyid(datdba), ',' ORDER BY datname) FROM pg_database "
        "WHERE datname IN ('mlflow', 'prefect')"
    )
    assert owners == "mlflow:ctp,prefect:ctp"


def test_init_script_with_the_role_already_there_as_in_docker(cluster, databases):
    # the postgres image creates POSTGRES_USER before running initdb/: only the databases are created
    cluster.psql(stdin="CREATE ROLE docker_like LOGIN;\n")
    out = cluster.psql(
        "-v", "owner=docker_like", "-d", "postgres", stdin=(DOCKER / "initdb/01-databases.sql").read_text()
    )
    assert "CREATE ROLE" not in out.stdout and "CREATE DATABASE" not in out.stdout  # mlflow/prefect exist already


# --------------------------------------------------------------------------- the compose services' commands


def secrets_dir(tmp: Path) -> dict[str, str]:
    d = tmp / "run-secrets"
    d.mkdir(exist_ok=True)
    values = {"db_password": DB_PASSWORD, "mlflow_admin_password": ADMIN_PASSWORD, "mlflow_flask_secret_key": "fk"}
    for name, value in values.items():
        (d / name).write_text(value + "\n")
    return {f"/run/secrets/{n}": str(d / n) for n in values}


def service_env(name: str, cluster: Cluster, tmp: Path, port: int) -> dict[str, str]:
    """The compose service's environment with container names, ports and paths re-pointed at this machine."""
    files = secrets_dir(tmp)
    env = {"CTP_SECRETS_DIR": str(tmp / "run-secrets")}
    for key, value in compose_service(name)["environment"].items():
        value = str(value).replace("@postgres:5432/", f"@127.0.0.1:{cluster.port}/")
        for container, local in files.items():
            value = value.replace(container, local)
        env[key] = value.replace(":5000", f":{port}").replace(":4200", f":{port}")
    return env


def image_bin(tmp: Path) -> Path:
    """The Dockerfile's /usr/local/bin names for the helper scripts (COPY docker/worker.sh .../ctp-worker, ...)."""
    copies = re.findall(r"COPY --chmod=0755 (docker/\S+) /usr/local/bin/(\S+)", (DOCKER / "Dockerfile").read_text())
    assert {name for _, name in copies} == {"ctp-entrypoint", "ctp-worker", "ctp-healthcheck"}
    bindir = tmp / "image-bin"
    bindir.mkdir(exist_ok=True)
    for src, name in copies:
        if not (bindir / name).exists():
            (bindir / name).symlink_to(ROOT / src)
    return bindir


class Service:
    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path, log: Path):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "PG"))}
        # as in the image: the helper scripts under their /usr/local/bin names, the venv's bin as /opt/venv/bin
        base["PATH"] = os.pathsep.join([str(image_bin(log.parent)), str(Path(sys.executable).parent), base["PATH"]])
        self.log_path = log
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            ["sh", str(DOCKER / "entrypoint.sh"), *cmd],
            env={**base, "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **env},
            # env carries CTP_SECRETS_DIR: the secrets folder this test writes instead of /run/secrets
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, url: str, seconds: float = 300) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"exited {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            check = subprocess.run(["python3", str(DOCKER / "healthcheck.py"), url], capture_output=True, timeout=30)
            if check.returncode == 0:
                return
            time.sleep(2)
        pytest.fail(f"{url} not healthy within {seconds:.0f} s; log {self.log_path}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()


def _command(name: str, port: int, root: Path) -> list[str]:
    cmd = []
    for arg in compose_service(name)["command"]:
        arg = arg.replace("=5000", f"={port}").replace("=/mlflow/", f"={root}/").replace("0.0.0.0", "127.0.0.1")
        cmd.append(str(port) if arg in ("4200", "5000") else arg)
    assert "0.0.0.0" not in " ".join(cmd)  # loopback only here
    return cmd


def _get(url: str, user: str | None = None, password: str | None = None) -> int:
    req = urllib.request.Request(url)
    if user:
        req.add_header("Authorization", "Basic " + b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_compose_mlflow_service_runs_on_postgres_with_basic_auth(cluster, databases, tmp_path):
    if os.environ.get("CI", "").lower() != "true":
        pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs flask-wtf (pyproject's server extra)")
    port = free_port()
    env = service_env("mlflow", cluster, tmp_path, port)
    assert DB_PASSWORD not in json.dumps(env) and "PGPASSWORD_FILE" in env  # the password only in a file
    ini = (DOCKER / "mlflow-auth.ini").read_text().replace("sqlite:////mlflow/", f"sqlite:///{tmp_path}/")
    (tmp_path / "auth.ini").write_text(ini)
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(tmp_path / "auth.ini")
    cmd = _command("mlflow", port, tmp_path)
    assert not any(DB_PASSWORD in a or ADMIN_PASSWORD in a for a in cmd)
    svc = Service(cmd + ["--workers", "1"], env, tmp_path, tmp_path / "mlflow.log")
    try:
        svc.wait_healthy(f"http://127.0.0.1:{port}/health")
        api = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5"
        assert _get(api) == 401
        assert _get(api, "admin", "wrong") == 401
        assert _get(api, "admin", ADMIN_PASSWORD) == 200
        assert int(cluster.query("SELECT count(*) FROM experiments", db="mlflow")) >= 1  # the backend is PostgreSQL
    finally:
        svc.stop()


def test_compose_prefect_service_and_the_worker_script(cluster, databases, tmp_path):
    port, worker_port = free_port(), free_port()
    env = service_env("prefect", cluster, tmp_path, port)
    assert DB_PASSWORD not in json.dumps(env)
    env["PREFECT_HOME"] = str(tmp_path / "prefect-server-home")
    server = Service(_command("prefect", port, tmp_path), env, tmp_path, tmp_path / "prefect.log")
    worker = None
    try:
        server.wait_healthy(f"http://127.0.0.1:{port}/api/health")
        assert int(cluster.query("SELECT count(*) FROM alembic_version", db="prefect")) == 1
        api = f"http://127.0.0.1:{port}/api"
        wenv = {
            **{k: v for k, v in compose_service("worker")["environment"].items() if k.startswith("CTP_")},
            "PREFECT_API_URL": api,
            "CTP_PREFECT_FILE": str(DOCKER / "prefect.yaml"),
            "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
            "PREFECT_WORKER_WEBSERVER_PORT": str(worker_port),
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
        }
        worker = Service(compose_service("worker")["command"], wenv, ROOT, tmp_path / "worker.log")
        worker.wait_healthy(f"http://127.0.0.1:{worker_port}/health", seconds=240)
        _check_worker_setup(api)
    finally:
        if worker:
            worker.stop()
        server.stop()


def _check_worker_setup(api: str) -> None:
    def call(method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"{api}{path}", method=method, data=json.dumps(body or {}).encode())
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    pool = call("GET", "/work_pools/ctp-pool")
    assert pool["type"] == "process"
    dep = call("GET", "/deployments/name/continuous-training/flights-delay")
    assert dep["work_pool_name"] == "ctp-pool" and dep["parameters"]["trigger"] == "schedule"
    assert [s["schedule"]["cron"] for s in dep["schedules"]] == ["0 6 1 * *"]
    limit = call("GET", "/v2/concurrency_limits/train-flights-delay")
    assert limit["limit"] == 1 and limit["active"]
    # the health endpoint answers from startup on; the worker registers with the pool at its first poll
    deadline = time.monotonic() + 120
    while not (workers := call("POST", "/work_pools/ctp-pool/workers/filter", {})) and time.monotonic() < deadline:
        time.sleep(2)
    assert workers and workers[0]["status"] == "ONLINE", workers
