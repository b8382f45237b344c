"""The Apprise adapter against a real HTTP endpoint on 127.0.0.1: a json:// URL POSTs the message as JSON; a
refusing, closed or silent endpoint is a reason (never an exception) within the timeout; nothing Apprise or
urllib3 logs while sending reaches the logs (it may word the URL, which carries the token)."""

import logging
import socket
import time

import pytest

from ctpipeline.adapters.notify import send
from notify_support import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_json_url_posts_title_body_and_type(receiver):
    assert send(receiver.url("/ctp/hook"), "the title", "line 1\nline 2", "success", timeout=5) is None
    ((path, body),) = receiver.posts
    assert path == "/ctp/hook"
    assert body["title"] == "the title" and body["message"] == "line 1\nline 2" and body["type"] == "success"


def test_refused_closed_and_unknown_destinations_are_reasons_not_exceptions(receiver, caplog):
    from conftest import free_port

    caplog.set_level(logging.DEBUG)
    receiver.status = 500
    why = send(receiver.url(userinfo="user:TOPSECRET"), "t", "b", "failure", timeout=5)
    assert why and "refused" in why and len(receiver.posts) == 1
    assert "refused" in send(f"json://user:TOPSECRET@127.0.0.1:{free_port()}/x", "t", "b", "info", timeout=2)
    assert "not a URL Apprise can use" in send("nosuchscheme://TOPSECRET", "t", "b", "info", timeout=2)
    assert "not a URL Apprise can use" in send("TOPSECRET", "t", "b", "info", timeout=2)
    assert "TOPSECRET" not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith(("apprise", "urllib3"))]


def test_an_endpoint_that_never_answers_costs_at_most_the_timeout():
    with socket.socket() as listener:  # accepts connections (the kernel's backlog), never reads or answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        send(f"json://127.0.0.1:{listener.getsockname()[1]}/x", "t", "b", "info", timeout=0.5)  # plugins loaded
        t0 = time.monotonic()
        why = send(f"json://127.0.0.1:{listener.getsockname()[1]}/x", "t", "b", "info", timeout=1)
        elapsed = time.monotonic() - t0
    assert why and "did not answer within 1 s" in why
    assert 0.9 <= elapsed < 4, elapsed
