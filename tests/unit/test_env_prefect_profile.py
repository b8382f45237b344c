"""ctpipeline.env: PREFECT_HOME defaults to the state folder only when no Prefect server is configured (neither
PREFECT_API_URL in the environment nor in the user's active Prefect profile), and a flow run's own process lets
the project's INFO lines through to Prefect's handlers."""

from __future__ import annotations

import logging
import os

import pytest

from ctpipeline.env import configure_environment, configure_flow_logging, prefect_server_configured, profile_api_url
from ctpipeline.store.state import StatePaths

PROFILES = """
active = "team"

[profiles.ephemeral]
PREFECT_SERVER_ALLOW_EPHEMERAL_MODE = "true"

[profiles.team]
PREFECT_API_URL = "http://127.0.0.1:4200/api"
"""


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for k in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.prefect/profiles.toml of a user without one
    return tmp_path


def test_no_server_configured_prefect_home_is_the_state_folder(clean_env):
    configure_environment(StatePaths(clean_env / "state"))
    assert os.environ["PREFECT_HOME"] == str(clean_env / "state" / "prefect")


def test_api_url_in_the_environment_keeps_prefects_own_home(clean_env, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    configure_environment(StatePaths(clean_env / "state"))
    assert "PREFECT_HOME" not in os.environ


def test_prefect_config_set_in_the_users_profile_is_honoured(clean_env):
    home = clean_env / "home" / ".prefect"
    home.mkdir(parents=True)
    (home / "profiles.toml").write_text(PROFILES)  # what `prefect config set PREFECT_API_URL=...` writes
    assert profile_api_url() == "http://127.0.0.1:4200/api"
    configure_environment(StatePaths(clean_env / "state"))
    assert "PREFECT_HOME" not in os.environ  # so Prefect reads ~/.prefect/profiles.toml and finds the server


def test_profiles_path_and_profile_variables_are_followed(clean_env, monkeypatch):
    path = clean_env / "elsewhere.toml"
    path.write_text(PROFILES)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(path))
    assert prefect_server_configured()
    monkeypatch.setenv("PREFECT_PROFILE", "ephemeral")  # the active profile sets no server
    assert not prefect_server_configured()
    configure_environment(StatePaths(clean_env / "state"))
    assert os.environ["PREFECT_HOME"] == str(clean_env / "state" / "prefect")


@pytest.mark.parametrize("text", ["not toml [", 'active = "gone"\n', "[profiles.team]\nPREFECT_API_URL = ''\n"])
def test_broken_or_empty_profiles_count_as_no_server(clean_env, monkeypatch, text):
    path = clean_env / "p.toml"
    path.write_text(text)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(path))
    assert profile_api_url() is None


def test_flow_process_logs_ctpipeline_info_through_prefects_handlers():
    ours, extra = logging.getLogger("ctpipeline"), logging.getLogger("prefect.extra")
    saved = (ours.level, list(ours.handlers), list(extra.handlers))
    api = logging.Handler()  # stands for Prefect's APILogHandler on `prefect.extra`
    try:
        ours.setLevel(logging.NOTSET)  # as in a worker's child: effective level = the root's WARNING
        ours.handlers[:] = []
        extra.handlers[:] = [api]
        logging.getLogger().setLevel(logging.WARNING)
        assert not ours.isEnabledFor(logging.INFO)
        configure_flow_logging()
        configure_flow_logging()  # twice: still one handler
        assert ours.isEnabledFor(logging.INFO) and ours.handlers == [api]
        ours.setLevel(logging.DEBUG)  # --verbose stays
        configure_flow_logging()
        assert ours.level == logging.DEBUG
    finally:
        ours.setLevel(saved[0])
        ours.handlers[:] = saved[1]
        extra.handlers[:] = saved[2]
