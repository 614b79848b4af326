"""gw/_fast/rules.pyx: each conversion rule, decided once, checked through every backend.

Requests: each rule is fed through every backend's request conversion
(``anthropic.chat_request``, ``gemini.chat_request``, ``ollama.chat_request``
and, the other way, ``messages.to_openai``); OpenAI-type backends forward the
body as it is. Answers: finish reasons and usage go through every backend's
``read_answer`` into the chat encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from gw._fast import anthropic, gemini, messages, ollama, openai
from gw._fast.chat import ChatAnswer
from gw._fast.events import Recorder
from gw._fast.rules import InvalidInput, make_usage

# ------------------------------------------------------------------ requests


@dataclass(frozen=True)
class Backend:
    """A backend's request conversion, and where its body keeps what a rule decides."""

    name: str
    convert: Callable[[dict[str, Any]], dict[str, Any]]
    arguments: Callable[[dict[str, Any]], Any]  # the first assistant tool call's arguments
    stop: Callable[[dict[str, Any]], Any]
    max_tokens: Callable[[dict[str, Any]], Any]
    image: Callable[[dict[str, Any]], tuple[str | None, str]]  # (media type, base64 data)

    def __repr__(self) -> str:
        return self.name


def _gemini_config(out: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = out.get("generationConfig", {})
    return config


def _ollama_options(out: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = out.get("options", {})
    return options


DEFAULT_MAX = 4096

BACKENDS = [
    Backend(
        "anthropic",
        lambda body: anthropic.chat_request(body, "claude-x", DEFAULT_MAX),
        lambda out: next(
            b["input"] for m in out["messages"] for b in m["content"] if b["type"] == "tool_use"
        ),
        lambda out: out.get("stop_sequences"),
        lambda out: out["max_tokens"],
        lambda out: (
            out["messages"][0]["content"][0]["source"]["media_type"],
            out["messages"][0]["content"][0]["source"]["data"],
        ),
    ),
    Backend(
        "gemini",
        gemini.chat_request,
        lambda out: next(
            p["functionCall"]["args"] for c in out["contents"] for p in c["parts"] if "functionCall" in p
        ),
        lambda out: _gemini_config(out).get("stopSequences"),
        lambda out: _gemini_config(out).get("maxOutputTokens"),
        lambda out: (
            out["contents"][0]["parts"][0]["inlineData"]["mimeType"],
            out["contents"][0]["parts"][0]["inlineData"]["data"],
        ),
    ),
    Backend(
        "ollama",
        lambda body: ollama.chat_request(body, "llama3.2", False),
        lambda out: next(
            c["function"]["arguments"] for m in out["messages"] for c in m.get("tool_calls", ())
        ),
        lambda out: _ollama_options(out).get("stop"),
        lambda out: _ollama_options(out).get("num_predict"),
        lambda out: (None, out["messages"][0]["images"][0]),  # Ollama keeps no media type
    ),
]

backends = pytest.mark.parametrize("backend", BACKENDS, ids=[b.name for b in BACKENDS])

ARGUMENTS_PARAM = "messages[1].tool_calls[0].function.arguments"


def chat(*, arguments: Any = "{}", **fields: Any) -> dict[str, Any]:
    """A chat body with a tool call and its result, and ``fields``."""
    return {
        "model": "m",
        "messages": [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        **fields,
    }


def rejected(backend: Backend, body: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        backend.convert(body)
    return info.value


# tool arguments: absent, blank and "null" are {}; an object passes; the rest is a 400


@backends
@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (None, {}),
        ("", {}),
        ("  ", {}),
        ("null", {}),
        ("{}", {}),
        ('{"city": "Paris"}', {"city": "Paris"}),
        ({"city": "Paris"}, {"city": "Paris"}),
    ],
)
def test_tool_arguments_are_one_object_on_every_backend(
    backend: Backend, arguments: Any, expected: dict[str, Any]
) -> None:
    assert backend.arguments(backend.convert(chat(arguments=arguments))) == expected


@backends
@pytest.mark.parametrize("arguments", ["{", "not json", "[1, 2]", '"text"', "5", "true", 5, ["a"]])
def test_tool_arguments_that_are_no_object_are_a_400_on_every_backend(
    backend: Backend, arguments: Any
) -> None:
    error = rejected(backend, chat(arguments=arguments))
    assert error.param == ARGUMENTS_PARAM
    assert ARGUMENTS_PARAM in error.message


@pytest.mark.parametrize(("value", "expected"), [("null", "{}"), ("", "{}"), ('{"a": 1}', '{"a":1}')])
def test_a_messages_tool_input_sent_as_json_text_follows_the_same_rule(value: str, expected: str) -> None:
    out = messages.to_openai(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": value}],
                },
            ],
        }
    )
    assert out["messages"][1]["tool_calls"][0]["function"]["arguments"] == expected


