"""compile.py: providers on or off, dropped targets and models, auth, immutability."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import textwrap
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from gw.config import ConfigError, load_tables
from gw.config.tables import ApiKey, Dropped, ProviderType, Tables, Target

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
providers:
  openai: {type: openai, base_url: "https://api.openai.com/v1", api_key: "${OPENAI_API_KEY:-}"}
  anthropic: {type: anthropic, base_url: "https://api.anthropic.com/v1", api_key: sk-ant-configured-key}
  local: {type: openai, base_url: "http://localhost:8000/v1", headers: {X-A: b}}
  down: {type: ollama, base_url: "http://localhost:11434", enabled: false}
  demo: {type: echo}
models:
  gpt-4o:
    targets:
      - {provider: openai, model: gpt-4o, weight: 2}
      - {provider: local, model: gpt-4o-local}
    fallbacks: [claude, llama]
    price: {input_per_mtok: 2.5, output_per_mtok: 10}
  claude:
    targets: [{provider: anthropic, model: claude-sonnet-4-5, default_max_tokens: 64000}]
  llama:
    targets: [{provider: down, model: llama3.2}]
  echo:
    targets: [{provider: demo, model: echo}]
auth:
  keys:
    - {name: app, key: gw-app-key-0123456789, models: ["gpt-*", "echo"], rate_limit: {rpm: 10}}
    - {name: all, key: gw-all-key-0123456789}
  admin_key: gw-admin-key-0123456789
routing:
  retry_on: [429, timeout]
"""


@pytest.fixture
def compile_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def run(text: str = CONFIG, env: dict[str, str] | None = None) -> Tables:
        (tmp_path / "config.yaml").write_text(textwrap.dedent(text))
        return load_tables("config.yaml", environ=env or {}, dotenv=None)

    return run


def test_every_provider_is_kept_with_its_state(compile_text):
    t = compile_text()
    assert list(t.providers) == ["openai", "anthropic", "local", "down", "demo"]
    assert t.providers["openai"].enabled is False
    assert t.providers["openai"].disabled_reason == "api_key is empty"
    assert t.providers["down"].disabled_reason == "disabled in config"
    assert t.providers["local"].enabled and t.providers["local"].api_key is None
    assert t.providers["local"].headers == (("X-A", "b"),)
    assert t.providers["anthropic"].type is ProviderType.ANTHROPIC
    assert t.providers["anthropic"].api_key == "sk-ant-configured-key"
    assert t.providers["demo"].base_url == ""


def test_a_target_on_a_disabled_provider_is_dropped_with_a_warning(compile_text, caplog):
    with caplog.at_level(logging.WARNING, logger="gw.config"):
        t = compile_text()
    assert t.models["gpt-4o"].targets == (Target("local", "gpt-4o-local", 1),)
    drop = Dropped(kind="target", name="gpt-4o → openai/gpt-4o", reason="provider 'openai' disabled: api_key is empty")
    assert drop in t.dropped
    assert "target gpt-4o → openai/gpt-4o dropped: provider 'openai' disabled: api_key is empty" in t.warnings
    assert (
        "config.yaml: target gpt-4o → openai/gpt-4o dropped: provider 'openai' disabled: api_key is empty"
        in caplog.messages
    )


def test_a_disabled_provider_is_a_warning(compile_text, caplog):
    with caplog.at_level(logging.WARNING, logger="gw.config"):
        t = compile_text()
    assert "provider 'openai' disabled: api_key is empty" in t.warnings
    assert Dropped(kind="provider", name="openai", reason="api_key is empty") in t.dropped
    assert "config.yaml: provider 'openai' disabled: api_key is empty" in caplog.messages


def test_a_model_left_without_targets_is_dropped_with_a_warning(compile_text):
    t = compile_text()
    assert "llama" not in t.models
    assert Dropped(kind="model", name="llama", reason="no enabled target") in t.dropped
    assert Dropped(kind="target", name="llama → down/llama3.2", reason="provider 'down' disabled: disabled in config") in t.dropped
    assert (
        "model 'llama' dropped: no enabled target (down/llama3.2: provider 'down' disabled: disabled in config)"
        in t.warnings
    )


