"""schema.py: every key of SPEC §3, its type and range, and each problem's exact text."""

from __future__ import annotations

import sys
import textwrap

import pytest

from gw.config import ConfigError, load_tables
from gw.config.load import load
from gw.config.schema import ConfigSpec, parse
from gw.config.tables import (
    Budget,
    BudgetPeriod,
    CacheBackend,
    CacheNamespace,
    LimitsBackend,
    LogFormat,
    ProviderType,
)

BASE = """\
providers:
  demo: {type: echo}
models:
  echo: {targets: [{provider: demo, model: echo}]}
"""


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    """cfg(yaml, env) -> ConfigSpec; cfg.errors(yaml, env) -> the problem lines."""
    monkeypatch.chdir(tmp_path)

    class Cfg:
        def __call__(self, text: str, env: dict[str, str] | None = None) -> ConfigSpec:
            (tmp_path / "config.yaml").write_text(textwrap.dedent(text))
            return parse(load("config.yaml", environ=env or {}, dotenv=None))

        def errors(self, text: str, env: dict[str, str] | None = None) -> list[str]:
            with pytest.raises(ConfigError) as exc:
                (tmp_path / "config.yaml").write_text(textwrap.dedent(text))
                load_tables("config.yaml", environ=env or {}, dotenv=None)
            return list(exc.value.problems)

    return Cfg()


def test_every_section_has_the_spec_defaults(cfg):
    spec = cfg(BASE)
    assert (spec.server.host, spec.server.port, spec.server.workers) == ("127.0.0.1", 8080, 1)
    assert spec.server.max_body_bytes == 10485760 and spec.server.cors is None
    assert spec.server.drain_timeout_s == 30.0
    assert spec.auth.keys == () and spec.auth.admin_key is None and spec.auth.allow_anonymous is False
    assert spec.routing.retries == 2
    assert spec.routing.retry_on == (429, 500, 502, 503, 504, "connect_error", "timeout")
    assert (spec.routing.circuit_breaker.failures, spec.routing.circuit_breaker.cooldown_s) == (5, 30.0)
    assert spec.routing.health_check.interval_s == 0.0
    assert spec.cache.backend is CacheBackend.NONE and spec.cache.ttl_s == 3600.0
    assert spec.cache.max_entries == 10000 and spec.cache.redis_url is None
    assert spec.cache.namespace is CacheNamespace.KEY
    assert spec.limits.backend is LimitsBackend.MEMORY
    assert spec.metrics.enabled is True and spec.metrics.path == "/metrics"
    assert (spec.logging.level, spec.logging.format, spec.logging.bodies) == ("info", LogFormat.JSON, False)


def test_the_full_spec_example_parses(cfg):
    spec = cfg(
        """\
        server:
          host: 127.0.0.1
          port: 9000
          workers: 4
          max_body_bytes: 1024
          cors: {allow_origins: ["*"]}
          drain_timeout_s: 5
        auth:
          keys:
            - name: my-app
              key: a-long-enough-secret-key
              models: ["gpt-*"]
              rate_limit: {rpm: 600, tpm: 200000}
              max_concurrent: 20
              budget_usd: {amount: 50, period: day}
          admin_key: ""
        providers:
          openai:
            type: openai
            base_url: https://api.openai.com/v1/
            api_key: sk-test
            timeout_s: 300
            connect_timeout_s: 5
            first_byte_timeout_s: 60
            idle_timeout_s: 60.5
            max_connections: 256
            rate_limit: {rpm: 500, tpm: 150000}
            headers: {X-Org: acme}
          azure-east:
            {type: azure, base_url: "https://r.openai.azure.com", api_key: k, api_version: 2024-10-21}
          demo: {type: echo}
        models:
          gpt-4o:
            targets:
              - {provider: openai, model: gpt-4o, weight: 2}
              - {provider: azure-east, model: dep, default_max_tokens: 100}
            fallbacks: [echo]
            price: {input_per_mtok: 2.5, output_per_mtok: 10}
          echo: {targets: [{provider: demo, model: echo}]}
        routing:
          retries: 0
          retry_on: [429, connect_error]
          circuit_breaker: {failures: 1, cooldown_s: 0}
          health_check: {interval_s: 10}
        cache: {backend: redis, ttl_s: 0.5, max_entries: 1, redis_url: "redis://localhost:6379/0", namespace: shared}
        limits: {backend: redis, redis_url: "redis://localhost"}
        metrics: {enabled: false, path: /m}
        logging: {level: DEBUG, format: text, bodies: true}
        """
    )
    openai = spec.providers["openai"]
    assert openai.base_url == "https://api.openai.com/v1"  # trailing slash stripped
    assert openai.idle_timeout_s == 60.5 and openai.headers == (("X-Org", "acme"),)
    assert openai.type is ProviderType.OPENAI
    assert spec.providers["azure-east"].api_version == "2024-10-21"  # an unquoted date is accepted
    assert spec.models["gpt-4o"].targets[1].default_max_tokens == 100
    assert spec.server.cors is not None and spec.server.cors.allow_origins == ("*",)
    assert spec.auth.admin_key is None  # "" means none
    assert spec.logging.level == "debug" and spec.logging.bodies is True
    assert spec.routing.retry_on == (429, "connect_error")
    key = spec.auth.keys[0]
    assert key.max_concurrent == 20 and key.budget_usd == Budget(50.0, BudgetPeriod.DAY)
    assert spec.cache.ttl_s == 0.5 and spec.cache.namespace is CacheNamespace.SHARED


