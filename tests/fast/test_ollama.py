"""gw/_fast/ollama.pyx: OpenAI <-> Ollama requests, answers, NDJSON streams and embeddings."""

from __future__ import annotations

import base64
import importlib.machinery
import re
import struct
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gw._fast import ollama
from gw._fast.chat import DONE_EVENT, ChatAnswer, ChatChunks
from gw._fast.events import Converter, Recorder
from gw._fast.ollama import (
    OllamaDecoder,
    chat_request,
    embed_answer,
    embed_request,
    embedding_inputs,
    read_answer,
    usage_from,
)
from gw._fast.rules import InvalidInput, make_usage

CALL_ID = re.compile(r"call_[0-9a-f]{24}")


def chat_stream(id: str, created: int, model: str, include_usage: bool) -> Converter:
    """What gw runs for a chat client on an Ollama backend: the decoder driving ``ChatChunks``."""
    encoder = ChatChunks(created, model, include_usage)
    return Converter(OllamaDecoder(encoder, id), encoder)


def req(*messages: dict, stream: bool = False, **body: Any) -> dict:
    return chat_request({"model": "public", "messages": list(messages), **body}, "llama3.2", stream)


def user(content: Any) -> dict:
    return {"role": "user", "content": content}


def call(id: str, name: str, arguments: Any = "{}") -> dict:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def invalid(param: str, *messages: dict, **body: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        req(*messages, **body)
    assert info.value.param == param, info.value.message
    assert param.split("[")[0].split(".")[0] in info.value.message
    return info.value


def test_the_module_is_compiled() -> None:
    assert ollama.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


# ------------------------------------------------------------------ request: the envelope


@pytest.mark.parametrize("stream", [False, True])
def test_model_is_the_targets_and_stream_is_always_said(stream: bool) -> None:
    out = req(user("hi"), stream=stream)
    assert out == {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def test_fields_ollama_cannot_take_are_dropped_and_keep_alive_is_never_sent() -> None:
    out = req(
        user("hi"),
        user="someone", metadata={"a": "b"}, store=True, logprobs=True, top_logprobs=2, logit_bias={"1": 2},
        parallel_tool_calls=False, service_tier="auto", keep_alive="1h",
        stream_options={"include_usage": True}, n=1, modalities=["text"],
    )
    assert out == {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": False}


def test_n_above_one_is_invalid_input() -> None:
    error = invalid("n", user("hi"), n=2)
    assert "one choice" in error.message


# ------------------------------------------------------------------ request: messages


def test_system_and_developer_are_system_messages_in_place() -> None:
    out = req({"role": "system", "content": "one"}, user("hi"),
              {"role": "developer", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]})
    assert out["messages"] == [
        {"role": "system", "content": "one"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "two\nthree"},
    ]


def test_user_text_parts_are_joined_with_newlines_and_empty_ones_skipped() -> None:
    out = req(user([{"type": "text", "text": "a"}, {"type": "text", "text": ""}, {"type": "text", "text": "b"}]))
    assert out["messages"] == [{"role": "user", "content": "a\nb"}]


def test_a_user_message_without_content_is_an_empty_string() -> None:
    assert req(user(None))["messages"] == [{"role": "user", "content": ""}]


def test_data_url_images_go_to_images_as_bare_base64() -> None:
    out = req(user([
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        {"type": "image_url", "image_url": "data:image/jpeg;base64,/9j/4AAQ"},
    ]))
    assert out["messages"] == [{"role": "user", "content": "what is this", "images": ["iVBORw0KGgo=", "/9j/4AAQ"]}]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("https://example.com/cat.png", "only inline"),
        ("http://example.com/cat.png", "only inline"),
        ("data:image/png,rawbytes", "base64 data URL"),
        ("data:image/png;base64,", "base64 data URL"),
        ("", "must be a string"),
    ],
)
def test_images_ollama_cannot_take_are_invalid_input(url: str, needle: str) -> None:
    error = invalid("messages[0].content[1].image_url.url",
                    user([{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": url}}]))
    assert needle in error.message


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "narrator", "content": "x"}, "messages[0].role"),
        ({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:a;base64,AA=="}}]},
         "messages[0].content[0]"),
        ({"role": "user", "content": 5}, "messages[0].content"),
        ({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}, "messages[0].content[0].type"),
        ({"role": "user", "content": [{"type": "text", "text": 3}]}, "messages[0].content[0].text"),
        ({"role": "assistant", "content": [{"type": "text", "text": None}]}, "messages[0].content[0].text"),
        ({"role": "function", "content": "x"}, "messages[0].name"),
    ],
)
def test_messages_ollama_cannot_take_are_invalid_input(message: dict, param: str) -> None:
    invalid(param, message)


def test_assistant_text_and_refusal_parts_are_joined_and_none_is_empty() -> None:
    out = req(user("a"), {"role": "assistant", "content": [{"type": "text", "text": "b"}, {"type": "refusal", "refusal": "no"}]},
              {"role": "assistant", "content": None})
    assert out["messages"][1:] == [{"role": "assistant", "content": "b\nno"}, {"role": "assistant", "content": ""}]


def test_assistant_tool_calls_get_parsed_arguments_and_results_their_tool_name() -> None:
    out = req(
        user("weather and time?"),
        {"role": "assistant", "content": None, "tool_calls": [
            call("call_a", "get_weather", '{"city": "Oslo"}'),
            call("call_b", "now", ""),
            {"id": "call_c", "type": "function", "function": {"name": "none_at_all"}},
            call("call_d", "obj", {"already": "an object"}),
        ]},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_a", "content": [{"type": "text", "text": '{"temp_c": -3}'}]},
    )
    assert out["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
            {"function": {"name": "now", "arguments": {}}},
            {"function": {"name": "none_at_all", "arguments": {}}},
            {"function": {"name": "obj", "arguments": {"already": "an object"}}},
        ]},
        {"role": "tool", "content": "12:00", "tool_name": "now"},
        {"role": "tool", "content": '{"temp_c": -3}', "tool_name": "get_weather"},
    ]