def test_a_messages_tool_input_that_is_no_object_is_a_400() -> None:
    with pytest.raises(InvalidInput) as info:
        messages.to_openai(
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": "[1]"}],
                    },
                ],
            }
        )
    assert info.value.param == "messages[0].content[0].input"


# stop: a string is a list of one; any number of strings pass (the backend's own
# limit applies); an empty list is none; anything else is a 400 naming it


@backends
@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("END", ["END"]),
        (["a", "b"], ["a", "b"]),
        (["1", "2", "3", "4", "5"], ["1", "2", "3", "4", "5"]),
        ([], None),
        (None, None),
    ],
)
def test_stop_is_a_list_of_strings_on_every_backend(backend: Backend, stop: Any, expected: Any) -> None:
    assert backend.stop(backend.convert(chat(stop=stop))) == expected


@backends
@pytest.mark.parametrize("stop", [5, True, {"a": 1}, ["a", 5], [None]])
def test_a_stop_that_is_no_string_is_a_400_on_every_backend(backend: Backend, stop: Any) -> None:
    error = rejected(backend, chat(stop=stop))
    assert error.param == "stop"
    assert "'stop'" in error.message


@pytest.mark.parametrize(
    ("stops", "expected"),
    [("END", ["END"]), (["a", "b", "c", "d", "e"], ["a", "b", "c", "d", "e"]), ([], None)],
)
def test_stop_sequences_become_stop_by_the_same_rule(stops: Any, expected: Any) -> None:
    out = messages.to_openai(
        {
            "model": "m",
            "max_tokens": 5,
            "stop_sequences": stops,
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert out.get("stop") == expected


def test_stop_sequences_that_are_no_strings_are_a_400() -> None:
    with pytest.raises(InvalidInput) as info:
        messages.to_openai(
            {
                "model": "m",
                "max_tokens": 5,
                "stop_sequences": 5,
                "messages": [{"role": "user", "content": "x"}],
            }
        )
    assert info.value.param == "stop_sequences"


# max tokens: max_completion_tokens > max_tokens > max_output_tokens; a positive integer


@backends
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_completion_tokens": 10, "max_tokens": 20, "max_output_tokens": 30}, 10),
        ({"max_tokens": 20, "max_output_tokens": 30}, 20),
        ({"max_output_tokens": 30}, 30),
        ({"max_completion_tokens": None, "max_tokens": 20}, 20),
    ],
)
def test_max_tokens_precedence_is_the_same_on_every_backend(
    backend: Backend, fields: dict[str, Any], expected: int
) -> None:
    assert backend.max_tokens(backend.convert(chat(**fields))) == expected


@backends
def test_without_a_limit_only_anthropic_sets_one_its_default(backend: Backend) -> None:
    # Anthropic requires max_tokens; the others let the model decide.
    expected = DEFAULT_MAX if backend.name == "anthropic" else None
    assert backend.max_tokens(backend.convert(chat())) == expected


@backends
@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_completion_tokens": "5"}, "max_completion_tokens"),
        ({"max_completion_tokens": True}, "max_completion_tokens"),
        ({"max_output_tokens": 1.5}, "max_output_tokens"),
        # the field that wins is the one checked
        ({"max_completion_tokens": 0, "max_tokens": 5}, "max_completion_tokens"),
    ],
)
def test_a_token_limit_that_is_no_positive_integer_is_a_400_on_every_backend(
    backend: Backend, fields: dict[str, Any], param: str
) -> None:
    assert rejected(backend, chat(**fields)).param == param


def test_messages_max_tokens_reach_openai_by_the_same_rule() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert messages.to_openai({**body, "max_tokens": 7})["max_tokens"] == 7
    with pytest.raises(InvalidInput) as info:
        messages.to_openai({**body, "max_tokens": 0})
    assert info.value.param == "max_tokens"


# data URLs: data:<type>;base64,<data> is inline data; a data URL that is not base64 is a 400

IMAGE_PARAM = "messages[0].content[0].image_url.url"


def image(url: str) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
    }


