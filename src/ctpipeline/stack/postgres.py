"""The stack's PostgreSQL: a cluster of its own in ``<stack>/postgres/data`` made with Debian's ``initdb`` and run
with its ``postgres``, listening on 127.0.0.1 only (no Unix socket), password (SCRAM) authentication, superuser
``ctp``, and one role and database each for MLflow and Prefect.

PostgreSQL refuses to run as root. When ``ctp`` runs as root, initdb and postgres run as an unprivileged user:
$CTP_STACK_PG_USER, else the ``postgres`` system user that Debian's package creates, else ``nobody``; the data
folder is given to that user (mode 0700) and every folder above it must let that user through (``o+x``).
Passwords never appear on a command line: initdb reads the superuser's from a 0600 file it owns, removed at once.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from urllib.parse import quote

from ctpipeline.errors import ConfigError, CtpError
from ctpipeline.stack.layout import HOST, StackPaths
from ctpipeline.stack.processes import ProcessSpec, StartError, log_tail

SUPERUSER = "ctp"
DATABASES = {"mlflow": "mlflow_db", "prefect": "prefect_db"}  # role = database -> its secret
MISSING = (
    "PostgreSQL's server programs (initdb, postgres, pg_isready) were not found: install Debian's `postgresql` "
    "package (apt-get install -y postgresql), or set CTP_PG_BINDIR to the folder that holds them"
)
TOOLS = ("initdb", "postgres", "pg_isready")


def _has_tools(d: Path) -> bool:
    return all((d / t).is_file() and os.access(d / t, os.X_OK) for t in TOOLS)


def find_bindir() -> Path:
    """$CTP_PG_BINDIR, else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin, else PATH."""
    candidates: list[Path] = []
    if os.environ.get("CTP_PG_BINDIR"):
        candidates.append(Path(os.environ["CTP_PG_BINDIR"]))
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.TimeoutExpired):
            pass
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0))
    candidates += [Path(p) for p in reversed(versions)]
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).resolve().parent)
    for d in candidates:
        if _has_tools(d):
            return d
    raise CtpError(MISSING)


def service_user() -> tuple[int, int, str] | None:
    """(uid, gid, name) of the user that runs PostgreSQL when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("CTP_STACK_PG_USER")
    if not name:
        name = "postgres" if _user_exists("postgres") else "nobody"
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError("CTP_STACK_PG_USER", f"no such user {name!r}") from None
    if pw.pw_uid == 0:
        raise ConfigError("CTP_STACK_PG_USER", "PostgreSQL refuses to run as root: name an unprivileged user")
    return pw.pw_uid, pw.pw_gid, name


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def check_reachable(folder: Path, user: tuple[int, int, str]) -> None:
    """CtpError naming the first folder above `folder` that `user` may not pass through."""
    uid, gid, name = user
    for d in reversed(folder.resolve().parents):
        if not d.exists():  # made by `up`, for that user
            break
        st = d.stat()
        bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
        if not st.st_mode & bit:
            raise CtpError(
                f"PostgreSQL runs as user {name!r} (it refuses root) and cannot pass through {d} "
                f"(mode {stat.filemode(st.st_mode)}): `chmod o+x {d}`, or choose a --stack-dir elsewhere"
            )


def _own(path: Path, user: tuple[int, int, str] | None) -> None:
    if user is not None:
        os.chown(path, user[0], user[1])


def init_cluster(paths: StackPaths, bindir: Path, user: tuple[int, int, str] | None, password: str) -> bool:
    """Create the cluster unless it exists; True when it was created. StartError naming the log on failure."""
    if (paths.pg_data / "PG_VERSION").exists():
        return False
    paths.pg_home.mkdir(mode=0o700, parents=True, exist_ok=True)
    _own(paths.pg_home, user)
    pwfile = paths.pg_home / ".initdb-password"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    _own(pwfile, user)
    log = paths.log("postgres")
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(bindir / "initdb"), "-D", str(paths.pg_data), "-U", SUPERUSER, "--auth=scram-sha-256"]
    argv += [f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-instructions"]
    as_user = {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}
    try:
        with open(log, "ab") as out:
            out.write(f"\n=== ctp stack: {' '.join(argv)}\n".encode())
            out.flush()
            rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=paths.pg_home, timeout=180, **as_user)
    except subprocess.TimeoutExpired:
        raise StartError(f"initdb did not finish in 180s; see {log}") from None
    finally:
        pwfile.unlink(missing_ok=True)
    if rc.returncode != 0:
        raise StartError(f"initdb failed (exit {rc.returncode}); see {log}:\n{log_tail(log, {})}")
    return True


def postgres_spec(paths: StackPaths, bindir: Path, port: int, user: tuple[int, int, str] | None) -> ProcessSpec:
    argv = [str(bindir / "postgres"), "-D", str(paths.pg_data), "-c", f"listen_addresses={HOST}", "-c", f"port={port}"]
    argv += ["-c", "unix_socket_directories=", "-c", "max_connections=200"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    # SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for every client to disconnect)
    return ProcessSpec(
        "postgres",
        argv,
        env,
        paths.pg_data,
        port=port,
        user=None if user is None else user[:2],
        stop_signal=signal.SIGINT,
        group_signal=False,
    )


def pg_ready(bindir: Path, port: int) -> bool:
    try:
        r = subprocess.run(
            [str(bindir / "pg_isready"), "-h", HOST, "-p", str(port), "-t", "2"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def database_url(driver: str, role: str, password: str, port: int) -> str:
    return f"{driver}://{role}:{quote(password, safe='')}@{HOST}:{port}/{role}"


def _connect(port: int, password: str):
    try:
        import psycopg2
    except ImportError:
        raise CtpError("psycopg2 is missing: install the server extra (pip install 'ctpipeline[server]')") from None
    try:
        return psycopg2.connect(
            host=HOST, port=port, user=SUPERUSER, password=password, dbname="postgres", connect_timeout=10
        )
    except psycopg2.OperationalError as exc:
        if "password authentication failed" in str(exc):
            raise CtpError(
                f"PostgreSQL on {HOST}:{port} rejected the password of {SUPERUSER!r}: set CTP_STACK_PG_PASSWORD to "
                "the one the cluster was created with (or remove the stack's postgres/ folder to start afresh)"
            ) from None
        raise CtpError(f"cannot connect to PostgreSQL on {HOST}:{port}: {str(exc).strip()}") from None


def ensure_databases(port: int, secrets: dict[str, str]) -> list[str]:
    """Roles and databases `mlflow` and `prefect` (created when missing; role passwords set to the current
    secrets every time, so a changed environment variable takes effect); the names of those created."""
    conn = _connect(port, secrets["pg_superuser"])
    created = []
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            # a failing statement would be logged with its text, password included: log none
            cur.execute("SET log_min_error_statement = 'panic'")
            cur.execute("SET log_statement = 'none'")
            for role, key in DATABASES.items():
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                verb = "ALTER" if cur.fetchone() else "CREATE"
                cur.execute(f'{verb} ROLE "{role}" WITH LOGIN PASSWORD %s', (secrets[key],))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (role,))
                if not cur.fetchone():
                    cur.execute(f'CREATE DATABASE "{role}" OWNER "{role}" ENCODING \'UTF8\'')
                    created.append(role)
    finally:
        conn.close()
    return created