@pytest.mark.parametrize("arguments", ["null", "  ", "", None])
def test_null_or_blank_tool_call_arguments_are_an_empty_object(arguments: Any) -> None:
    out = req(user("x"), {"role": "assistant", "tool_calls": [call("c", "f", arguments)]})
    assert out["messages"][1]["tool_calls"] == [{"function": {"name": "f", "arguments": {}}}]


def test_an_empty_tool_calls_list_is_not_sent() -> None:
    assert req(user("a"), {"role": "assistant", "content": "b", "tool_calls": []})["messages"][1] == {
        "role": "assistant", "content": "b"}


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [("{oops", "not valid JSON"), ("[1, 2]", "JSON object"), ("5", "JSON object"), (7, "JSON string")],
)
def test_bad_tool_call_arguments_are_invalid_input(arguments: Any, needle: str) -> None:
    error = invalid("messages[1].tool_calls[0].function.arguments", user("x"),
                    {"role": "assistant", "tool_calls": [call("c", "f", arguments)]})
    assert needle in error.message


def test_a_tool_call_without_a_name_is_invalid_input() -> None:
    invalid("messages[1].tool_calls[0].function.name", user("x"),
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"arguments": "{}"}}]})


@pytest.mark.parametrize("call_id", ["nope", None])
def test_a_tool_result_for_no_earlier_call_is_invalid_input(call_id: Any) -> None:
    invalid("messages[1].tool_call_id", user("x"), {"role": "tool", "tool_call_id": call_id, "content": "r"})


def test_a_legacy_function_message_is_a_tool_result_by_name() -> None:
    out = req(user("x"), {"role": "function", "name": "lookup", "content": "found"})
    assert out["messages"][1] == {"role": "tool", "content": "found", "tool_name": "lookup"}


# ------------------------------------------------------------------ request: options, tools, format


def test_sampling_fields_become_options() -> None:
    out = req(user("x"), temperature=0.2, top_p=0.9, top_k=40, max_tokens=50, stop="END", seed=7,
              presence_penalty=0.5, frequency_penalty=-0.5)
    assert out["options"] == {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "num_predict": 50, "stop": ["END"],
                              "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.5}


def test_max_completion_tokens_beats_max_tokens_and_stop_lists_pass() -> None:
    out = req(user("x"), max_tokens=5, max_completion_tokens=9, stop=["a", "b"])
    assert out["options"] == {"num_predict": 9, "stop": ["a", "b"]}


def test_zero_values_are_still_sent() -> None:
    assert req(user("x"), temperature=0, seed=0, presence_penalty=0)["options"] == {
        "temperature": 0, "seed": 0, "presence_penalty": 0}


@pytest.mark.parametrize(("field", "value"), [("max_tokens", 0), ("max_tokens", -1), ("max_completion_tokens", "5"),
                                              ("max_tokens", 2.5), ("max_tokens", True)])
def test_a_token_limit_that_is_not_a_positive_integer_is_invalid_input(field: str, value: Any) -> None:
    invalid(field, user("x"), **{field: value})


@pytest.mark.parametrize(("effort", "think"), [("none", False), ("minimal", True), ("low", True), ("medium", True),
                                               ("high", True)])
def test_reasoning_effort_turns_thinking_on_or_off(effort: str, think: bool) -> None:
    assert req(user("x"), reasoning_effort=effort)["think"] is think


@pytest.mark.parametrize("effort", ["max", "", 3, ["low"]])
def test_an_unknown_reasoning_effort_is_invalid_input(effort: Any) -> None:
    invalid("reasoning_effort", user("x"), reasoning_effort=effort)


@pytest.mark.parametrize("stop", [5, [1], ["a", None]])
def test_a_bad_stop_is_invalid_input(stop: Any) -> None:
    invalid("stop", user("x"), stop=stop)


def test_ollama_native_options_pass_and_openai_fields_win() -> None:
    out = req(user("x"), options={"num_ctx": 8192, "temperature": 1.0, "repeat_penalty": 1.1}, temperature=0.1)
    assert out["options"] == {"num_ctx": 8192, "temperature": 0.1, "repeat_penalty": 1.1}


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
NOW = {"type": "function", "function": {"name": "now"}}


def test_tools_keep_the_openai_function_shape_without_strict() -> None:
    assert req(user("x"), tools=[WEATHER, NOW])["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                          "parameters": WEATHER["function"]["parameters"]}},
        {"type": "function", "function": {"name": "now"}},
    ]


@pytest.mark.parametrize("choice", [None, "auto", "required"])
def test_tool_choice_auto_and_required_send_every_tool(choice: Any) -> None:
    assert [t["function"]["name"] for t in req(user("x"), tools=[WEATHER, NOW], tool_choice=choice)["tools"]] == [
        "get_weather", "now"]


def test_tool_choice_none_sends_no_tool_and_a_named_one_only_that_one() -> None:
    assert "tools" not in req(user("x"), tools=[WEATHER, NOW], tool_choice="none")
    named = req(user("x"), tools=[WEATHER, NOW], tool_choice={"type": "function", "function": {"name": "now"}})
    assert named["tools"] == [{"type": "function", "function": {"name": "now"}}]


def test_legacy_functions_are_tools() -> None:
    out = req(user("x"), functions=[{"name": "now"}], function_call={"name": "now"})
    assert out["tools"] == [{"type": "function", "function": {"name": "now"}}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": {"a": 1}}, "tools"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"tools": [{"type": "function", "function": {"description": "x"}}]}, "tools[0].function.name"),
        ({"tools": [NOW], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": [NOW], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
    ],
)
def test_tools_ollama_cannot_take_are_invalid_input(body: dict, param: str) -> None:
    invalid(param, user("x"), **body)


def test_response_format_becomes_format() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    assert req(user("x"), response_format={"type": "json_object"})["format"] == "json"
    assert req(user("x"), response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}})[
        "format"] == schema
    assert req(user("x"), response_format={"type": "json_schema", "json_schema": {"name": "p"}})["format"] == "json"
    assert "format" not in req(user("x"), response_format={"type": "text"})
    invalid("response_format", user("x"), response_format={"type": "xml"})


