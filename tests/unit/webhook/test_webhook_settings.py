"""Receiver settings: validation, and configs/webhook.yaml read with the project's YAML loader."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ctpipeline.errors import ConfigError
from ctpipeline.webhook.settings import WebhookSettings, load_webhook_settings

from conftest import ROOT, WEBHOOK_MODELS


def test_settings_validation_and_yaml(tmp_path):
    with pytest.raises(ValueError, match="flow-name/deployment-name"):
        WebhookSettings(models={"m": "just-a-name"}, state_path="x.db")
    with pytest.raises(ValueError):
        WebhookSettings(models={}, state_path="x.db")
    s = WebhookSettings(models=WEBHOOK_MODELS, state_path="x.db")
    with pytest.raises(ValidationError):
        s.cooldown_minutes = 1  # frozen
    f = tmp_path / "wh.yaml"
    f.write_text("models: {m: flow/dep}\nstate_path: state/wh.db\ncooldown_minute: 5\n")
    with pytest.raises(ConfigError, match="did you mean 'cooldown_minutes'"):
        load_webhook_settings(f)
    f.write_text("models: {m: flow/dep}\nstate_path: state/wh.db\n")
    s = load_webhook_settings(f)
    assert s.state_path == str(tmp_path / "state" / "wh.db")
    shipped = load_webhook_settings(ROOT / "configs" / "webhook.yaml")
    assert shipped.models["flights-delay"] == "continuous-training/flights-delay" and shipped.host == "127.0.0.1"


def test_settings_defaults_and_state_path(tmp_path):
    f = tmp_path / "wh.yaml"
    f.write_text(f"models: {{m: flow/dep}}\nstate_path: {tmp_path / 'abs' / 'wh.db'}\n")
    s = load_webhook_settings(f)
    assert s.state_path == str(tmp_path / "abs" / "wh.db")  # an absolute path is kept
    assert (s.secret_env, s.max_skew_seconds, s.max_body_bytes) == ("CTP_WEBHOOK_SECRET", 300, 256_000)
    assert (s.dedupe_window_minutes, s.cooldown_minutes, s.host, s.port) == (60, 30, "127.0.0.1", 8787)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        # the project's loader: a key written twice is refused (PyYAML alone keeps the last)
        (
            "models: {m: flow/dep}\nstate_path: a.db\ncooldown_minutes: 5\ncooldown_minutes: 50\n",
            ["not valid YAML: line 4, column 1: key 'cooldown_minutes' appears twice (first on line 3)"],
        ),
        ("models: {m: flow/dep\n", ["not valid YAML: line 2"]),
        ("- a\n- b\n", ["the file must hold a YAML mapping"]),
        ("models: {m: flow/dep}\nstate_path: a.db\nprot: 1\n", ["  - prot: unknown key; did you mean 'port'?"]),
        ("models: {m: flow/dep}\nstate_path: a.db\nzzz: 1\n", ["  - zzz: unknown key; allowed: secret_env, "]),
        (
            "models: {m: dep}\nstate_path: a.db\nport: 0\n",
            [
                "  - models: deployment for 'm' must be 'flow-name/deployment-name', got 'dep'",
                "  - port: Input should be greater than or equal to 1",
            ],
        ),
        (
            "state_path: a.db\nsecret_env: 'not a name'\n",
            ["  - models: Field required", "  - secret_env: String should"],
        ),
    ],
)
def test_bad_settings_files_name_the_file_and_each_problem(tmp_path, text, fragments):
    f = tmp_path / "wh.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_webhook_settings(f)
    assert str(info.value).startswith(f"invalid configuration in {f}:")
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    assert info.value.exit_code == 2


def test_missing_settings_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_webhook_settings(tmp_path / "missing.yaml")