def test_an_unknown_key_lists_the_expected_ones(cfg):
    assert cfg.errors(BASE + "server: {prot: 1}\n") == [
        "config.yaml: server.prot: unknown key "
        "(expected one of: host, port, workers, max_body_bytes, cors, drain_timeout_s)"
    ]


def test_an_unknown_top_level_section_is_an_error(cfg):
    assert cfg.errors(BASE + "sever: {}\n") == [
        "config.yaml: sever: unknown key "
        "(expected one of: server, auth, providers, models, routing, cache, limits, metrics, logging)"
    ]


def test_an_unknown_provider_key_is_an_error(cfg):
    [line] = cfg.errors(BASE.replace("{type: echo}", "{type: echo, modles: [a]}"))
    assert line.startswith(
        "config.yaml: providers.demo.modles: unknown key (expected one of: type, base_url, "
    )


def test_a_missing_models_section_is_an_error(cfg):
    assert cfg.errors("providers:\n  demo: {type: echo}\n") == ["config.yaml: models: missing required key"]


def test_a_string_where_a_number_belongs_is_an_error(cfg):
    text = BASE.replace("{type: echo}", "{type: echo, timeout_s: fast}")
    assert cfg.errors(text) == ["config.yaml: providers.demo.timeout_s: expected a number, got 'fast'"]


def test_a_bool_is_not_an_integer(cfg):
    assert cfg.errors(BASE + "server: {workers: true}\n") == [
        "config.yaml: server.workers: expected an integer, got true"
    ]


def test_a_float_is_not_an_integer(cfg):
    assert cfg.errors(BASE + "server: {port: 80.5}\n") == [
        "config.yaml: server.port: expected an integer, got 80.5"
    ]


def test_a_quoted_number_in_the_file_is_not_an_integer(cfg):
    assert cfg.errors(BASE + 'server: {port: "8080"}\n') == [
        "config.yaml: server.port: expected an integer, got '8080'"
    ]


def test_an_expanded_variable_is_read_as_a_number_or_bool(cfg):
    spec = cfg(BASE + "server: {port: '${PORT:-9000}'}\nmetrics: {enabled: '${M}'}\n", env={"M": "false"})
    assert spec.server.port == 9000 and spec.metrics.enabled is False


def test_an_expanded_variable_of_the_wrong_type_is_an_error(cfg):
    assert cfg.errors(BASE + "server: {port: '${PORT}'}\n", env={"PORT": "eighty"}) == [
        "config.yaml: server.port: expected an integer, got 'eighty'"
    ]


def test_a_gw_override_is_validated_like_the_file_and_named(cfg):
    assert cfg.errors(BASE, env={"GW__SERVER__PORT": "0"}) == [
        "config.yaml: server.port: must be between 1 and 65535, got 0 (set by GW__SERVER__PORT)"
    ]