# ------------------------------------------------------------------ answer


def answer(message: dict, **extra: Any) -> dict:
    return {"model": "llama3.2", "created_at": "2025-10-01T12:00:00Z", "message": {"role": "assistant", **message},
            "done": True, "done_reason": "stop", "total_duration": 1, "prompt_eval_count": 26, "eval_count": 5, **extra}


def convert(obj: dict) -> dict:
    encoder = ChatAnswer(1700000000, "llama3.2")
    read_answer(obj, encoder, "chatcmpl-1")
    return encoder.answer()


def test_a_text_answer_with_usage_and_thinking_as_reasoning_content() -> None:
    assert convert(answer({"content": "Hello!", "thinking": "hmm"})) == {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "llama3.2",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!", "refusal": None,
                                             "reasoning_content": "hmm"},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": make_usage(26, 5),
    }


def test_tool_calls_get_new_distinct_ids_json_arguments_and_finish_tool_calls() -> None:
    out = convert(answer({"content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"name": "now", "arguments": {}}},
        {"function": {"name": "bare"}},
    ]}))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [(c["type"], c["function"]) for c in calls] == [
        ("function", {"name": "get_weather", "arguments": '{"city":"Paris"}'}),
        ("function", {"name": "now", "arguments": "{}"}),
        ("function", {"name": "bare", "arguments": "{}"}),
    ]
    assert all(CALL_ID.fullmatch(c["id"]) for c in calls) and len({c["id"] for c in calls}) == 3


def test_text_next_to_tool_calls_is_kept() -> None:
    out = convert(answer({"content": "Let me check.", "tool_calls": [{"function": {"name": "now", "arguments": {}}}]}))
    assert out["choices"][0]["message"]["content"] == "Let me check."


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("stop", "stop"), ("length", "length"), ("load", "stop"), ("unload", "stop"), (None, "stop"), ("other", "stop")],
)
def test_done_reasons_map(reason: Any, finish: str) -> None:
    assert convert(answer({"content": "x"}, done_reason=reason))["choices"][0]["finish_reason"] == finish


def test_a_length_cut_with_tool_calls_stays_length() -> None:
    out = convert(answer({"content": "", "tool_calls": [{"function": {"name": "now"}}]}, done_reason="length"))
    assert out["choices"][0]["finish_reason"] == "length"


def test_missing_counts_are_zero() -> None:
    assert usage_from({}) == make_usage(0, 0)
    assert usage_from({"eval_count": 3}) == make_usage(0, 3)
    assert usage_from({"prompt_eval_count": "x", "eval_count": True}) == make_usage(0, 0)
    obj = answer({"content": "x"})
    del obj["prompt_eval_count"]
    assert convert(obj)["usage"] == make_usage(0, 5)


def test_an_answer_without_a_message_is_empty_content() -> None:
    assert convert({"done": True})["choices"][0]["message"]["content"] == ""


# ------------------------------------------------------------------ stream


def line(message: dict | None = None, done: bool = False, **extra: Any) -> bytes:
    obj: dict[str, Any] = {"model": "llama3.2", "created_at": "2025-10-01T12:00:00Z"}
    if message is not None:
        obj["message"] = {"role": "assistant", **message}
    obj["done"] = done
    obj.update(extra)
    return orjson.dumps(obj) + b"\n"


def final(reason: str = "stop", **extra: Any) -> bytes:
    counts = {"prompt_eval_count": 4, "eval_count": 3, **extra}
    return line({"content": ""}, True, done_reason=reason, total_duration=5, **counts)


