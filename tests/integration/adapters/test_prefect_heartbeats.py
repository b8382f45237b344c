"""Flow runs that `ctp replay`/`ctp demo` start on the embedded server send no flow-run heartbeats (nothing reads
them there, and the engine's heartbeat thread costs up to 1 s at the end of every flow run); with a Prefect server
configured they keep Prefect's default."""

from __future__ import annotations

from prefect import flow
from prefect.flow_engine import FlowRunEngine
from prefect.settings import get_current_settings

from ctpipeline.adapters.prefect.server import embedded_flow_settings


@flow
def _noop() -> int:
    return 1


def test_embedded_flow_runs_send_no_heartbeats(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", "/nonexistent/profiles.toml")  # no API URL from a profile either
    default = get_current_settings().flows.heartbeat_frequency
    assert default is not None and FlowRunEngine(flow=_noop).heartbeat_seconds is not None
    with embedded_flow_settings():
        assert get_current_settings().flows.heartbeat_frequency is None
        assert FlowRunEngine(flow=_noop).heartbeat_seconds is None  # the engine starts no heartbeat thread
    assert get_current_settings().flows.heartbeat_frequency == default


def test_with_a_server_configured_the_heartbeats_stay(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    default = get_current_settings().flows.heartbeat_frequency
    with embedded_flow_settings():
        assert get_current_settings().flows.heartbeat_frequency == default
        assert FlowRunEngine(flow=_noop).heartbeat_seconds == max(default, 30)