@backends
def test_a_base64_data_url_is_inline_data_on_every_backend(backend: Backend) -> None:
    media, data = backend.image(backend.convert(image("data:image/png;base64,iVBORw0KGgo=")))
    assert data == "iVBORw0KGgo="
    assert media in ("image/png", None)


@backends
@pytest.mark.parametrize("url", ["data:image/png,rawbytes", "data:image/png;charset=x,abc", "data:"])
def test_a_data_url_that_is_not_base64_is_a_400_on_every_backend(backend: Backend, url: str) -> None:
    error = rejected(backend, image(url))
    assert error.param == IMAGE_PARAM
    assert "base64" in error.message


@backends
def test_an_image_without_a_url_is_a_400_on_every_backend(backend: Backend) -> None:
    assert rejected(backend, image("")).param == IMAGE_PARAM


# tool parameters: when given, an object (JSON Schema); anything else is a 400


@backends
@pytest.mark.parametrize("parameters", ["{}", [], 5])
def test_tool_parameters_that_are_no_object_are_a_400_on_every_backend(
    backend: Backend, parameters: Any
) -> None:
    body = chat(tools=[{"type": "function", "function": {"name": "weather", "parameters": parameters}}])
    assert rejected(backend, body).param == "tools[0].function.parameters"


@backends
@pytest.mark.parametrize("choice", ["sometimes", {"type": "function"}, 5])
def test_a_tool_choice_gw_cannot_read_is_a_400_on_every_backend(backend: Backend, choice: Any) -> None:
    body = chat(tools=[{"type": "function", "function": {"name": "weather"}}], tool_choice=choice)
    error = rejected(backend, body)
    assert error.param == "tool_choice"
    assert "'auto', 'none', 'required'" in error.message


# ------------------------------------------------------------------ answers


@dataclass(frozen=True)
class Answers:
    """A backend's whole answer, built from a finish reason, a tool call or not, and its usage."""

    name: str
    read: Callable[[dict[str, Any], Any], None]
    build: Callable[[Any, bool, dict[str, Any]], dict[str, Any]]

    def __repr__(self) -> str:
        return self.name


def _openai(reason: Any, tool: bool, usage: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "hi"}
    if tool:
        message["tool_calls"] = [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]
    return {
        "id": "chatcmpl-1",
        "choices": [{"index": 0, "message": message, "finish_reason": reason}],
        "usage": usage,
    }


def _anthropic(reason: Any, tool: bool, usage: dict[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "hi"}]
    if tool:
        content.append({"type": "tool_use", "id": "t1", "name": "f", "input": {}})
    return {"id": "msg_1", "content": content, "stop_reason": reason, "usage": usage}


def _gemini(reason: Any, tool: bool, usage: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": "hi"}]
    if tool:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": reason}],
        "usageMetadata": usage,
    }


def _ollama(reason: Any, tool: bool, usage: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "hi"}
    if tool:
        message["tool_calls"] = [{"function": {"name": "f", "arguments": {}}}]
    return {"message": message, "done": True, "done_reason": reason, **usage}


ANSWERS = {
    "openai": Answers("openai", openai.read_answer, _openai),
    "anthropic": Answers("anthropic", anthropic.read_answer, _anthropic),
    "gemini": Answers("gemini", gemini.read_answer, _gemini),
    "ollama": Answers("ollama", ollama.read_answer, _ollama),
}

# Each backend's finish reasons -> gw's (stop | length | tool_calls | content_filter);
# a reason gw does not know is stop.
FINISH = [
    ("openai", "stop", "stop"),
    ("openai", "length", "length"),
    ("openai", "tool_calls", "tool_calls"),
    ("openai", "content_filter", "content_filter"),
    ("openai", "function_call", "tool_calls"),
    ("openai", "something_new", "stop"),
    ("anthropic", "end_turn", "stop"),
    ("anthropic", "stop_sequence", "stop"),
    ("anthropic", "max_tokens", "length"),
    ("anthropic", "model_context_window_exceeded", "length"),
    ("anthropic", "tool_use", "tool_calls"),
    ("anthropic", "refusal", "content_filter"),
    ("anthropic", "pause_turn", "stop"),
    ("anthropic", "something_new", "stop"),
    ("anthropic", None, "stop"),
    ("gemini", "STOP", "stop"),
    ("gemini", "MAX_TOKENS", "length"),
    ("gemini", "SAFETY", "content_filter"),
    ("gemini", "RECITATION", "content_filter"),
    ("gemini", "PROHIBITED_CONTENT", "content_filter"),
    ("gemini", "SOMETHING_NEW", "stop"),
    ("gemini", None, "stop"),
    ("ollama", "stop", "stop"),
    ("ollama", "length", "length"),
    ("ollama", "load", "stop"),
    ("ollama", None, "stop"),
]

