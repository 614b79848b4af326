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

from gw.config import ConfigError, load_tables, log_warnings
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
    assert t.providers["openai"].disabled_reason == "OPENAI_API_KEY is not set"
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
    why = "provider 'openai' disabled: OPENAI_API_KEY is not set"
    assert Dropped(kind="target", name="gpt-4o → openai/gpt-4o", reason=why) in t.dropped
    assert f"target gpt-4o → openai/gpt-4o dropped: {why}" in t.warnings
    assert f"config.yaml: target gpt-4o → openai/gpt-4o dropped: {why}" in caplog.messages


def test_a_disabled_provider_is_a_warning_naming_the_variable_its_key_comes_from(compile_text, caplog):
    with caplog.at_level(logging.WARNING, logger="gw.config"):
        t = compile_text()
    warning = "providers.openai.api_key is empty (OPENAI_API_KEY is not set): provider disabled"
    assert warning in t.warnings
    assert Dropped(kind="provider", name="openai", reason="OPENAI_API_KEY is not set") in t.dropped
    assert f"config.yaml: {warning}" in caplog.messages
    assert "providers.down.enabled is false: provider disabled" in t.warnings


def test_a_variable_set_but_empty_is_named_as_empty(compile_text):
    t = compile_text(env={"OPENAI_API_KEY": ""})
    assert t.providers["openai"].disabled_reason == "OPENAI_API_KEY is empty"
    assert "providers.openai.api_key is empty (OPENAI_API_KEY is empty): provider disabled" in t.warnings


def test_an_empty_key_written_in_the_file_or_set_by_a_gw_variable_says_so(compile_text):
    t = compile_text(CONFIG.replace('"${OPENAI_API_KEY:-}"', '""'))
    assert t.providers["openai"].disabled_reason == "api_key is empty"
    assert "providers.openai.api_key is empty: provider disabled" in t.warnings
    t = compile_text(
        env={"OPENAI_API_KEY": "sk-test-openai-0123456789", "GW__PROVIDERS__OPENAI__API_KEY": ""}
    )
    assert t.providers["openai"].disabled_reason == "api_key is empty (set by GW__PROVIDERS__OPENAI__API_KEY)"


def test_a_provider_switched_off_by_a_variable_names_it(compile_text):
    t = compile_text(CONFIG.replace("enabled: false", "enabled: '${DOWN_ENABLED:-false}'"))
    assert t.providers["down"].disabled_reason == "disabled in config (DOWN_ENABLED is not set)"
    assert "providers.down.enabled is false (DOWN_ENABLED is not set): provider disabled" in t.warnings


def test_a_model_whose_providers_are_all_disabled_is_recorded_with_why(compile_text):
    t = compile_text()
    assert dict(t.dropped_models) == {"llama": "its provider 'down' is disabled: disabled in config"}
    assert isinstance(t.dropped_models, MappingProxyType)
    text = CONFIG.replace("{provider: local, model: gpt-4o-local}", "{provider: down, model: gpt-4o-local}")
    t = compile_text(text)
    assert t.dropped_models["gpt-4o"] == (
        "its providers are all disabled ('openai': OPENAI_API_KEY is not set; 'down': disabled in config)"
    )


def test_a_model_with_an_enabled_target_left_is_not_recorded_as_dropped(compile_text):
    assert "gpt-4o" not in compile_text().dropped_models


def test_a_model_left_without_targets_is_dropped_with_a_warning(compile_text):
    t = compile_text()
    assert "llama" not in t.models
    assert Dropped(kind="model", name="llama", reason="no enabled target") in t.dropped
    assert (
        Dropped(
            kind="target", name="llama → down/llama3.2", reason="provider 'down' disabled: disabled in config"
        )
        in t.dropped
    )
    assert "model 'llama' dropped: no enabled target" \
        " (down/llama3.2: provider 'down' disabled: disabled in config)" in t.warnings


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
        assert type(obj).__dataclass_params__.frozen, f"{path}: {type(obj).__name__} is not frozen"
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
        t.models = {}
    with pytest.raises(TypeError):
        t.models["x"] = t.models["echo"]


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
    assert "providers.openai.api_key is empty (OPENAI_API_KEY is not set): provider disabled" in t.warnings
    assert "providers.ollama.enabled is false (OLLAMA_ENABLED is not set): provider disabled" in t.warnings
    assert t.dropped_models["gpt-4o"] == "its provider 'openai' is disabled: OPENAI_API_KEY is not set"
    assert {d.name for d in t.dropped if d.kind == "model"} == {
        "gpt-4o-mini", "gpt-4o", "claude-sonnet", "gemini-flash", "llama3", "claude-*", "gpt-*"
    }
    assert (t.server.host, t.server.port) == ("127.0.0.1", 8080)
    assert t.auth.admin_key_digest is None