def test_a_fallback_to_a_dropped_model_is_dropped_with_a_warning(compile_text):
    t = compile_text()
    assert t.models["gpt-4o"].fallbacks == ("claude",)
    assert Dropped(kind="fallback", name="gpt-4o → llama", reason="model 'llama' was dropped") in t.dropped
    assert "fallback gpt-4o → llama dropped: model 'llama' was dropped" in t.warnings


def test_setting_the_key_variable_turns_the_provider_on(compile_text):
    t = compile_text(env={"OPENAI_API_KEY": "sk-test-openai-0123456789"})
    assert t.providers["openai"].enabled
    assert [x.provider for x in t.models["gpt-4o"].targets] == ["openai", "local"]
    assert t.models["gpt-4o"].targets[0].weight == 2


def test_no_model_left_is_an_error(compile_text):
    text = "providers:\n  openai: {type: openai, base_url: 'http://x', api_key: ''}\n"
    text += "models:\n  a: {targets: [{provider: openai, model: a}]}\n"
    with pytest.raises(ConfigError) as exc:
        compile_text(text)
    assert exc.value.problems == ("config.yaml: models: no model has an enabled target",)


def test_an_empty_models_section_is_the_same_error(compile_text):
    with pytest.raises(ConfigError) as exc:
        compile_text("models: {}\n")
    assert exc.value.problems == ("config.yaml: models: no model has an enabled target",)


def test_keys_are_looked_up_by_sha256_digest(compile_text):
    t = compile_text()
    key = t.auth.keys_by_digest[hashlib.sha256(b"gw-app-key-0123456789").digest()]
    assert isinstance(key, ApiKey) and key.name == "app"
    assert key.rate_limit is not None and key.rate_limit.rpm == 10 and key.rate_limit.tpm is None
    assert t.auth.admin_key_digest == hashlib.sha256(b"gw-admin-key-0123456789").digest()
    assert t.auth.enabled


def test_key_globs_resolve_to_the_compiled_model_names(compile_text):
    t = compile_text()
    by_name = {k.name: k for k in t.auth.keys_by_digest.values()}
    assert by_name["app"].allowed_models == frozenset({"gpt-4o", "echo"})
    assert by_name["app"].model_globs == ("gpt-*", "echo")
    assert by_name["all"].allowed_models == frozenset({"gpt-4o", "claude", "echo"})


def test_a_glob_matching_no_model_is_a_warning(compile_text):
    t = compile_text(CONFIG.replace('"gpt-*", "echo"', '"gpt-*", "mistral-*"'))
    assert "auth key 'app': models pattern 'mistral-*' matches no model" in t.warnings


def test_no_keys_disables_auth_with_a_warning(compile_text, caplog):
    text = CONFIG.split("auth:")[0]
    with caplog.at_level(logging.WARNING, logger="gw.config"):
        t = compile_text(text)
    assert not t.auth.enabled and t.auth.admin_key_digest is None
    assert "auth disabled: no keys configured" in t.warnings
    assert "config.yaml: auth disabled: no keys configured" in caplog.messages


def test_routing_and_the_other_sections_are_compiled(compile_text):
    t = compile_text(CONFIG + "server: {cors: {allow_origins: ['*']}}\ncache: {backend: memory}\n")
    assert t.routing.retry_on == frozenset({429, "timeout"})
    assert t.server.cors_allow_origins == ("*",)
    assert t.cache.backend == "memory"
    assert t.source == "config.yaml"
    assert compile_text().server.cors_allow_origins is None


