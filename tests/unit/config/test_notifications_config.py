"""`notifications:` in the pipeline YAML: destinations named by environment variable, events checked with a
"did you mean", a URL written in the YAML refused without echoing it, and `ctp config validate` warning (exit 0)
about a variable that is not set."""

from pathlib import Path

import pytest
import yaml

from ctpipeline.cli.main import main
from ctpipeline.config.notifications import EVENTS, NotificationConfig, unset_variables
from ctpipeline.config.schema import json_schema, load_config
from ctpipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def write(tmp_path, notifications) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "flights.yaml").read_text())
    data["quality"]["suite"] = str(ROOT / "expectations" / "flights.json")
    if notifications is not None:
        data["notifications"] = notifications
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def refused(tmp_path, notifications) -> tuple[str, dict[str, str]]:
    path = write(tmp_path, notifications)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert str(path) in str(ei.value)
    return str(ei.value), dict(ei.value.problems)


def test_default_is_no_destination_and_one_destination_gets_all_four_events(tmp_path):
    assert load_config(write(tmp_path, None)).notifications == []
    (n,) = load_config(write(tmp_path, [{"url_env": "CTP_SLACK_URL"}])).notifications
    assert n.url_env == "CTP_SLACK_URL" and tuple(n.events) == EVENTS == (
        "promoted",
        "rejected",
        "awaiting_approval",
        "failed",
    )
    assert n.timeout_seconds == 5.0


def test_events_can_be_chosen_and_destinations_do_not_change_the_config_hash(tmp_path):
    plain = load_config(write(tmp_path, None))
    cfg = load_config(write(tmp_path, [{"url_env": "A", "events": ["rejected", "failed"], "timeout_seconds": 2}]))
    assert cfg.notifications[0].events == ["rejected", "failed"] and cfg.notifications[0].timeout_seconds == 2
    assert cfg.config_hash() == plain.config_hash()  # where messages go is not what the pipeline does


def test_unknown_event_names_key_and_suggests_the_closest(tmp_path):
    _, problems = refused(tmp_path, [{"url_env": "A", "events": ["promoted", "rejeted"]}])
    assert "unknown event 'rejeted'; did you mean 'rejected'?" in problems["notifications.0.events"]


def test_misspelled_key_in_a_destination_gets_a_suggestion(tmp_path):
    _, problems = refused(tmp_path, [{"url_env": "A", "evnts": ["failed"]}])
    assert problems["notifications.0.evnts"] == "unknown key; did you mean 'events'?"


def test_a_url_in_the_yaml_is_refused_without_echoing_it(tmp_path):
    secret = "slack://T000/B000/s3cr3t-token"
    text, problems = refused(tmp_path, [{"url": secret}])
    assert "'url' is refused" in problems["notifications.0"] and "url_env" in problems["notifications.0"]
    assert "s3cr3t" not in text
    text, problems = refused(tmp_path, [{"url_env": secret}])  # the URL where the variable's name goes
    assert "not the URL itself" in problems["notifications.0.url_env"] and "s3cr3t" not in text


@pytest.mark.parametrize(
    "item, key",
    [
        ({"url_env": "1ABC"}, "url_env"),
        ({"url_env": "A", "events": []}, "events"),
        ({"url_env": "A", "events": "failed"}, "events"),
        ({"url_env": "A", "timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_bad_values_name_their_key(tmp_path, item, key):
    _, problems = refused(tmp_path, [item])
    assert f"notifications.0.{key}" in problems


def test_unset_variables_are_listed_with_their_key():
    dests = [NotificationConfig(url_env="SET"), NotificationConfig(url_env="UNSET", events=["failed"])]
    assert unset_variables(dests, {"SET": "json://x", "UNSET": ""}) == [
        ("notifications.1.url_env", "UNSET is not set in the environment: failed messages to it will not be sent")
    ]


def test_cli_validate_warns_about_an_unset_variable_and_still_exits_0(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, [{"url_env": "CTP_TEST_NOTIFY_UNSET"}])
    monkeypatch.delenv("CTP_TEST_NOTIFY_UNSET", raising=False)
    assert main(["config", "validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert "OK" in captured.out
    assert "warning:" in captured.err and "notifications.0.url_env" in captured.err
    assert "CTP_TEST_NOTIFY_UNSET is not set" in captured.err
    monkeypatch.setenv("CTP_TEST_NOTIFY_UNSET", "json://127.0.0.1:9/x")
    assert main(["config", "validate", str(path)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_schema_describes_notifications():
    props = json_schema()["properties"]
    assert "notifications" in props
    shipped = (ROOT / "docs" / "config.schema.json").read_text()
    assert '"url_env"' in shipped and '"awaiting_approval"' in shipped  # docs/config.schema.json regenerated
