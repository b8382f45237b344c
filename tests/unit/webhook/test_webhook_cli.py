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
    assert args.url == "http://127.0.0.1:8787/alerts" and args.func.__name__ == "cmd_webhook_send"


def test_cli_webhook_serve_fails_early_without_secret_or_prefect(tmp_path, monkeypatch, capsys):
    from ctpipeline.cli.main import main

    cfg = tmp_path / "wh.yaml"
    cfg.write_text(f"models: {{m: flow/dep}}\nstate_path: {tmp_path / 'wh.db'}\n")
    monkeypatch.delenv("CTP_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
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