def payloads(data: bytes) -> list:
    out = []
    for block in data.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: "), block
        body = block[6:]
        out.append("[DONE]" if body == b"[DONE]" else orjson.loads(body))
    assert data.endswith(b"\n\n") or not data
    return out


def run(raw: bytes, include_usage: bool = False, pieces: int | None = None) -> tuple[Converter, bytes]:
    conv = chat_stream("chatcmpl-9", 1700000000, "llama3.2", include_usage)
    out = b""
    if pieces is None:
        out += conv.feed(raw)
    else:
        for i in range(0, len(raw), pieces):
            out += conv.feed(raw[i : i + pieces])
    out += conv.close()
    return conv, out


def deltas(events: list) -> list[tuple[dict, str | None]]:
    return [(c["delta"], c["finish_reason"]) for e in events if e != "[DONE]" for c in e["choices"]]


TEXT = line({"content": "Hel"}) + line({"content": "lo wörld"}) + line({"content": " 🎉"}) + final()


def test_a_text_stream_is_role_content_one_finish_then_done() -> None:
    conv, out = run(TEXT)
    events = payloads(out)
    assert deltas(events) == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo wörld"}, None),
        ({"content": " 🎉"}, None),
        ({}, "stop"),
    ]
    assert events[-1] == "[DONE]" and out.endswith(DONE_EVENT)
    assert all(e["id"] == "chatcmpl-9" and e["model"] == "llama3.2" and e["created"] == 1700000000
               and e["object"] == "chat.completion.chunk" for e in events[:-1])
    assert conv.done and conv.error is None and conv.invalid is None


def test_usage_is_set_without_include_usage_and_sent_only_with_it() -> None:
    conv, out = run(TEXT)
    assert conv.usage == make_usage(4, 3)
    assert all(e == "[DONE]" or e["choices"] for e in payloads(out))
    conv, out = run(TEXT, include_usage=True)
    events = payloads(out)
    assert events[-2] == {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1700000000,
                          "model": "llama3.2", "choices": [], "usage": make_usage(4, 3)}
    assert events[-3]["choices"][0]["finish_reason"] == "stop"


def test_usage_is_none_until_the_done_line_and_missing_counts_are_zero() -> None:
    conv = chat_stream("c", 1, "m", True)
    conv.feed(line({"content": "a"}))
    assert conv.usage is None
    out = conv.feed(line({"content": ""}, True, done_reason="stop"))
    assert conv.usage == make_usage(0, 0)
    assert payloads(out)[-2]["usage"] == make_usage(0, 0)


