"""The embedded server's settings (`adapters.prefect.server.use_api`): once this process's own ephemeral server has
a port, every thread's Prefect clients talk to it, without a UI link, while the environment still says "embedded"
(no PREFECT_API_URL); the flow runs of one replay are named through one flow object (`NextRunName`)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ctpipeline.adapters.prefect import server
from ctpipeline.adapters.prefect.results import NextRunName, run_name


def in_new_thread(fn):
    """fn() on a thread started now, with no settings of its own (as Prefect's workers are): it reads the global
    ones, whatever settings a test harness entered on this one."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


@pytest.fixture
def restored_settings(monkeypatch):
    """The process's global settings as they were, afterwards; during the test, no API URL in them (a test
    harness earlier on this worker puts its own server's there)."""
    import prefect.context
    from prefect.settings import PREFECT_API_URL

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    current = prefect.context.GLOBAL_SETTINGS_CONTEXT
    settings = current.settings.copy_with_update(restore_defaults={PREFECT_API_URL})
    context = prefect.context.SettingsContext(profile=current.profile, settings=settings)
    monkeypatch.setattr(prefect.context, "GLOBAL_SETTINGS_CONTEXT", context)
    monkeypatch.setattr(server, "_api_url", [])
    yield


def test_use_api_points_every_thread_at_the_server_without_a_ui_link(restored_settings):
    from prefect.settings import PREFECT_API_URL
    from prefect.utilities.urls import url_for

    from ctpipeline.env import prefect_server_configured

    assert server.embedded_api_url() is None
    url = "http://127.0.0.1:8765/api"
    server.use_api(url)
    link = in_new_thread(lambda: url_for("flow-run", obj_id="5f2a6f36-0000-0000-0000-000000000000"))
    assert in_new_thread(PREFECT_API_URL.value) == url and link is None
    assert server.embedded_api_url() == url
    assert not prefect_server_configured()  # the environment is untouched: still the embedded mode


def test_the_embedded_servers_url_still_counts_as_embedded_for_the_training_slot(restored_settings, monkeypatch):
    """A dead holder's slots are reclaimed on an ephemeral server only; our own embedded server is one."""
    from prefect.settings import get_current_settings

    from ctpipeline.adapters.prefect import concurrency

    home = in_new_thread(lambda: Path(get_current_settings().home))
    assert in_new_thread(lambda: concurrency._embedded_home(home)) == home  # no API URL at all
    server.use_api("http://127.0.0.1:8766/api")
    assert in_new_thread(lambda: concurrency._embedded_home(home)) == home  # ours
    monkeypatch.setattr(server, "_api_url", ["http://127.0.0.1:9999/api"])
    assert in_new_thread(lambda: concurrency._embedded_home(home)) is None  # someone else's server


def test_next_run_name_is_the_name_set_last():
    names = NextRunName()
    assert names() == run_name("", None)
    names.value = run_name("flights-delay", "2013-05")
    assert names() == "flights-delay/2013-05"