def _walk(obj: Any, path: str, seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    assert not isinstance(obj, (list, dict, set, bytearray)), f"{path} is a mutable {type(obj).__name__}"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        assert type(obj).__dataclass_params__.frozen, f"{path}: {type(obj).__name__} is not frozen"  # type: ignore[attr-defined]
        for f in dataclasses.fields(obj):
            _walk(getattr(obj, f.name), f"{path}.{f.name}", seen)
    elif isinstance(obj, MappingProxyType):
        for k, v in obj.items():
            _walk(k, f"{path}[key]", seen)
            _walk(v, f"{path}[{k!r}]", seen)
    elif isinstance(obj, (tuple, frozenset)):
        for i, v in enumerate(obj):
            _walk(v, f"{path}[{i}]", seen)
    else:
        assert isinstance(obj, (str, bytes, int, float, bool, type(None))), f"{path}: {type(obj).__name__}"


def test_nothing_mutable_is_reachable_from_the_tables(compile_text):
    _walk(compile_text(CONFIG + "server: {cors: {allow_origins: ['*']}}\n"), "tables", set())


def test_the_tables_cannot_be_changed(compile_text):
    t = compile_text()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.models = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        t.models["x"] = t.models["echo"]  # type: ignore[index]


def test_strings_from_expansion_come_out_as_plain_str(compile_text):
    t = compile_text(env={"OPENAI_API_KEY": "sk-test-openai-0123456789"})
    assert type(t.providers["openai"].api_key) is str


# --- the default config.yaml ------------------------------------------------


def test_the_default_config_serves_only_echo_with_an_empty_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env from the repo
    t = load_tables(REPO / "config.yaml", environ={}, dotenv=None)
    assert list(t.models) == ["echo"]
    assert [p for p in t.providers if t.providers[p].enabled] == ["demo"]
    assert "auth disabled: no keys configured" in t.warnings
    assert "provider 'openai' disabled: api_key is empty" in t.warnings
    assert "provider 'ollama' disabled: disabled in config" in t.warnings
    assert {d.name for d in t.dropped if d.kind == "model"} == {
        "gpt-4o-mini", "gpt-4o", "claude-sonnet", "gemini-flash", "llama3"
    }
    assert (t.server.host, t.server.port) == ("0.0.0.0", 8080)
    assert t.auth.admin_key_digest is None


def test_the_default_config_turns_openai_on_with_its_key(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    t = load_tables(REPO / "config.yaml", environ={"OPENAI_API_KEY": "sk-test-0123456789abcdef"}, dotenv=None)
    assert set(t.models) == {"echo", "gpt-4o", "gpt-4o-mini"}
    assert t.models["gpt-4o"].targets == (Target("openai", "gpt-4o"),)


def test_the_default_config_turns_on_every_backend_from_its_variables(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    env = {
        "OPENAI_API_KEY": "sk-a-0123456789abcdef",
        "ANTHROPIC_API_KEY": "sk-b-0123456789abcdef",
        "GEMINI_API_KEY": "sk-c-0123456789abcdef",
        "OLLAMA_ENABLED": "true",
        "OLLAMA_BASE_URL": "http://gpu:11434/",
        "GW_ADMIN_KEY": "admin-0123456789abcdef",
    }
    t = load_tables(REPO / "config.yaml", environ=env, dotenv=None)
    assert set(t.models) == {"echo", "gpt-4o", "gpt-4o-mini", "claude-sonnet", "gemini-flash", "llama3"}
    assert t.providers["ollama"].base_url == "http://gpu:11434"
    assert t.models["claude-sonnet"].targets[0].default_max_tokens == 64000
    assert t.auth.admin_key_digest is not None


def test_the_health_check_thresholds_are_compiled_into_routing(compile_text):
    t = compile_text(CONFIG + "  health_check: {interval_s: 2.5, unhealthy_after: 4, healthy_after: 3}\n")
    r = t.routing
    assert (r.health_check_interval_s, r.health_check_unhealthy_after, r.health_check_healthy_after) == (2.5, 4, 3)
    r = compile_text().routing
    assert (r.health_check_interval_s, r.health_check_unhealthy_after, r.health_check_healthy_after) == (0.0, 2, 1)