def test_tool_calls_have_distinct_stable_indexes_and_ids_and_whole_arguments() -> None:
    raw = (line({"content": "Checking."})
           + line({"content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                                                 {"function": {"name": "now", "arguments": {}}}]})
           + line({"content": "", "tool_calls": [{"function": {"name": "bare"}}]})
           + final())
    _, out = run(raw, include_usage=True)
    got = deltas(payloads(out))
    calls = accumulated(got)
    assert [c["index"] for c in calls] == [0, 1, 2]
    assert [c["function"] for c in calls] == [
        {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"name": "now", "arguments": "{}"},
        {"name": "bare", "arguments": "{}"},
    ]
    assert {c["type"] for c in calls} == {"function"}
    assert all(CALL_ID.fullmatch(c["id"]) for c in calls) and len({c["id"] for c in calls}) == 3
    assert all(len(d["tool_calls"]) == 1 for d, _ in got if "tool_calls" in d), "one call per delta"
    assert [f for _, f in got if f] == ["tool_calls"]


def accumulated(got: list[tuple[dict, str | None]]) -> list[dict]:
    """The tool call deltas joined per index, as OpenAI's SDKs do: id, type and
    name come once, in the call's first delta; the arguments are concatenated."""
    calls: dict[int, dict] = {}
    for d, _ in got:
        for c in d.get("tool_calls", ()):
            first = c["index"] not in calls
            call = calls.setdefault(c["index"], {"index": c["index"], "function": {"name": "", "arguments": ""}})
            for key in ("id", "type"):
                assert (key in c) == first, f"{key} comes in the call's first delta only"
                if first:
                    call[key] = c[key]
            call["function"]["name"] += c["function"].get("name") or ""
            call["function"]["arguments"] += c["function"].get("arguments") or ""
    return [calls[i] for i in sorted(calls)]


def test_a_length_stream_with_calls_is_length_and_load_is_stop() -> None:
    _, out = run(line({"content": "", "tool_calls": [{"function": {"name": "now"}}]}) + final("length"))
    assert [f for _, f in deltas(payloads(out)) if f] == ["length"]
    _, out = run(line({"content": "x"}) + final("load"))
    assert [f for _, f in deltas(payloads(out)) if f] == ["stop"]


def test_thinking_lines_are_reasoning_content_deltas() -> None:
    _, out = run(line({"content": "", "thinking": "hmm"}) + line({"content": "ok"}) + final())
    assert [d for d, _ in deltas(payloads(out))] == [{"role": "assistant", "content": ""},
                                                      {"reasoning_content": "hmm"}, {"content": "ok"}, {}]


def test_content_on_the_done_line_comes_before_the_finish() -> None:
    _, out = run(line({"content": "a"}) + line({"content": "b"}, True, done_reason="stop"))
    assert [d for d, _ in deltas(payloads(out))] == [{"role": "assistant", "content": ""}, {"content": "a"},
                                                      {"content": "b"}, {}]


def test_an_error_line_after_content_is_the_error_with_no_finish() -> None:
    conv, out = run(line({"content": "a"}) + b'{"error":"an error was encountered while running the model"}\n'
                    + line({"content": "late"}) + final())
    assert conv.error == "an error was encountered while running the model"
    assert not conv.done
    assert [d for d, _ in deltas(payloads(out))] == [{"role": "assistant", "content": ""}, {"content": "a"}]
    assert b"finish_reason\":\"" not in out and DONE_EVENT not in out
    assert conv.feed(final()) == b"" and conv.close() == b""


def test_an_error_as_the_first_line_sends_nothing() -> None:
    conv, out = run(b'{"error":"model runner crashed"}\n')
    assert out == b"" and conv.error == "model runner crashed"


def test_an_eof_before_the_done_line_is_not_done() -> None:
    conv, out = run(line({"content": "a"}) + line({"content": "b"}))
    assert not conv.done and conv.error is None and conv.invalid is None
    assert len(payloads(out)) == 3


def test_an_empty_stream_is_not_done() -> None:
    conv, out = run(b"")
    assert out == b"" and not conv.done


@pytest.mark.parametrize(("bad", "needle"), [(b"{not json\n", "not valid JSON"), (b"[1,2]\n", "not a JSON object"),
                                             (b'"text"\n', "not a JSON object")])
def test_a_line_that_is_not_a_json_object_is_invalid(bad: bytes, needle: str) -> None:
    conv, out = run(line({"content": "a"}) + bad + final())
    assert needle in conv.invalid
    assert not conv.done and DONE_EVENT not in out


def test_a_last_line_without_its_newline_is_converted_at_close() -> None:
    conv, out = run(line({"content": "a"}) + final().rstrip(b"\n"))
    assert conv.done and out.endswith(DONE_EVENT)


def test_a_cut_last_line_is_invalid_at_close() -> None:
    conv, _ = run(line({"content": "a"}) + final()[:20])
    assert conv.invalid is not None and not conv.done


def test_crlf_and_blank_lines_are_fine() -> None:
    raw = TEXT.replace(b"\n", b"\r\n\r\n")
    conv, out = run(raw)
    assert conv.done and "".join(d.get("content") or "" for d, _ in deltas(payloads(out))) == "Hello wörld 🎉"


def test_a_line_over_the_cap_is_invalid() -> None:
    conv, _ = run(line({"content": "x" * (1 << 20)}) + final())
    assert conv.invalid is not None and "larger than" in conv.invalid


def test_nothing_after_the_done_line_is_converted() -> None:
    conv = chat_stream("c", 1, "m", False)
    out = conv.feed(TEXT + line({"content": "extra"}))
    assert b"extra" not in out and conv.done
    assert conv.feed(line({"content": "more"})) == b""


@pytest.mark.parametrize("pieces", [1, 2, 3, 5, 7, 64])
def test_any_split_even_inside_utf8_characters_gives_the_same_events(pieces: int) -> None:
    _, whole = run(TEXT, include_usage=True)
    _, split = run(TEXT, include_usage=True, pieces=pieces)
    assert split == whole


# ------------------------------------------------------------------ the decoder (events)


def decode(raw: bytes, pieces: int | None = None, id: str | None = None) -> tuple[OllamaDecoder, list[tuple]]:
    rec = Recorder()
    dec = OllamaDecoder(rec, id) if id is not None else OllamaDecoder(rec)
    if pieces is None:
        dec.feed(raw)
    else:
        for i in range(0, len(raw), pieces):
            dec.feed(raw[i : i + pieces])
    dec.close()
    return dec, rec.events


def numbered(events: list[tuple]) -> list[tuple]:
    """The events with each new call id replaced by "<id n>" (they are random)."""
    ids: dict[str, str] = {}
    out = []
    for e in events:
        if e[0] == "tool_start":
            assert CALL_ID.fullmatch(e[3]), e
            e = (*e[:3], ids.setdefault(e[3], f"<id {len(ids)}>"), *e[4:])
        out.append(e)
    return out


def test_a_text_stream_is_start_text_usage_finish_end() -> None:
    dec, events = decode(TEXT, id="chatcmpl-9")
    assert events == [
        ("start", "chatcmpl-9"),
        ("text", 0, "Hel"), ("text", 0, "lo wörld"), ("text", 0, " 🎉"),
        ("usage", 4, 3, 0, 0, 0),
        ("finish", 0, "stop", None),
        ("end",),
    ]
    assert dec.done and dec.error is None and dec.invalid is None


def test_the_start_has_no_id_unless_given_one() -> None:
    _, events = decode(TEXT)
    assert events[0] == ("start", None)


def test_thinking_is_reasoning_before_the_lines_content() -> None:
    raw = (line({"content": "", "thinking": "Let me"}) + line({"content": "", "thinking": " think."})
           + line({"content": "Hi", "thinking": ""}) + final())
    _, events = decode(raw)
    assert events[1:4] == [("reasoning", 0, "Let me"), ("reasoning", 0, " think."), ("text", 0, "Hi")]


def test_tool_calls_are_a_start_with_a_new_id_and_one_fragment_of_whole_arguments() -> None:
    raw = (line({"content": "Checking."})
           + line({"content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                                                 {"function": {"name": "now", "arguments": {}}}]})
           + line({"content": "", "tool_calls": [{"function": {"name": "bare"}},
                                                 {"function": {"name": "raw", "arguments": '{"a": 1}'}},
                                                 {"function": {"name": "blank", "arguments": " "}},
                                                 "not a call", {"function": {"arguments": {"x": 1}}}]})
           + final())
    _, events = decode(raw)
    assert numbered(events)[2:] == [
        ("tool_start", 0, 0, "<id 0>", "get_weather", None), ("tool_args", 0, 0, '{"city":"Paris"}'),
        ("tool_start", 0, 1, "<id 1>", "now", None),
        ("tool_start", 0, 2, "<id 2>", "bare", None),
        ("tool_start", 0, 3, "<id 3>", "raw", None), ("tool_args", 0, 3, '{"a": 1}'),
        ("tool_start", 0, 4, "<id 4>", "blank", None),
        ("tool_start", 0, 5, "<id 5>", "", None), ("tool_args", 0, 5, '{"x":1}'),
        ("usage", 4, 3, 0, 0, 0),
        ("finish", 0, "tool_calls", None),
        ("end",),
    ]


@pytest.mark.parametrize(("reason", "calls", "finish"), [
    ("stop", False, "stop"), ("length", False, "length"), ("load", False, "stop"), (None, False, "stop"),
    ("stop", True, "tool_calls"), ("length", True, "length"),
])
def test_the_done_reason_is_normalised(reason: str | None, calls: bool, finish: str) -> None:
    message = {"content": "", "tool_calls": [{"function": {"name": "now"}}]} if calls else {"content": "x"}
    _, events = decode(line(message) + line({"content": ""}, True, done_reason=reason))
    assert events[-2] == ("finish", 0, finish, None)


def test_missing_or_bad_counts_are_zero() -> None:
    _, events = decode(line({"content": "a"}) + line({"content": ""}, True, eval_count=True, prompt_eval_count="x"))
    assert ("usage", 0, 0, 0, 0, 0) in events


def test_an_error_line_stops_decoding_with_no_finish() -> None:
    dec, events = decode(line({"content": "a"}) + b'{"error":"boom"}\n' + line({"content": "late"}) + final())
    assert events == [("start", None), ("text", 0, "a")]
    assert dec.error == "boom" and not dec.done


def test_an_error_as_the_first_line_gives_no_event() -> None:
    dec, events = decode(b'{"error":"model runner crashed"}\n')
    assert events == [] and dec.error == "model runner crashed"


@pytest.mark.parametrize(("bad", "needle"), [(b"{not json\n", "not valid JSON"), (b"[1,2]\n", "not a JSON object"),
                                             (b"x" * (1 << 20) + b"x\n", "larger than")])
def test_a_line_that_is_not_an_ollama_line_is_invalid_and_stops_decoding(bad: bytes, needle: str) -> None:
    dec, events = decode(line({"content": "a"}) + bad + final(), pieces=1 << 16)
    assert needle in dec.invalid and not dec.done
    assert events[-1] == ("text", 0, "a")


def test_an_eof_before_the_done_line_is_not_done_and_a_cut_line_is_invalid() -> None:
    dec, events = decode(line({"content": "a"}))
    assert not dec.done and dec.invalid is None and events[-1] == ("text", 0, "a")
    dec, _ = decode(line({"content": "a"}) + final()[:20])
    assert not dec.done and dec.invalid is not None
    dec, events = decode(line({"content": "a"}) + final().rstrip(b"\n"))
    assert dec.done and events[-1] == ("end",)


def test_nothing_after_the_done_line_is_decoded() -> None:
    rec = Recorder()
    dec = OllamaDecoder(rec)
    dec.feed(TEXT + line({"content": "extra"}))
    dec.feed(line({"content": "more"}))
    dec.close()
    assert rec.events[-1] == ("end",) and all("extra" not in e and "more" not in e for e in rec.events)


@pytest.mark.parametrize("pieces", [1, 2, 3, 5, 7, 64])
def test_any_split_gives_the_decoder_the_same_events(pieces: int) -> None:
    raw = (line({"content": "", "thinking": "ü"}) + TEXT.replace(b"\n", b"\r\n\n")
           .replace(final().replace(b"\n", b"\r\n\n"), b"")
           + line({"content": "", "tool_calls": [{"function": {"name": "now", "arguments": {"tz": "Europe/Oslo"}}}]})
           + final())
    assert numbered(decode(raw, pieces)[1]) == numbered(decode(raw)[1])


def test_read_answer_gives_the_events_of_a_whole_answer() -> None:
    rec = Recorder()
    read_answer(answer({"content": "Hi", "thinking": "hmm", "tool_calls": [
        {"function": {"name": "now", "arguments": {}}}, {"function": {"name": "w", "arguments": {"c": "P"}}}]}),
        rec, "chatcmpl-1")
    assert numbered(rec.events) == [
        ("start", "chatcmpl-1"), ("reasoning", 0, "hmm"), ("text", 0, "Hi"),
        ("tool_start", 0, 0, "<id 0>", "now", None),
        ("tool_start", 0, 1, "<id 1>", "w", None), ("tool_args", 0, 1, '{"c":"P"}'),
        ("usage", 26, 5, 0, 0, 0), ("finish", 0, "tool_calls", None), ("end",),
    ]
    rec = Recorder()
    read_answer({"done": True}, rec)
    assert rec.events == [("start", None), ("usage", 0, 0, 0, 0, 0), ("finish", 0, "stop", None), ("end",)]


# ------------------------------------------------------------------ embeddings


def test_embedding_inputs_take_text_only() -> None:
    assert embedding_inputs({"input": "a"}) == ["a"]
    assert embedding_inputs({"input": ["a", "b"]}) == ["a", "b"]
    for bad in ([1, 2], [[1, 2]], [], None, ["a", 1]):
        with pytest.raises(InvalidInput) as info:
            embedding_inputs({"input": bad})
        assert info.value.param == "input" and "text only" in info.value.message


def test_embed_request_keeps_the_input_shape_and_asks_to_truncate() -> None:
    assert embed_request({"model": "public", "input": "a", "encoding_format": "base64", "user": "u"}, "all-minilm") == {
        "model": "all-minilm", "input": "a", "truncate": True}
    assert embed_request({"input": ["a", "b"], "dimensions": 4}, "m") == {
        "model": "m", "input": ["a", "b"], "truncate": True, "dimensions": 4}
    with pytest.raises(InvalidInput):
        embed_request({"input": [[1]]}, "m")


def test_embed_answer_floats_and_base64_little_endian_float32() -> None:
    upstream = {"model": "all-minilm", "embeddings": [[0.5, -0.25], [1.0, 0.125]], "total_duration": 1,
                "prompt_eval_count": 3}
    floats = embed_answer(upstream, 2, "all-minilm", False)
    assert floats == {"object": "list", "model": "all-minilm", "usage": {"prompt_tokens": 3, "total_tokens": 3},
                      "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]},
                               {"object": "embedding", "index": 1, "embedding": [1.0, 0.125]}]}
    encoded = embed_answer(upstream, 2, "all-minilm", True)
    raw = base64.b64decode(encoded["data"][1]["embedding"])
    assert raw == struct.pack("<2f", 1.0, 0.125)


def test_embed_answer_with_the_wrong_count_is_none_and_missing_tokens_zero() -> None:
    assert embed_answer({"embeddings": [[0.1]]}, 2, "m", False) is None
    assert embed_answer({"embeddings": ["x"]}, 1, "m", False) is None
    assert embed_answer({}, 1, "m", False) is None
    assert embed_answer({"embeddings": [[0.1]]}, 1, "m", False)["usage"] == {"prompt_tokens": 0, "total_tokens": 0}


# ------------------------------------------------------------------ properties

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_names = st.sampled_from(["weather", "time", "search", "lookup"])
_args = st.dictionaries(st.sampled_from(["a", "b", "city"]), st.one_of(st.integers(-(2**53), 2**53), _text), max_size=2)
_b64 = st.binary(min_size=1, max_size=9).map(lambda b: base64.b64encode(b).decode())


@st.composite
def conversations(draw: st.DrawFn) -> list[dict]:
    """System, user (text and images), assistant (text and tool calls) and tool messages;
    every tool result answers a call made before it."""
    messages: list[dict] = []
    open_calls: list[str] = []
    n = 0
    for _ in range(draw(st.integers(1, 10))):
        kinds = ["system", "user", "assistant", "tool"] if open_calls else ["system", "user", "assistant"]
        kind = draw(st.sampled_from(kinds))
        if kind == "system":
            messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(_text)})
        elif kind == "user":
            parts = draw(st.lists(st.one_of(
                _text.map(lambda t: {"type": "text", "text": t}),
                st.tuples(st.sampled_from(["png", "jpeg"]), _b64).map(
                    lambda tb: {"type": "image_url", "image_url": {"url": f"data:image/{tb[0]};base64,{tb[1]}"}}),
            ), min_size=1, max_size=4))
            single_text = len(parts) == 1 and parts[0]["type"] == "text"
            messages.append({"role": "user", "content": parts[0]["text"] if single_text and draw(st.booleans()) else parts})
        elif kind == "assistant":
            calls = []
            for _ in range(draw(st.integers(0, 3))):
                n += 1
                args = draw(_args)
                encoded = draw(st.sampled_from(["json", "empty", "missing"])) if not args else "json"
                tool_call: dict[str, Any] = {"id": f"call_{n}", "type": "function",
                                             "function": {"name": draw(_names)}}
                if encoded == "json":
                    tool_call["function"]["arguments"] = orjson.dumps(args).decode()
                elif encoded == "empty":
                    tool_call["function"]["arguments"] = ""
                calls.append(tool_call)
                open_calls.append(tool_call["id"])
            message: dict[str, Any] = {"role": "assistant", "content": draw(st.one_of(st.none(), _text))}
            if calls:
                message["tool_calls"] = calls
            messages.append(message)
        else:
            messages.append({"role": "tool", "tool_call_id": draw(st.sampled_from(open_calls)), "content": draw(_text)})
    return messages


def texts_of(content: Any) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    return [p["text"] for p in content if p["type"] == "text" and p["text"]]


def images_of(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    return [p["image_url"]["url"].split(";base64,", 1)[1] for p in content if p["type"] == "image_url"]


@settings(max_examples=200, deadline=None)
@given(conversations())
def test_a_conversation_keeps_every_content_its_order_and_tool_call_links(messages: list[dict]) -> None:
    body = chat_request({"model": "public", "messages": messages}, "llama3.2", False)
    sent = body["messages"]
    assert len(sent) == len(messages), "one Ollama message per OpenAI message, in order"
    names: dict[str, str] = {}
    for original, out in zip(messages, sent, strict=True):
        role = original["role"]
        assert out["role"] == {"developer": "system"}.get(role, role)
        assert out["content"] == "\n".join(t for t in texts_of(original.get("content")) if t)
        assert out.get("images", []) == images_of(original.get("content"))
        calls = original.get("tool_calls") or []
        for c in calls:
            names[c["id"]] = c["function"]["name"]
        assert [(c["function"]["name"], c["function"]["arguments"]) for c in out.get("tool_calls", [])] == [
            (c["function"]["name"], orjson.loads(c["function"]["arguments"]) if c["function"].get("arguments") else {})
            for c in calls
        ]
        if role == "tool":
            assert out["tool_name"] == names[original["tool_call_id"]], "a result names the call it answers"
        else:
            assert "tool_name" not in out


@st.composite
def ollama_streams(draw: st.DrawFn) -> tuple[bytes, dict]:
    """The NDJSON lines of one answer, and the whole answer they add up to."""
    raw, content, thinking, calls = b"", [], [], []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["text", "thinking", "calls"]))
        if kind == "text":
            text = draw(_text)
            content.append(text)
            raw += line({"content": text})
        elif kind == "thinking":
            text = draw(_text)
            thinking.append(text)
            raw += line({"content": "", "thinking": text})
        else:
            group = [{"function": {"name": draw(_names), "arguments": draw(_args)}} for _ in range(draw(st.integers(1, 2)))]
            calls.extend(group)
            raw += line({"content": "", "tool_calls": group})
    reason = draw(st.sampled_from(["stop", "length", "load"]))
    raw += final(reason)
    whole = answer({"content": "".join(content), **({"thinking": "".join(thinking)} if thinking else {}),
                    **({"tool_calls": calls} if calls else {})},
                   done_reason=reason, prompt_eval_count=4, eval_count=3)
    return raw, whole


