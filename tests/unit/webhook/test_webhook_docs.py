"""docs/webhook.md and configs/webhook.yaml say what the code does: the YAML snippets parse and validate, the
Alertmanager snippet has a default receiver on its root route (amtool itself checks it in
tests/integration/webhook/test_webhook_alertmanager.py), and no `&` hides inside a `#` comment of a command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ctpipeline.webhook.settings import WebhookSettings, load_webhook_settings

from conftest import ROOT

DOC = ROOT / "docs" / "webhook.md"
COMMENT_WITH_AMPERSAND = re.compile(r"(^|\s)#(?!!)[^\n]*&")


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, text) of each fenced block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.M | re.S)


def yaml_blocks() -> list[str]:
    return [text for lang, text in code_blocks(DOC) if lang == "yaml"]


@pytest.mark.parametrize(
    "path",
    [DOC, ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "configs").glob("*.yaml"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_ampersand_inside_a_comment(path):
    texts = [path.read_text(encoding="utf-8")] if path.suffix == ".yaml" else [t for _, t in code_blocks(path)]
    bad = [line for text in texts for line in text.splitlines() if COMMENT_WITH_AMPERSAND.search(line)]
    assert bad == [], f"{path.name}: '&' inside a '#' comment (the shell would not run it in the background): {bad}"


def test_every_yaml_snippet_parses_and_the_senders_snippet_validates():
    docs = [yaml.safe_load(b) for b in yaml_blocks()]
    assert len(docs) >= 4
    (senders,) = [d["senders"] for d in docs if isinstance(d, dict) and "senders" in d]
    s = WebhookSettings(models={"flights-delay": "continuous-training/flights-delay"}, senders=senders)
    assert {x.auth for x in s.effective_senders} == {"hmac", "authorization", "basic", "grafana-hmac"}


def test_the_alertmanager_snippet_routes_to_a_receiver_with_http_config_auth():
    (am,) = [yaml.safe_load(b) for b in yaml_blocks() if "webhook_configs:" in b]
    names = {r["name"] for r in am["receivers"]}
    assert am["route"]["receiver"] in names  # a default receiver on the root route
    assert all(r["receiver"] in names for r in am["route"]["routes"])
    (hook,) = next(r for r in am["receivers"] if r["name"] == "ctp-retrain")["webhook_configs"]
    assert hook["url"] == "http://127.0.0.1:8787/alerts"
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert "credentials_file" in hook["http_config"]["authorization"]  # the token is not in alertmanager.yml


def test_the_grafana_provisioning_snippet_uses_grafanas_setting_names():
    (gf,) = [yaml.safe_load(b) for b in yaml_blocks() if "contactPoints:" in b]
    settings = gf["contactPoints"][0]["receivers"][0]["settings"]
    assert settings["hmacConfig"] == {
        "secret": "$CTP_GRAFANA_HMAC_SECRET",
        "header": "X-Grafana-Alerting-Signature",
        "timestampHeader": "X-Grafana-Alerting-Timestamp",
    }


def test_the_shipped_config_keeps_secrets_out_and_its_state_in_the_state_folder(tmp_path):
    text = (ROOT / "configs" / "webhook.yaml").read_text()
    s = load_webhook_settings(ROOT / "configs" / "webhook.yaml", tmp_path)
    assert s.state_path == str(tmp_path / "webhook" / "state.db")
    assert [x.secret_env for x in s.effective_senders] == ["CTP_WEBHOOK_SECRET"]
    assert "secret:" not in text and "credentials:" not in text and "password:" not in text