NO_USAGE: dict[str, dict[str, Any]] = {"openai": {}, "anthropic": {}, "gemini": {}, "ollama": {}}


def finish_of(answers: Answers, reason: Any, tool: bool) -> str:
    rec = Recorder()
    answers.read(answers.build(reason, tool, NO_USAGE[answers.name]), rec)
    (finish,) = [event for event in rec.events if event[0] == "finish"]
    return str(finish[2])


@pytest.mark.parametrize(("name", "reason", "expected"), FINISH)
def test_each_backends_finish_reason_maps_to_one_of_gws(name: str, reason: Any, expected: str) -> None:
    assert finish_of(ANSWERS[name], reason, tool=False) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [("openai", "stop"), ("anthropic", "end_turn"), ("gemini", "STOP"), ("ollama", "stop")],
)
def test_a_natural_stop_with_tool_calls_is_tool_calls_on_every_backend(name: str, reason: str) -> None:
    assert finish_of(ANSWERS[name], reason, tool=True) == "tool_calls"


@pytest.mark.parametrize(
    ("name", "reason", "expected"),
    [
        ("openai", "length", "length"),
        ("anthropic", "max_tokens", "length"),
        ("gemini", "MAX_TOKENS", "length"),
        ("ollama", "length", "length"),
        ("gemini", "SAFETY", "content_filter"),
    ],
)
def test_a_cut_or_filtered_answer_keeps_its_reason_with_tool_calls(
    name: str, reason: str, expected: str
) -> None:
    assert finish_of(ANSWERS[name], reason, tool=True) == expected


# usage: prompt = uncached + cache reads + cache writes; cached_tokens = cache reads;
# completion counts reasoning; what is not an integer (a boolean either) counts 0

USAGE = [
    (
        "openai",
        {
            "prompt_tokens": 13,
            "completion_tokens": 5,
            "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
        make_usage(10, 5, 3, 0, 2),
    ),
    (
        "anthropic",
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 3,
            "cache_creation_input_tokens": 4,
        },
        make_usage(10, 5, 3, 4),
    ),
    (
        "gemini",
        {
            "promptTokenCount": 13,
            "candidatesTokenCount": 3,
            "thoughtsTokenCount": 2,
            "cachedContentTokenCount": 3,
            "totalTokenCount": 18,
        },
        make_usage(10, 5, 3, 0, 2),
    ),
    ("ollama", {"prompt_eval_count": 10, "eval_count": 5}, make_usage(10, 5)),
]

BOOLEAN_USAGE = [
    (
        "openai",
        {"prompt_tokens": True, "completion_tokens": True, "prompt_tokens_details": {"cached_tokens": True}},
    ),
    ("anthropic", {"input_tokens": True, "output_tokens": True, "cache_read_input_tokens": True}),
    (
        "gemini",
        {
            "promptTokenCount": True,
            "candidatesTokenCount": True,
            "cachedContentTokenCount": True,
            "thoughtsTokenCount": True,
        },
    ),
    ("ollama", {"prompt_eval_count": True, "eval_count": True}),
]


def usage_of(name: str, usage: dict[str, Any]) -> Any:
    encoder = ChatAnswer(0, "m")
    answers = ANSWERS[name]
    answers.read(answers.build("stop", False, usage), encoder)
    return encoder.answer()["usage"]


@pytest.mark.parametrize(("name", "usage", "expected"), USAGE)
def test_usage_is_counted_one_way_for_every_backend(
    name: str, usage: dict[str, Any], expected: dict[str, Any]
) -> None:
    got = usage_of(name, usage)
    assert got == expected
    assert got["total_tokens"] == got["prompt_tokens"] + got["completion_tokens"]


@pytest.mark.parametrize(("name", "usage"), BOOLEAN_USAGE)
def test_booleans_are_no_token_counts_on_any_backend(name: str, usage: dict[str, Any]) -> None:
    assert usage_of(name, usage) == make_usage(0, 0)


def test_make_usage_states_the_rule() -> None:
    assert make_usage(10, 5, cache_read=3, cache_write=4, reasoning=2) == {
        "prompt_tokens": 17,
        "completion_tokens": 5,
        "total_tokens": 22,
        "prompt_tokens_details": {"cached_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    assert "completion_tokens_details" not in make_usage(1, 1)