def test_a_gw_override_that_yaml_reads_as_a_number_is_still_a_valid_string(cfg):
    spec = cfg(BASE, env={"GW__SERVER__HOST": "127", "GW__AUTH__ADMIN_KEY": "12345678901234567890"})
    assert spec.server.host == "127" and spec.auth.admin_key == "12345678901234567890"


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("server: {port: 70000}", "server.port: must be between 1 and 65535, got 70000"),
        ("server: {workers: 0}", "server.workers: must be >= 1, got 0"),
        ("server: {max_body_bytes: 0}", "server.max_body_bytes: must be >= 1, got 0"),
        ("server: {drain_timeout_s: -1}", "server.drain_timeout_s: must be >= 0, got -1"),
        ("routing: {retries: -1}", "routing.retries: must be >= 0, got -1"),
        (
            "routing: {circuit_breaker: {failures: 0}}",
            "routing.circuit_breaker.failures: must be >= 1, got 0",
        ),
        (
            "routing: {circuit_breaker: {cooldown_s: -1}}",
            "routing.circuit_breaker.cooldown_s: must be >= 0, got -1",
        ),
        (
            "routing: {health_check: {interval_s: -0.5}}",
            "routing.health_check.interval_s: must be >= 0, got -0.5",
        ),
        ("cache: {ttl_s: 0}", "cache.ttl_s: must be > 0, got 0"),
        ("cache: {max_entries: 0}", "cache.max_entries: must be >= 1, got 0"),
    ],
)
def test_out_of_range_values_are_errors(cfg, snippet, message):
    assert cfg.errors(BASE + snippet + "\n") == [f"config.yaml: {message}"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeout_s", "0", "must be > 0, got 0"),
        ("connect_timeout_s", "-1", "must be > 0, got -1"),
        ("first_byte_timeout_s", "0", "must be > 0, got 0"),
        ("idle_timeout_s", "0", "must be > 0, got 0"),
        ("max_connections", "0", "must be >= 1, got 0"),
        ("rate_limit", "{rpm: 0}", "must be >= 1, got 0"),
        ("headers", "[a]", "expected a mapping, got a list"),
        ("enabled", "maybe", "expected true or false, got 'maybe'"),
    ],
)
def test_provider_field_problems(cfg, field, value, message):
    text = BASE.replace("{type: echo}", f"{{type: echo, {field}: {value}}}")
    path = f"providers.demo.{field}" + (".rpm" if field == "rate_limit" else "")
    assert cfg.errors(text) == [f"config.yaml: {path}: {message}"]


def test_an_unknown_provider_type_is_an_error(cfg):
    assert cfg.errors(BASE.replace("type: echo", "type: bedrock")) == [
        "config.yaml: providers.demo.type: expected one of openai, azure, anthropic, gemini, ollama, echo; "
        "got 'bedrock'"
    ]


def test_a_provider_needs_a_type(cfg):
    assert cfg.errors(BASE.replace("{type: echo}", "{base_url: 'http://x'}")) == [
        "config.yaml: providers.demo.type: missing required key"
    ]


def test_base_url_is_required_for_every_type_but_echo(cfg):
    assert cfg.errors(BASE.replace("type: echo", "type: ollama")) == [
        "config.yaml: providers.demo.base_url: missing required key (every type but echo needs one)"
    ]


def test_base_url_must_be_http_or_https(cfg):
    assert cfg.errors(BASE.replace("type: echo", "type: openai, base_url: 'ftp://x'")) == [
        "config.yaml: providers.demo.base_url: must be a URL starting with http:// or https://"
    ]


def test_provider_names_are_restricted(cfg):
    problems = cfg.errors(BASE.replace("providers:\n", "providers:\n  'a b': {type: echo}\n"))
    assert problems == [
        "config.yaml: providers.a b: provider names are letters, digits, '.', '_' and '-', "
        "starting with a letter or digit"
    ]


def test_a_yaml_bool_as_a_name_asks_for_quotes(cfg):
    assert cfg.errors(BASE.replace("providers:\n", "providers:\n  off: {type: echo}\n")) == [
        "config.yaml: providers.False: expected a name, got false (quote it)"
    ]


def test_headers_must_map_strings_to_strings(cfg):
    text = BASE.replace("{type: echo}", "{type: echo, headers: {X-A: 1, 'bad name': x, X-B: \"a\\nb\"}}")
    assert cfg.errors(text) == [
        "config.yaml: providers.demo.headers.X-A: expected a string, got a non-string value",
        "config.yaml: providers.demo.headers.bad name: not a valid header name",
        "config.yaml: providers.demo.headers.X-B: must not contain a line break",
    ]


