"""describe.py: the routing table `gw check` prints, and no secret in it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gw.config import describe, load_tables
from gw.config.tables import Tables

REPO = Path(__file__).resolve().parents[2]

SECRETS = {
    "OPENAI_API_KEY": "sk-openai-SECRET-0123456789",
    "AZURE_KEY": "azure-SECRET-0123456789",
    "APP_KEY": "gw-app-SECRET-0123456789",
    "ADMIN_KEY": "gw-admin-SECRET-0123456789",
    "HDR": "Bearer hdr-SECRET-0123456789",
    "URL_PASSWORD": "pw-SECRET-0123456789",
}

CONFIG = """\
providers:
  openai: {type: openai, base_url: "https://api.openai.com/v1", api_key: "${OPENAI_API_KEY}",
           headers: {Authorization: "${HDR}"}}
  azure-east: {type: azure, base_url: "https://r.openai.azure.com", api_key: "${AZURE_KEY}",
               api_version: "2024-10-21"}
  anthropic: {type: anthropic, base_url: "https://api.anthropic.com/v1", api_key: ""}
  claude-proxy: {type: anthropic, base_url: "https://user:${URL_PASSWORD}@proxy.example:8443/v1"}
  demo: {type: echo}
models:
  gpt-4o:
    targets:
      - {provider: openai, model: gpt-4o, weight: 2}
      - {provider: azure-east, model: gpt-4o-deployment}
    fallbacks: [claude]
    price: {input_per_mtok: 2.5, output_per_mtok: 10}
  claude:
    targets:
      - {provider: claude-proxy, model: claude-sonnet-4-5, default_max_tokens: 64000}
      - {provider: claude-proxy, model: claude-haiku}
      - {provider: anthropic, model: claude-sonnet-4-5}
  echo:
    targets: [{provider: demo, model: echo}]
auth:
  keys:
    - {name: my-app, key: "${APP_KEY}"}
    - {name: other, key: other-key-0123456789, rate_limit: {rpm: 60}, max_concurrent: 4,
       budget_usd: {amount: 2.5, period: day}}
  admin_key: "${ADMIN_KEY}"
"""


@pytest.fixture
def tables(tmp_path, monkeypatch) -> Tables:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    return load_tables("config.yaml", environ=SECRETS, dotenv=None)


def test_each_model_lists_its_targets_with_weight_and_share(tables):
    text = describe(tables)
    assert (
        "  gpt-4o\n    openai/gpt-4o weight=2 (66.7%)\n    azure-east/gpt-4o-deployment weight=1 (33.3%)\n"
        in text
    )
    assert "    fallbacks: claude\n" in text
    assert "    price: $2.5 in, $10 out per 1M tokens\n" in text
    assert "  echo\n    demo/echo weight=1 (100%)\n" in text


def test_keys_with_limits_are_listed_with_them_and_where_they_are_counted(tables):
    assert "limits (memory: one gw serve, all its workers):\n  other: 60 rpm, 4 in flight, $2.5 a day (UTC)\n" in (
        describe(tables)
    )


def test_anthropic_targets_show_the_effective_default_max_tokens(tables):
    text = describe(tables)
    assert "    claude-proxy/claude-sonnet-4-5 weight=1 (50%) default_max_tokens=64000\n" in text
    assert "    claude-proxy/claude-haiku weight=1 (50%) default_max_tokens=4096\n" in text
    assert "openai/gpt-4o weight=2 (66.7%)\n" in text  # none for other types


def test_providers_show_type_url_and_state(tables):
    lines = describe(tables).splitlines()
    [anthropic] = [line for line in lines if line.startswith("  anthropic ")]
    wanted = "anthropic anthropic https://api.anthropic.com/v1 disabled: api_key is empty"
    assert anthropic.split() == wanted.split()
    [demo] = [line for line in lines if line.startswith("  demo ")]
    assert demo.split() == ["demo", "echo", "(built", "in)", "enabled"]
    [openai] = [line for line in lines if line.startswith("  openai ")]
    assert openai.split() == "openai openai https://api.openai.com/v1 enabled headers: Authorization".split()


def test_auth_shows_key_names_and_whether_an_admin_key_is_set(tables):
    text = describe(tables)
    assert "\nauth: 2 keys (my-app, other)\nadmin key: set\n" in text


def test_dropped_items_and_warnings_are_listed(tables):
    text = describe(tables)
    assert "\ndropped (2):\n" in text
    assert "  provider anthropic: api_key is empty\n" in text
    assert (
        "  target claude → anthropic/claude-sonnet-4-5: provider 'anthropic' disabled: api_key is empty\n"
        in text
    )
    assert "\nwarnings (2):\n" in text


def test_no_secret_ever_appears(tables):
    text = describe(tables)
    for secret in [*SECRETS.values(), "other-key-0123456789", "SECRET"]:
        assert secret not in text
    assert "https://***@proxy.example:8443/v1" in text


def test_the_default_config_describes_echo_and_why_the_rest_is_off(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = describe(load_tables(REPO / "config.yaml", environ={}, dotenv=None))
    assert "models (1):\n  echo\n    demo/echo weight=1 (100%)\n" in text
    assert "auth: disabled (no keys)\nadmin key: not set\n" in text
    assert "  model claude-sonnet: no enabled target\n" in text


def test_patterns_and_where_sample_names_go_are_shown(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "providers:\n  demo: {type: echo}\nmodels:\n"
        '  gpt-5: {targets: [{provider: demo, model: five}]}\n'
        '  "claude-*": {targets: [{provider: demo, model: "up-{model}"}]}\n'
    )
    text = describe(load_tables(path, environ={}, dotenv=None))
    assert "patterns, the most specific first (exact names win over them):\n  claude-*\n" in text
    assert "  claude-sonnet-4-5 -> claude-*: demo/up-claude-sonnet-4-5\n" in text
    assert "  gpt-5 -> gpt-5: demo/five\n" in text
    assert "  gpt-4o-mini -> no model (404)\n" in text
