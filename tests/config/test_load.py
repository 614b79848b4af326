"""load.py: .env, YAML, ${VAR} expansion and GW__ overrides."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gw.config.load import UNRESOLVED, EnvRef, Expanded, expand_string, load, read_dotenv
from gw.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return list(exc.value.problems)


# --- the file ---------------------------------------------------------------


def test_a_missing_file_is_reported_as_not_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as exc:
        load("nope.yaml", environ={})
    assert problems_of(exc) == ["nope.yaml: file not found"]


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "server:\n  port: 1\n bad: [\n")
    with pytest.raises(ConfigError) as exc:
        load("config.yaml", environ={})
    [line] = problems_of(exc)
    assert line.startswith("config.yaml: line 3, column 2: invalid YAML: ")


def test_a_yaml_syntax_error_does_not_quote_the_offending_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "auth:\n  admin_key: sk-secret-value-123: oops\n")
    with pytest.raises(ConfigError) as exc:
        load("config.yaml", environ={})
    assert "sk-secret" not in str(exc.value)


def test_the_top_level_must_be_a_mapping(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError) as exc:
        load("config.yaml", environ={})
    assert problems_of(exc) == ["config.yaml: expected a mapping at the top level, got a list"]


def test_an_empty_file_loads_as_an_empty_mapping(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "")
    assert load("config.yaml", environ={}).raw == {}


def test_the_source_is_the_path_as_given(tmp_path):
    path = write(tmp_path, "a: 1\n")
    assert load(path, environ={}, dotenv=None).source == str(path)


# --- ${VAR} -----------------------------------------------------------------


def test_var_expands_anywhere_in_a_string_and_several_times():
    text, problems = expand_string("http://${HOST}:${PORT}/v1", {"HOST": "h", "PORT": "80"})
    assert (text, problems) == ("http://h:80/v1", [])


def test_var_with_default_falls_back_when_unset_or_empty():
    assert expand_string("${A:-x}", {})[0] == "x"
    assert expand_string("${A:-x}", {"A": ""})[0] == "x"
    assert expand_string("${A:-x}", {"A": "set"})[0] == "set"


def test_var_with_an_empty_default_gives_an_empty_string():
    assert expand_string("${A:-}", {}) == ("", [])


def test_a_set_but_empty_var_without_default_is_an_empty_string():
    assert expand_string("${A}", {"A": ""}) == ("", [])


def test_double_dollar_escapes_a_literal_reference():
    assert expand_string("$${A} and ${A}", {"A": "x"}) == ("${A} and x", [])


def test_an_unset_var_is_an_error_naming_it():
    assert expand_string("${NOPE}", {})[1] == ["${NOPE} is not set"]


def test_a_malformed_reference_is_an_error():
    _, problems = expand_string("abc ${not closed", {})
    assert problems == [
        "malformed ${...} at character 5 (expected ${NAME} or ${NAME:-default}; write $${ for a literal ${)"
    ]


def test_a_whole_string_reference_stays_a_string_marked_as_expanded():
    text, _ = expand_string("${PORT}", {"PORT": "8080"})
    assert text == "8080" and isinstance(text, Expanded)


def test_a_string_without_references_is_not_marked_as_expanded():
    text, _ = expand_string("plain", {})
    assert not isinstance(text, Expanded)


def test_an_unset_var_in_the_file_is_reported_with_its_key_path(tmp_path):
    path = write(tmp_path, "auth:\n  keys:\n    - {name: a, key: '${GW_KEY_MY_APP}'}\n")
    loaded = load(path, environ={}, dotenv=None)
    assert loaded.problems == (f"{path}: auth.keys[0].key: ${{GW_KEY_MY_APP}} is not set",)
    assert loaded.raw["auth"]["keys"][0]["key"] is UNRESOLVED


def test_load_remembers_which_variables_each_value_came_from_never_their_values(tmp_path):
    path = write(tmp_path, "p:\n  key: '${KEY:-}'\n  url: 'http://${HOST}:${PORT:-80}/$${X}'\n  plain: x\n")
    loaded = load(path, environ={"HOST": "secret-host", "PORT": ""}, dotenv=None)
    assert loaded.env_refs == {
        ("p", "key"): (EnvRef("KEY", is_set=False),),
        ("p", "url"): (EnvRef("HOST", is_set=True), EnvRef("PORT", is_set=True, empty=True)),
    }
    assert [str(r) for r in loaded.env_refs[("p", "url")]] == ["set by HOST", "PORT is empty"]
    assert str(loaded.env_refs[("p", "key")][0]) == "KEY is not set"
    assert "secret-host" not in repr(loaded.env_refs)


def test_keys_are_not_expanded(tmp_path):
    path = write(tmp_path, "headers:\n  ${A}: ${A}\n")
    assert load(path, environ={"A": "v"}, dotenv=None).raw == {"headers": {"${A}": "v"}}


# --- .env -------------------------------------------------------------------


def test_dotenv_reads_plain_export_quoted_and_commented_lines(tmp_path):
    path = write(
        tmp_path,
        """\
        # a comment
        PLAIN=value
        export EXPORTED=yes
        SINGLE='a # not a comment $x'
        DOUBLE="line\\nbreak \\"q\\""
        TRAILING=abc   # comment
        SPACED = spaced
        EMPTY=
        """,
        ".env",
    )
    values, problems = read_dotenv(path)
    assert problems == []
    assert values == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SINGLE": "a # not a comment $x",
        "DOUBLE": 'line\nbreak "q"',
        "TRAILING": "abc",
        "SPACED": "spaced",
        "EMPTY": "",
    }


def test_a_missing_dotenv_is_fine(tmp_path):
    assert read_dotenv(tmp_path / ".env") == ({}, [])


def test_a_bad_dotenv_line_is_reported_without_its_content(tmp_path):
    path = write(tmp_path, "OK=1\nsk-secret-nonsense\nQ='open\n", ".env")
    _, problems = read_dotenv(path)
    assert problems == [
        f"{path}: line 2: expected KEY=VALUE",
        f"{path}: line 3: Q: unterminated quoted value",
    ]


def test_dotenv_in_the_working_directory_feeds_expansion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "A=from-dotenv\n", ".env")
    write(tmp_path, "x: ${A}\n")
    assert load("config.yaml", environ={}).raw == {"x": "from-dotenv"}


def test_the_environment_beats_dotenv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "A=from-dotenv\n", ".env")
    write(tmp_path, "x: ${A}\n")
    assert load("config.yaml", environ={"A": "from-env"}).raw == {"x": "from-env"}


def test_dotenv_none_skips_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "A=from-dotenv\n", ".env")
    write(tmp_path, "x: ${A:-nothing}\n")
    assert load("config.yaml", environ={}, dotenv=None).raw == {"x": "nothing"}


def test_dotenv_does_not_touch_os_environ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GW_TEST_DOTENV_ONLY", raising=False)
    write(tmp_path, "GW_TEST_DOTENV_ONLY=1\n", ".env")
    write(tmp_path, "x: ${GW_TEST_DOTENV_ONLY}\n")
    assert load("config.yaml").raw == {"x": "1"}
    assert "GW_TEST_DOTENV_ONLY" not in os.environ


def test_dotenv_can_set_gw_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "GW__SERVER__PORT=9001\n", ".env")
    write(tmp_path, "server: {port: 8080}\n")
    assert load("config.yaml", environ={}).raw["server"]["port"] == 9001
    assert load("config.yaml", environ={"GW__SERVER__PORT": "9002"}).raw["server"]["port"] == 9002


# --- GW__ overrides ---------------------------------------------------------


def test_gw_override_beats_the_file_and_is_parsed_as_yaml(tmp_path):
    path = write(tmp_path, "server:\n  port: 8080\n  max_body_bytes: 10\n")
    env = {
        "GW__SERVER__PORT": "9000",
        "GW__SERVER__MAX_BODY_BYTES": "4096",
        "GW__SERVER__CORS__ALLOW_ORIGINS": '["*"]',
        "GW__METRICS__ENABLED": "false",
        "GW__CACHE__TTL_S": "1.5",
    }
    raw = load(path, environ=env, dotenv=None).raw
    assert raw["server"] == {"port": 9000, "max_body_bytes": 4096, "cors": {"allow_origins": ["*"]}}
    assert raw["metrics"] == {"enabled": False}
    assert raw["cache"] == {"ttl_s": 1.5}


def test_gw_override_segments_match_keys_ignoring_case_and_dashes(tmp_path):
    path = write(tmp_path, "providers:\n  azure-east:\n    api_key: old\n")
    raw = load(path, environ={"GW__PROVIDERS__AZURE_EAST__API_KEY": "new"}, dotenv=None).raw
    assert raw == {"providers": {"azure-east": {"api_key": "new"}}}


def test_gw_override_naming_no_key_creates_a_lowercased_one(tmp_path):
    path = write(tmp_path, "providers: {}\n")
    raw = load(path, environ={"GW__PROVIDERS__NEW_ONE__TYPE": "echo"}, dotenv=None).raw
    assert raw == {"providers": {"new_one": {"type": "echo"}}}


def test_gw_override_values_are_not_expanded(tmp_path):
    path = write(tmp_path, "x: 1\n")
    raw = load(path, environ={"GW__X": "${NOT_EXPANDED}"}, dotenv=None).raw
    assert raw == {"x": "${NOT_EXPANDED}"}


def test_gw_override_replaces_an_unset_reference_without_an_error(tmp_path):
    path = write(tmp_path, "auth:\n  admin_key: ${UNSET_ADMIN}\n")
    loaded = load(path, environ={"GW__AUTH__ADMIN_KEY": "override-key"}, dotenv=None)
    assert loaded.problems == ()
    assert loaded.raw["auth"]["admin_key"] == "override-key"


def test_gw_override_indexes_lists_by_number(tmp_path):
    path = write(tmp_path, "auth:\n  keys:\n    - {name: a, key: old}\n")
    raw = load(path, environ={"GW__AUTH__KEYS__0__KEY": "new"}, dotenv=None).raw
    assert raw["auth"]["keys"] == [{"name": "a", "key": "new"}]


def test_deeper_gw_overrides_win_over_shallower_ones(tmp_path):
    path = write(tmp_path, "server: {}\n")
    env = {"GW__SERVER": "{port: 1, host: h}", "GW__SERVER__PORT": "2"}
    assert load(path, environ=env, dotenv=None).raw["server"] == {"port": 2, "host": "h"}


def test_gw_override_into_a_scalar_is_an_error(tmp_path):
    path = write(tmp_path, "server:\n  port: 8080\n")
    loaded = load(path, environ={"GW__SERVER__PORT__X": "1"}, dotenv=None)
    assert loaded.problems == (
        f"{path}: server.port: GW__SERVER__PORT__X: cannot set a key inside it, it is not a mapping",
    )


def test_gw_override_with_invalid_yaml_is_an_error(tmp_path):
    path = write(tmp_path, "x: 1\n")
    loaded = load(path, environ={"GW__X": "[1, 2"}, dotenv=None)
    assert len(loaded.problems) == 1
    assert loaded.problems[0].startswith(f"{path}: GW__X: value is not valid YAML: ")


def test_gw_override_with_an_empty_segment_is_an_error(tmp_path):
    path = write(tmp_path, "x: 1\n")
    loaded = load(path, environ={"GW__SERVER__": "1"}, dotenv=None)
    assert loaded.problems == (f"{path}: GW__SERVER__: empty key segment in override variable",)


def test_load_does_not_mutate_the_given_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "B=2\n", ".env")
    write(tmp_path, "x: 1\n")
    env = {"A": "1"}
    load("config.yaml", environ=env)
    assert env == {"A": "1"}


@given(st.text(alphabet="${}:-_AZaz09 ", max_size=40))
def test_escaping_every_reference_gives_the_text_back(text):
    assert expand_string(text.replace("${", "$${"), {}) == (text, [])


@given(st.text(alphabet="abc=#'\" \\", max_size=20))
def test_a_single_quoted_dotenv_value_is_taken_literally(tmp_path_factory, value):
    if "'" in value:
        return
    path = tmp_path_factory.mktemp("env") / ".env"
    path.write_text(f"K='{value}'\n")
    assert read_dotenv(path) == ({"K": value}, [])