def test_an_empty_or_null_api_key_means_present_but_empty(cfg):
    spec = cfg(BASE.replace("{type: echo}", "{type: echo, api_key: }"))
    assert spec.providers["demo"].api_key == ""
    assert cfg(BASE).providers["demo"].api_key is None


def test_an_api_key_of_the_wrong_type_is_not_shown(cfg):
    assert cfg.errors(BASE.replace("{type: echo}", "{type: echo, api_key: 123456789}")) == [
        "config.yaml: providers.demo.api_key: expected a string, got a non-string value"
    ]


def test_api_version_must_be_a_string_or_a_date(cfg):
    assert cfg.errors(BASE.replace("{type: echo}", "{type: echo, api_version: 3}")) == [
        "config.yaml: providers.demo.api_version: expected a string, got 3"
    ]


def test_targets_are_required_and_not_empty(cfg):
    assert cfg.errors(BASE + "  other: {}\n") == ["config.yaml: models.other.targets: missing required key"]
    assert cfg.errors(BASE + "  other: {targets: []}\n") == [
        "config.yaml: models.other.targets: must not be empty"
    ]


def test_a_target_needs_provider_and_model(cfg):
    assert cfg.errors(BASE + "  other: {targets: [{provider: demo}]}\n") == [
        "config.yaml: models.other.targets[0].model: missing required key"
    ]


def test_weights_are_positive_integers(cfg):
    assert cfg.errors(BASE + "  o: {targets: [{provider: demo, model: m, weight: 0}]}\n") == [
        "config.yaml: models.o.targets[0].weight: must be between 1 and 1000000, got 0"
    ]
    assert cfg.errors(BASE + "  o: {targets: [{provider: demo, model: m, weight: 1.5}]}\n") == [
        "config.yaml: models.o.targets[0].weight: expected an integer, got 1.5"
    ]


def test_default_max_tokens_is_at_least_one(cfg):
    assert cfg.errors(BASE + "  o: {targets: [{provider: demo, model: m, default_max_tokens: 0}]}\n") == [
        "config.yaml: models.o.targets[0].default_max_tokens: must be >= 1, got 0"
    ]


def test_a_model_has_at_most_64_targets(cfg):
    targets = ", ".join("{provider: demo, model: m}" for _ in range(65))
    assert cfg.errors(BASE + f"  o: {{targets: [{targets}]}}\n") == [
        "config.yaml: models.o.targets: at most 64 targets per model, got 65"
    ]
    targets = ", ".join("{provider: demo, model: m}" for _ in range(64))
    assert len(cfg(BASE + f"  o: {{targets: [{targets}]}}\n").models["o"].targets) == 64


def test_a_target_naming_an_unknown_provider_lists_the_known_ones(cfg):
    text = BASE.replace("providers:\n", "providers:\n  openai: {type: openai, base_url: 'http://x'}\n")
    text += "  gpt-4o: {targets: [{provider: demo, model: a}, {provider: opnai, model: gpt-4o}]}\n"
    assert cfg.errors(text) == [
        "config.yaml: models.gpt-4o.targets[1].provider: unknown provider 'opnai' (known: openai, demo)"
    ]


def test_a_fallback_naming_an_unknown_model_is_an_error(cfg):
    assert cfg.errors(BASE.replace("echo: {", "echo: {fallbacks: [nope], ")) == [
        "config.yaml: models.echo.fallbacks[0]: unknown model 'nope' (known: echo)"
    ]


def test_a_model_cannot_be_its_own_fallback(cfg):
    assert cfg.errors(BASE.replace("echo: {", "echo: {fallbacks: [echo], ")) == [
        "config.yaml: models.echo.fallbacks[0]: model 'echo' cannot be its own fallback"
    ]


def test_a_fallback_listed_twice_is_an_error(cfg):
    text = (
        BASE.replace("echo: {", "echo: {fallbacks: [b, b], ")
        + "  b: {targets: [{provider: demo, model: b}]}\n"
    )
    assert cfg.errors(text) == ["config.yaml: models.echo.fallbacks[1]: fallback 'b' is listed twice"]


def test_prices_are_not_negative(cfg):
    assert cfg.errors(BASE.replace("echo: {", "echo: {price: {input_per_mtok: -1}, ")) == [
        "config.yaml: models.echo.price.input_per_mtok: must be >= 0, got -1"
    ]


