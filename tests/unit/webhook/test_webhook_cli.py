"""`ctp webhook send` against a live receiver, `ctp webhook serve` failing early, and `ctp serve`'s parser and
deployment specs (no Prefect server)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from ctpipeline.errors import ConfigError, CtpError
from ctpipeline.webhook.app import create_app

from conftest import ROOT, WEBHOOK_SECRET, FakeLauncher, free_port, make_webhook_settings


@pytest.fixture(autouse=True)
def _restore_ctpipeline_logger():
    """CLI entry points configure the `ctpipeline` logger with a handler on the (captured) stderr: undo it."""
    log = logging.getLogger("ctpipeline")
    saved = (list(log.handlers), log.level)
    yield
    log.handlers[:] = saved[0]
    log.setLevel(saved[1])


@pytest.fixture
def prefect_api_url(monkeypatch):
    """PREFECT_API_URL for the test, in the environment and in Prefect's settings: Prefect reads the environment
    once, at its import (its global settings context), so a variable set after an earlier test imported Prefect
    would not be seen (unless the session's test server had replaced that context meanwhile: order-dependent)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = "http://127.0.0.1:9/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url


def test_cli_webhook_send_against_a_live_receiver(tmp_path, monkeypatch, capsys):
    import uvicorn

    from ctpipeline.cli.main import build_parser, main

    monkeypatch.setenv("CTP_WEBHOOK_SECRET", WEBHOOK_SECRET.decode())
    launcher = FakeLauncher()
    # the real clock: `send` signs with it
    app = create_app(make_webhook_settings(tmp_path), launcher, secret=WEBHOOK_SECRET)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        url = f"http://127.0.0.1:{port}/alerts"
        assert main(["webhook", "send", "--model", "flights-delay", "--reason", "cli test", "--url", url]) == 0
        out = capsys.readouterr().out
        assert "HTTP 202" in out and '"started"' in out
        assert main(["webhook", "send", "--model", "flights-delay", "--reason", "cli test", "--url", url]) == 0
        assert '"duplicate"' in capsys.readouterr().out
        monkeypatch.setenv("OTHER_SECRET", "wrong")
        assert main(["webhook", "send", "-m", "flights-delay", "--url", url, "--secret-env", "OTHER_SECRET"]) == 1
        assert "HTTP 401" in capsys.readouterr().out
        monkeypatch.delenv("OTHER_SECRET")
        assert main(["webhook", "send", "-m", "flights-delay", "--url", url, "--secret-env", "OTHER_SECRET"]) == 1
        assert "OTHER_SECRET" in capsys.readouterr().err
        assert main(["webhook", "send", "-m", "x", "--url", f"http://127.0.0.1:{free_port()}/alerts"]) == 1
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert len(launcher.calls) == 1 and launcher.calls[0][2].reason == "cli test"

    args = build_parser().parse_args(["serve", "-c", "a.yaml", "--config", "b.yaml", "--cron", "0 6 * * *"])
    assert args.config == ["a.yaml", "b.yaml"] and args.cron == "0 6 * * *" and callable(args.func)
    args = build_parser().parse_args(["webhook", "serve"])
    assert args.config == "configs/webhook.yaml" and args.func.__name__ == "cmd_webhook_serve"


def test_add_commands_plugs_into_an_existing_parser():
    import argparse

    from ctpipeline.cli.webhook import add_commands

    ap = argparse.ArgumentParser(prog="ctp")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("run")
    add_commands(sub)
    args = ap.parse_args(["webhook", "send", "--model", "m"])
    # no --url: the receiver's config (--config) says where to post
    assert args.url is None and args.config is None and args.func.__name__ == "cmd_webhook_send"


def test_cli_webhook_serve_fails_early_without_secret_or_prefect(tmp_path, monkeypatch, capsys, prefect_api_url):
    from ctpipeline.cli.main import main

    cfg = tmp_path / "wh.yaml"
    cfg.write_text(f"models: {{m: flow/dep}}\nstate_path: {tmp_path / 'wh.db'}\n")
    monkeypatch.delenv("CTP_WEBHOOK_SECRET", raising=False)
    assert main(["webhook", "serve", "--config", str(cfg), "--state-dir", str(tmp_path / "state")]) == 1
    assert "CTP_WEBHOOK_SECRET" in capsys.readouterr().err
    assert main(["webhook", "serve", "--config", str(tmp_path / "missing.yaml")]) == 2


# --------------------------------------------------------------------------- deployment specs (no server)


def test_deploy_specs(tmp_path):
    from ctpipeline.adapters.prefect.deployments import deploy_specs

    flights = ROOT / "configs" / "flights.yaml"
    (spec,) = deploy_specs([str(flights)], tmp_path / "state", cron="0 6 * * *")
    assert spec.full_name == "continuous-training/flights-delay" and spec.cron == "0 6 * * *"
    assert spec.parameters == {"config": str(flights), "state_dir": str(tmp_path / "state"), "trigger": "schedule"}
    (spec,) = deploy_specs([str(flights)], tmp_path / "state")
    assert spec.cron == "0 6 1 * *"  # the YAML's triggers.schedule when no --cron is given
    with pytest.raises(ConfigError, match="invalid cron"):
        deploy_specs([str(flights)], tmp_path, cron="every day at six")
    with pytest.raises(ConfigError, match="already defined"):
        deploy_specs([str(flights), str(flights)], tmp_path)
    with pytest.raises(CtpError, match="one per config"):
        deploy_specs([str(flights)], tmp_path, cron=["0 6 * * *", None])
    with pytest.raises(CtpError, match="no pipeline config"):
        deploy_specs([], tmp_path)


# --------------------------------------------------------------------------- send: the config's address and senders


def _serve_in_thread(app, port):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    return server, thread


def test_cli_send_posts_to_the_configs_host_and_port_as_each_kind_of_sender(tmp_path, monkeypatch, capsys):
    import yaml

    from ctpipeline.cli.main import main
    from ctpipeline.webhook.settings import load_webhook_settings

    port = free_port()
    cfg = tmp_path / "wh.yaml"
    senders = [
        {"name": "ctp", "auth": "hmac", "secret_env": "T_HMAC"},
        {"name": "am", "auth": "authorization", "secret_env": "T_TOKEN"},
        {"name": "basic", "auth": "basic", "username": "am", "secret_env": "T_PASSWORD"},
        {
            "name": "gf",
            "auth": "grafana-hmac",
            "secret_env": "T_GF",
            "timestamp_header": "X-Grafana-Alerting-Timestamp",
        },
    ]
    cfg.write_text(yaml.safe_dump({"models": {f"m{i}": "f/d" for i in range(4)}, "senders": senders, "port": port}))
    for i, env in enumerate(("T_HMAC", "T_TOKEN", "T_PASSWORD", "T_GF")):
        monkeypatch.setenv(env, f"cli-secret-{i}-0123456789abcdef")
    launcher = FakeLauncher()
    server, thread = _serve_in_thread(create_app(load_webhook_settings(cfg, tmp_path), launcher), port)
    try:
        for i, sender in enumerate([None, "am", "basic", "gf"]):
            argv = ["webhook", "send", "-c", str(cfg), "-m", f"m{i}", "--name", "N"]
            assert main(argv + (["--sender", sender] if sender else [])) == 0
            out = capsys.readouterr().out
            assert f"HTTP 202 from http://127.0.0.1:{port}/alerts" in out and '"started"' in out
        assert main(["webhook", "send", "-c", str(cfg), "-m", "m0", "--sender", "nope"]) == 2
        assert "no sender 'nope'" in capsys.readouterr().err
        # --url wins over the config; a config that does not exist is a config error
        assert main(["webhook", "send", "-m", "x", "--url", f"http://127.0.0.1:{free_port()}/alerts"]) == 1
        assert main(["webhook", "send", "-c", str(tmp_path / "none.yaml"), "-m", "x"]) == 2
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert [(c[0], c[2].sender, c[2].name) for c in launcher.calls] == [
        ("m0", "ctp", "N"),
        ("m1", "am", "N"),
        ("m2", "basic", "N"),
        ("m3", "gf", "N"),
    ]


def test_cli_serve_puts_a_relative_state_path_in_the_state_folder(tmp_path, monkeypatch, capsys, prefect_api_url):
    import ctpipeline.webhook.app as webhook_app
    from ctpipeline.cli.main import main

    cfg = tmp_path / "conf" / "wh.yaml"
    cfg.parent.mkdir()
    cfg.write_text("models: {m: flow/dep}\nstate_path: webhook/state.db\n")
    monkeypatch.setenv("CTP_WEBHOOK_SECRET", WEBHOOK_SECRET.decode())
    served = []
    monkeypatch.setattr(webhook_app, "serve", lambda app, host, port, verbose=False: served.append((host, port)))
    assert main(["webhook", "serve", "-c", str(cfg), "--state-dir", str(tmp_path / "st"), "--port", "9999"]) == 0
    assert (tmp_path / "st" / "webhook" / "state.db").is_file() and served == [("127.0.0.1", 9999)]
    assert "senders default (hmac)" in capsys.readouterr().out
    monkeypatch.setenv("CTP_HOME", str(tmp_path / "home"))
    assert main(["webhook", "serve", "-c", str(cfg)]) == 0
    assert (tmp_path / "home" / "webhook" / "state.db").is_file()
    monkeypatch.setenv("CTP_WEBHOOK_SECRET", "too-short")
    assert main(["webhook", "serve", "-c", str(cfg)]) == 1
    assert "CTP_WEBHOOK_SECRET" in capsys.readouterr().err and len(served) == 2