def test_the_default_config_turns_openai_on_with_its_key(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    t = load_tables(REPO / "config.yaml", environ={"OPENAI_API_KEY": "sk-test-0123456789abcdef"}, dotenv=None)
    assert set(t.models) == {"echo", "gpt-4o", "gpt-4o-mini", "gpt-*"}
    assert t.patterns == ("gpt-*",) and t.models["gpt-*"].targets == (Target("openai", "{model}"),)
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
    assert set(t.models) == {
        "echo", "gpt-4o", "gpt-4o-mini", "claude-sonnet", "gemini-flash", "llama3", "claude-*", "gpt-*"
    }  # fmt: skip
    assert t.providers["ollama"].base_url == "http://gpu:11434"
    assert t.models["claude-sonnet"].targets[0].default_max_tokens == 64000
    assert t.auth.admin_key_digest is not None


def test_the_health_check_thresholds_are_compiled_into_routing(compile_text):
    t = compile_text(CONFIG + "  health_check: {interval_s: 2.5, unhealthy_after: 4, healthy_after: 3}\n")
    r = t.routing
    assert (r.health_check_interval_s, r.health_check_unhealthy_after, r.health_check_healthy_after) \
        == (2.5, 4, 3)
    r = compile_text().routing
    assert (r.health_check_interval_s, r.health_check_unhealthy_after, r.health_check_healthy_after) \
        == (0.0, 2, 1)


# --- a provider's key open to the network ------------------------------------

PAID = """\
providers:
  openai: {type: openai, base_url: "https://api.openai.com/v1", api_key: sk-configured-0123456789}
  demo: {type: echo}
models:
  gpt-4o: {targets: [{provider: openai, model: gpt-4o}]}
  echo: {targets: [{provider: demo, model: echo}]}
"""


def test_a_provider_key_without_auth_on_a_public_host_is_an_error_naming_the_ways_out(compile_text):
    with pytest.raises(ConfigError) as exc:
        compile_text(PAID + "server: {host: 0.0.0.0}\n")
    [problem] = exc.value.problems
    assert problem.startswith(
        "config.yaml: server.host: gw would listen on 0.0.0.0 without auth keys"
        " and provider 'openai' has an api_key"
    )
    for way_out in ("auth.keys", "auth.allow_anonymous: true", "127.0.0.1", "--host", "GW__SERVER__HOST"):
        assert way_out in problem
    assert "sk-configured" not in problem


def test_the_host_from_a_gw_variable_counts(compile_text):
    with pytest.raises(ConfigError):
        compile_text(PAID, env={"GW__SERVER__HOST": "0.0.0.0"})
    with pytest.raises(ConfigError):
        compile_text(PAID + "server: {host: 127.0.0.1}\n", env={"GW__SERVER__HOST": "::"})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LocalHost"])
def test_a_loopback_host_needs_no_auth(compile_text, host):
    assert compile_text(PAID + f"server: {{host: '{host}'}}\n").server.host == host


def test_allow_anonymous_says_open_access_is_intended(compile_text, caplog):
    with caplog.at_level(logging.WARNING, logger="gw.config"):
        t = compile_text(PAID + "server: {host: 0.0.0.0}\nauth: {allow_anonymous: true}\n")
    assert t.server.host == "0.0.0.0" and not t.auth.enabled
    assert "auth disabled: no keys configured" not in t.warnings


def test_a_public_host_is_fine_with_auth_keys_or_without_a_provider_key(compile_text):
    keyed = PAID + "server: {host: 0.0.0.0}\nauth: {keys: [{name: a, key: gw-key-0123456789abcdef}]}\n"
    assert compile_text(keyed).auth.enabled
    keyless = PAID.replace("api_key: sk-configured-0123456789", 'api_key: "${UNSET_KEY:-}"')
    assert compile_text(keyless + "server: {host: 0.0.0.0}\n").server.host == "0.0.0.0"


# --- warnings, once ----------------------------------------------------------


def test_warnings_already_printed_are_not_logged_again(compile_text, tmp_path, caplog):
    shown = tmp_path / "warnings"
    t = compile_text()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gw.config"):
        log_warnings(t, str(shown))
    assert len(caplog.messages) == len(t.warnings) > 0
    assert shown.read_text() == "\n".join(t.warnings)
    t = compile_text(env={})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gw.config"):
        log_warnings(t, str(shown))
    assert caplog.messages == []


def test_a_changed_list_of_warnings_is_logged(compile_text, tmp_path, caplog):
    shown = tmp_path / "warnings"
    log_warnings(compile_text(), str(shown))
    t = compile_text(env={"OPENAI_API_KEY": "sk-test-openai-0123456789"})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gw.config"):
        log_warnings(t, str(shown))
    assert caplog.messages == [f"config.yaml: {w}" for w in t.warnings]


def test_load_tables_reads_the_file_gw_serve_names_for_its_workers(
    compile_text, tmp_path, monkeypatch, caplog
):
    shown = tmp_path / "warnings"
    log_warnings(compile_text(), str(shown))
    monkeypatch.setenv("GW_WARNINGS_FILE", str(shown))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gw.config"):
        compile_text()
    assert caplog.messages == []


PATTERNS = """
providers:
  demo: {type: echo}
models:
  echo: {targets: [{provider: demo, model: echo}]}
  "gpt-*": {targets: [{provider: demo, model: "{model}"}]}
  "gpt-5*": {targets: [{provider: demo, model: "x-{model}"}]}
  "*": {targets: [{provider: demo, model: echo}]}
"""


def test_patterns_are_ordered_most_specific_first(compile_text):
    t = compile_text(PATTERNS)
    assert t.patterns == ("gpt-5*", "gpt-*", "*")
    assert "echo" not in t.patterns


def test_only_the_requested_name_may_be_written_in_braces(compile_text):
    with pytest.raises(ConfigError) as exc:
        compile_text(PATTERNS.replace('"x-{model}"', '"{name}"'))
    assert any(
        "models.gpt-5*.targets[0].model: only {model} (the requested model name) may be written in braces" in p
        for p in exc.value.problems
    ), exc.value.problems