def test_retry_on_takes_statuses_and_two_names(cfg):
    assert cfg.errors(BASE + "routing: {retry_on: [429, 399, reset]}\n") == [
        "config.yaml: routing.retry_on[1]: expected a status 400..599, connect_error or timeout; got 399",
        "config.yaml: routing.retry_on[2]: expected a status 400..599, connect_error or timeout; got 'reset'",
    ]


@pytest.mark.parametrize("section", ["cache", "limits"])
def test_a_redis_backend_needs_a_redis_url(cfg, section):
    assert cfg.errors(BASE + f"{section}: {{backend: redis}}\n") == [
        f"config.yaml: {section}.redis_url: required when backend is redis"
    ]


@pytest.mark.parametrize("section", ["cache", "limits"])
def test_a_redis_backend_without_the_redis_package_says_to_install_the_extra(cfg, section, monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed: find_spec gives None
    assert cfg.errors(BASE + f"{section}: {{backend: redis, redis_url: 'redis://localhost'}}\n") == [
        f"config.yaml: {section}.backend: redis needs the redis package: install gw[redis]"
    ]


def test_a_redis_url_must_look_like_one(cfg):
    assert cfg.errors(BASE + "cache: {backend: redis, redis_url: 'http://x'}\n") == [
        "config.yaml: cache.redis_url: must be a URL starting with redis:// or rediss:// or unix://"
    ]


def test_closed_sets_list_their_values(cfg):
    assert cfg.errors(BASE + "cache: {backend: disk, namespace: tenant}\nlogging: {level: loud, format: xml}\n") == [
        "config.yaml: cache.backend: expected one of none, memory, redis; got 'disk'",
        "config.yaml: cache.namespace: expected one of key, shared; got 'tenant'",
        "config.yaml: logging.level: expected one of debug, info, warning, error; got 'loud'",
        "config.yaml: logging.format: expected one of json, text; got 'xml'",
    ]


def test_the_metrics_path_starts_with_a_slash(cfg):
    assert cfg.errors(BASE + "metrics: {path: metrics}\n") == [
        "config.yaml: metrics.path: must start with '/', got 'metrics'"
    ]


def test_a_section_of_the_wrong_shape_is_an_error(cfg):
    assert cfg.errors(BASE + "server: [1]\n") == ["config.yaml: server: expected a mapping, got a list"]


def test_a_null_section_takes_the_defaults(cfg):
    assert cfg(BASE + "server:\nauth:\n").server.port == 8080


def test_auth_key_names_must_be_unique(cfg):
    text = BASE + "auth:\n  keys:\n" \
        "    - {name: a, key: k-aaaaaaaaaaaaaaaaaa}\n    - {name: a, key: k-bbbbbbbbbbbbbbbbbb}\n"
    assert cfg.errors(text) == ["config.yaml: auth.keys[1].name: duplicate key name 'a' (also auth.keys[0])"]


def test_auth_keys_must_be_unique_and_the_message_hides_them(cfg):
    text = BASE + "auth:\n  keys:\n" \
        "    - {name: a, key: k-aaaaaaaaaaaaaaaaaa}\n    - {name: b, key: k-aaaaaaaaaaaaaaaaaa}\n"
    assert cfg.errors(text) == ["config.yaml: auth.keys[1].key: same key as auth.keys[0]"]


def test_auth_keys_must_not_be_empty(cfg):
    text = BASE + "auth:\n  keys:\n    - {name: a, key: '${K:-}'}\n"
    assert cfg.errors(text) == ["config.yaml: auth.keys[0].key: must not be empty"]


def test_an_auth_key_needs_a_name_and_a_key(cfg):
    assert cfg.errors(BASE + "auth:\n  keys:\n    - {name: a}\n") == [
        "config.yaml: auth.keys[0].key: missing required key"
    ]


def test_an_unset_key_variable_names_it_and_the_path(cfg):
    text = BASE + "auth:\n  keys:\n    - {name: my-app, key: '${GW_KEY_MY_APP}'}\n"
    assert cfg.errors(text) == ["config.yaml: auth.keys[0].key: ${GW_KEY_MY_APP} is not set"]


def test_the_admin_key_cannot_be_a_client_key(cfg):
    text = BASE + "auth:\n  keys:\n    - {name: a, key: k-aaaaaaaaaaaaaaaaaa}\n" \
        "  admin_key: k-aaaaaaaaaaaaaaaaaa\n"
    assert cfg.errors(text) == ["config.yaml: auth.admin_key: same key as auth.keys[0]"]


def test_allow_anonymous_is_a_bool(cfg):
    assert cfg(BASE + "auth: {allow_anonymous: true}\n").auth.allow_anonymous is True
    assert cfg.errors(BASE + "auth: {allow_anonymous: 'yes'}\n") == [
        "config.yaml: auth.allow_anonymous: expected true or false, got 'yes'"
    ]


def test_a_short_key_is_accepted_with_a_warning(cfg):
    spec = cfg(BASE + "auth:\n  keys:\n    - {name: a, key: short}\n  admin_key: tiny\n")
    assert spec.warnings == (
        "auth key 'a' is shorter than 16 characters",
        "auth admin_key is shorter than 16 characters",
    )


def test_every_problem_is_reported_at_once(cfg):
    text = BASE.replace("  echo: {", "  x: {targets: [{provider: nope, model: x}]}\n  echo: {")
    text += "server: {port: 0, prot: 1}\n"
    text += "auth:\n  keys:\n    - {name: a, key: '${UNSET_KEY}'}\n  broken: 1\n"
    assert cfg.errors(text) == [
        "config.yaml: auth.keys[0].key: ${UNSET_KEY} is not set",
        "config.yaml: server.port: must be between 1 and 65535, got 0",
        "config.yaml: server.prot: unknown key "
        "(expected one of: host, port, workers, max_body_bytes, cors, drain_timeout_s)",
        "config.yaml: auth.broken: unknown key (expected one of: keys, admin_key, allow_anonymous)",
        "config.yaml: models.x.targets[0].provider: unknown provider 'nope' (known: demo)",
    ]


def test_the_records_never_show_a_key_in_their_repr(cfg):
    spec = cfg(
        BASE.replace("{type: echo}", "{type: echo, api_key: prov-SECRET-0123456789}")
        + "auth:\n  keys:\n    - {name: a, key: key-SECRET-0123456789}\n  admin_key: adm-SECRET-0123456789\n"
    )
    assert "SECRET" not in repr(spec)
    assert spec.auth.admin_key == "adm-SECRET-0123456789"


def test_health_check_thresholds_default_to_2_down_and_1_up_and_can_be_set(cfg):
    default = cfg(BASE).routing.health_check
    assert (default.interval_s, default.unhealthy_after, default.healthy_after) == (0.0, 2, 1)
    spec = cfg(BASE + "routing: {health_check: {interval_s: 5, unhealthy_after: 3, healthy_after: 2}}\n")
    hc = spec.routing.health_check
    assert (hc.interval_s, hc.unhealthy_after, hc.healthy_after) == (5.0, 3, 2)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("{unhealthy_after: 0}", "routing.health_check.unhealthy_after: must be >= 1, got 0"),
        ("{healthy_after: 0}", "routing.health_check.healthy_after: must be >= 1, got 0"),
        ("{unhealthy_after: -2}", "routing.health_check.unhealthy_after: must be >= 1, got -2"),
        ("{healthy_after: 1.5}", "routing.health_check.healthy_after: expected an integer, got 1.5"),
        ("{unhealthy_after: true}", "routing.health_check.unhealthy_after: expected an integer, got true"),
        (
            "{unhealty_after: 2}",
            "routing.health_check.unhealty_after: unknown key "
            "(expected one of: interval_s, unhealthy_after, healthy_after)",
        ),
    ],
)
def test_health_check_thresholds_must_be_positive_integers(cfg, snippet, message):
    assert cfg.errors(BASE + f"routing: {{health_check: {snippet}}}\n") == [f"config.yaml: {message}"]


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("max_concurrent: 0", "auth.keys[0].max_concurrent: must be >= 1, got 0"),
        ("budget_usd: {amount: 0}", "auth.keys[0].budget_usd.amount: must be > 0, got 0"),
        ("budget_usd: {amount: 5, period: week}", "auth.keys[0].budget_usd.period: expected one of day, month; got 'week'"),
        ("budget_usd: {period: day}", "auth.keys[0].budget_usd.amount: missing required key"),
    ],
)
def test_a_keys_concurrency_and_budget_problems(cfg, snippet, message):
    text = BASE + f"auth:\n  keys:\n    - {{name: a, key: a-long-enough-secret-key, {snippet}}}\n"
    assert cfg.errors(text) == [f"config.yaml: {message}"]