def without_ids(calls: list[dict]) -> list[dict]:
    return [{k: v for k, v in c.items() if k not in ("id", "index")} for c in calls]


@settings(max_examples=150, deadline=None)
@given(ollama_streams(), st.lists(st.integers(1, 9), min_size=1, max_size=40))
def test_joined_stream_deltas_equal_the_whole_answer_however_the_bytes_are_split(
    stream: tuple[bytes, dict], cuts: list[int]
) -> None:
    raw, whole_answer = stream
    conv = chat_stream("c", 1, "m", True)
    out, pos, k = b"", 0, 0
    while pos < len(raw):
        size = cuts[k % len(cuts)]
        out += conv.feed(raw[pos : pos + size])
        pos, k = pos + size, k + 1
    out += conv.close()
    assert conv.done
    events = payloads(out)
    got = deltas(events)
    whole = convert(whole_answer)["choices"][0]
    assert "".join(d.get("content") or "" for d, _ in got) == (whole["message"]["content"] or "")
    assert "".join(d.get("reasoning_content") or "" for d, _ in got) == whole["message"].get("reasoning_content", "")
    calls = accumulated(got)
    assert without_ids(calls) == without_ids(whole["message"].get("tool_calls", []))
    assert [c["index"] for c in calls] == list(range(len(calls)))
    assert [f for _, f in got if f] == [whole["finish_reason"]]
    assert events[-2]["usage"] == conv.usage == whole_answer_usage(whole_answer)
    assert events[-1] == "[DONE]"


def whole_answer_usage(obj: dict) -> dict:
    return make_usage(obj["prompt_eval_count"], obj["eval_count"])


@settings(max_examples=150, deadline=None)
@given(ollama_streams(), st.lists(st.integers(1, 9), min_size=1, max_size=40))
def test_the_decoders_joined_events_are_read_answers_however_the_bytes_are_split(
    stream: tuple[bytes, dict], cuts: list[int]
) -> None:
    raw, whole_answer = stream
    rec = Recorder()
    dec = OllamaDecoder(rec)
    pos, k = 0, 0
    while pos < len(raw):
        dec.feed(raw[pos : pos + cuts[k % len(cuts)]])
        pos, k = pos + cuts[k % len(cuts)], k + 1
    dec.close()
    assert dec.done
    whole = Recorder()
    read_answer(whole_answer, whole)
    # The stream interleaves reasoning, text and calls as they came; the whole
    # answer has the reasoning, then the text, then the calls.
    for kind in ("text", "reasoning"):
        assert "".join(e[2] for e in rec.events if e[0] == kind) == "".join(e[2] for e in whole.events if e[0] == kind)
    others = [e for e in numbered(rec.events) if e[0] not in ("text", "reasoning")]
    assert others == [e for e in numbered(whole.events) if e[0] not in ("text", "reasoning")]
