"""gw/_fast/anthropic.pyx: OpenAI -> Anthropic requests, Anthropic -> OpenAI answers and
streams, the pass-through watcher; and the adapter's own small functions."""

from __future__ import annotations

import importlib.machinery
import itertools
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gw._fast import anthropic as fast
from gw._fast.anthropic import (
    AnthropicDecoder,
    MessagesWatch,
    chat_request,
    read_answer,
    usage_from,
)
from gw._fast.chat import DONE_EVENT, ChatAnswer, ChatChunks
from gw._fast.events import Converter, Recorder
from gw._fast.rules import InvalidInput, make_usage
from gw.config.describe import ANTHROPIC_DEFAULT_MAX_TOKENS
from gw.config.tables import Provider, ProviderType, Target
from gw.providers.anthropic import anthropic_error, max_tokens_of, native_request
from tests.fakes.anthropic_server import Answer
from tests.integration.sse import sse_data

MODEL = "claude-up"


def convert(messages: list[dict], **extra: Any) -> dict:
    return chat_request({"model": "public", "messages": messages, **extra}, MODEL, 4096)


def user(content: Any) -> dict:
    return {"role": "user", "content": content}


def call(call_id: str, name: str, arguments: Any) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def ev(name: str, obj: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def chat_stream(created: int, model: str, include_usage: bool) -> Converter:
    """What gw runs for a chat client on an Anthropic backend: the decoder driving ``ChatChunks``."""
    encoder = ChatChunks(created, model, include_usage)
    return Converter(AnthropicDecoder(encoder), encoder)


def chat_answer(message: dict, created: int, model: str) -> dict:
    """A whole Anthropic message for a chat client: ``read_answer`` into ``ChatAnswer``."""
    encoder = ChatAnswer(created, model)
    read_answer(message, encoder)
    return encoder.answer()


def test_the_module_is_a_compiled_extension():
    assert fast.__file__ is not None and fast.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


# ------------------------------------------------------------------ request: messages


def test_a_system_message_becomes_the_system_string():
    out = convert([{"role": "system", "content": "Be brief."}, user("Hi")])
    assert out["system"] == "Be brief."
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert out["model"] == MODEL


def test_several_system_and_developer_messages_become_text_blocks_in_order():
    out = convert([
        {"role": "system", "content": "one"},
        user("Hi"),
        {"role": "developer", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]},
    ])
    assert out["system"] == [{"type": "text", "text": t} for t in ("one", "two", "three")]
    assert [m["role"] for m in out["messages"]] == ["user"]


def test_a_system_part_with_cache_control_keeps_it_as_a_block():
    part = {"type": "text", "text": "long rules", "cache_control": {"type": "ephemeral"}}
    assert convert([{"role": "system", "content": [part]}, user("Hi")])["system"] == [part]


def test_no_system_message_no_system_field():
    assert "system" not in convert([user("Hi")])


def test_a_system_message_with_an_image_is_invalid():
    with pytest.raises(InvalidInput) as info:
        convert([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}, user("x")])
    assert info.value.param == "messages[0].content[0]"


def test_consecutive_same_role_messages_merge_into_one_turn():
    out = convert([user("a"), user([{"type": "text", "text": "b"}]), {"role": "assistant", "content": "c"},
                   {"role": "assistant", "content": "d"}, user("e")])
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
        {"role": "user", "content": [{"type": "text", "text": "e"}]},
    ]


def test_empty_texts_are_left_out_and_an_empty_message_adds_no_turn():
    out = convert([user("a"), {"role": "assistant", "content": ""}, user(""), user([{"type": "text", "text": ""}, {"type": "text", "text": "b"}])])
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]


def test_text_and_refusal_parts_of_the_assistant_become_text_blocks():
    out = convert([user("q"), {"role": "assistant", "content": [{"type": "text", "text": "x"}, {"type": "refusal", "refusal": "no"}]}])
    assert out["messages"][1]["content"] == [{"type": "text", "text": "x"}, {"type": "text", "text": "no"}]


@pytest.mark.parametrize(
    ("url", "source"),
    [
        ("data:image/png;base64,iVBORw0KGgo=", {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}),
        ("data:image/webp;base64,UklGR", {"type": "base64", "media_type": "image/webp", "data": "UklGR"}),
        ("https://example.com/cat.jpg?x=1", {"type": "url", "url": "https://example.com/cat.jpg?x=1"}),
        ("HTTP://example.com/cat.png", {"type": "url", "url": "HTTP://example.com/cat.png"}),
    ],
)
def test_image_parts_become_image_blocks(url, source):
    out = convert([user([{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": url, "detail": "high"}}])])
    assert out["messages"][0]["content"] == [{"type": "text", "text": "what?"}, {"type": "image", "source": source}]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.png", "file-abc123", "data:image/png,rawbytes", "data:;base64,AAAA", "", None]
)
def test_other_image_urls_are_invalid_input(url):
    with pytest.raises(InvalidInput) as info:
        convert([user([{"type": "image_url", "image_url": {"url": url}}])])
    assert info.value.param == "messages[0].content[0].image_url.url"


def test_a_pdf_file_part_becomes_a_document_block_and_a_file_id_is_invalid():
    out = convert([user([{"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}}])])
    assert out["messages"][0]["content"] == [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    ]
    with pytest.raises(InvalidInput, match="file_id"):
        convert([user([{"type": "file", "file": {"file_id": "file-1"}}])])


def test_audio_parts_are_invalid_input():
    with pytest.raises(InvalidInput) as info:
        convert([user([{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}])])
    assert info.value.param == "messages[0].content[0].type"


def test_assistant_tool_calls_become_tool_use_blocks_with_parsed_input():
    out = convert([
        user("weather?"),
        {"role": "assistant", "content": "Let me check.", "tool_calls": [call("call_1", "get_weather", '{"city": "Paris"}')]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ])
    assert out["messages"][1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]}


@pytest.mark.parametrize("arguments", ["", "   ", None, "null", {}])
def test_tool_calls_without_arguments_get_an_empty_input(arguments):
    message = {"role": "assistant", "content": "", "tool_calls": [call("c1", "now", arguments)]}
    out = convert([user("time?"), message, {"role": "tool", "tool_call_id": "c1", "content": "noon"}])
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "c1", "name": "now", "input": {}}]


def test_a_missing_arguments_field_is_an_empty_input():
    message = {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "now"}}]}
    assert convert([user("t"), message])["messages"][1]["content"][0]["input"] == {}


@pytest.mark.parametrize(("arguments", "what"), [('{"city": ', "not valid JSON"), ("[1, 2]", "JSON object"), ("42", "JSON object"), (7, "JSON string")])
def test_unparseable_or_non_object_arguments_are_invalid_input(arguments, what):
    message = {"role": "assistant", "tool_calls": [call("c1", "f", "{}"), call("c2", "f", arguments)]}
    with pytest.raises(InvalidInput, match=what) as info:
        convert([user("t"), message])
    assert info.value.param == "messages[1].tool_calls[1].function.arguments"


def test_a_tool_call_without_id_or_name_is_invalid_input():
    with pytest.raises(InvalidInput) as info:
        convert([user("t"), {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}])
    assert info.value.param == "messages[1].tool_calls[0].id"
    with pytest.raises(InvalidInput) as info:
        convert([user("t"), {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {}}]}])
    assert info.value.param == "messages[1].tool_calls[0].function.name"


def test_consecutive_tool_results_are_one_user_turn_before_the_next_user_text():
    out = convert([
        user("two things"),
        {"role": "assistant", "tool_calls": [call("c1", "a", "{}"), call("c2", "b", '{"x": 1}')]},
        {"role": "tool", "tool_call_id": "c1", "content": "A"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "B"}]},
        user("thanks"),
    ])
    assert len(out["messages"]) == 3
    assert out["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "c1", "content": "A"},
        {"type": "tool_result", "tool_use_id": "c2", "content": [{"type": "text", "text": "B"}]},
        {"type": "text", "text": "thanks"},
    ]}


def test_an_empty_tool_result_has_no_content_and_a_missing_id_is_invalid():
    out = convert([user("t"), {"role": "assistant", "tool_calls": [call("c1", "f", "")]}, {"role": "tool", "tool_call_id": "c1", "content": ""}])
    assert out["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "c1"}]
    with pytest.raises(InvalidInput) as info:
        convert([user("t"), {"role": "tool", "content": "x"}])
    assert info.value.param == "messages[1].tool_call_id"


@pytest.mark.parametrize("role", ["function", "critic", None])
def test_legacy_function_messages_and_unknown_roles_are_invalid_input(role):
    with pytest.raises(InvalidInput) as info:
        convert([user("x"), {"role": role, "name": "f", "content": "1"}])
    assert info.value.param == "messages[1].role"


def test_legacy_functions_are_invalid_input():
    with pytest.raises(InvalidInput, match="use 'tools'"):
        convert([user("x")], functions=[{"name": "f", "parameters": {}}])
    with pytest.raises(InvalidInput, match="tool_calls"):
        convert([user("x"), {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}])


# ------------------------------------------------------------------ request: parameters


def test_max_tokens_defaults_to_the_given_default():
    assert chat_request({"messages": [user("x")]}, MODEL, 64000)["max_tokens"] == 64000
    assert convert([user("x")])["max_tokens"] == 4096


def test_max_completion_tokens_is_preferred_over_max_tokens():
    assert convert([user("x")], max_tokens=10)["max_tokens"] == 10
    assert convert([user("x")], max_tokens=10, max_completion_tokens=20)["max_tokens"] == 20


@pytest.mark.parametrize(("field", "value"), [("max_tokens", 0), ("max_tokens", "10"), ("max_completion_tokens", -1), ("max_tokens", True)])
def test_a_max_tokens_that_is_not_a_positive_integer_is_invalid(field, value):
    with pytest.raises(InvalidInput) as info:
        convert([user("x")], **{field: value})
    assert info.value.param == field


@pytest.mark.parametrize(("given", "sent"), [(0.3, 0.3), (1.7, 1), (2, 1), (-0.5, 0), (0, 0), (1, 1)])
def test_temperature_is_clipped_to_anthropics_range(given, sent):
    assert convert([user("x")], temperature=given)["temperature"] == sent


def test_a_temperature_that_is_not_a_number_is_invalid():
    with pytest.raises(InvalidInput):
        convert([user("x")], temperature="hot")


def test_top_p_and_top_k_are_kept():
    out = convert([user("x")], top_p=0.9, top_k=40)
    assert out["top_p"] == 0.9 and out["top_k"] == 40


@pytest.mark.parametrize(("stop", "sequences"), [("END", ["END"]), (["a", "b"], ["a", "b"])])
def test_stop_becomes_stop_sequences(stop, sequences):
    assert convert([user("x")], stop=stop)["stop_sequences"] == sequences


def test_an_empty_stop_list_is_left_out_and_a_bad_one_is_invalid():
    assert "stop_sequences" not in convert([user("x")], stop=[])
    with pytest.raises(InvalidInput):
        convert([user("x")], stop=["a", 1])
    with pytest.raises(InvalidInput):
        convert([user("x")], stop=5)


def test_user_becomes_metadata_user_id():
    assert convert([user("x")], user="user-42")["metadata"] == {"user_id": "user-42"}
    with pytest.raises(InvalidInput):
        convert([user("x")], user=42)


def test_fields_anthropic_cannot_take_are_dropped():
    out = convert(
        [user("x")],
        n=1, logprobs=True, top_logprobs=3, presence_penalty=0.5, frequency_penalty=0.5, seed=7,
        response_format={"type": "json_object"}, logit_bias={"50256": -100}, stream_options={"include_usage": True},
        service_tier="auto", store=True, metadata={"a": "b"}, modalities=["text"], parallel_tool_calls=True,
    )  # fmt: skip
    assert set(out) == {"model", "messages", "max_tokens"}  # reasoning_effort: extended thinking, below


def test_n_above_one_is_invalid_input():
    with pytest.raises(InvalidInput) as info:
        convert([user("x")], n=2)
    assert info.value.param == "n"


def test_stream_is_asked_only_when_streaming():
    assert "stream" not in convert([user("x")], stream=True)
    assert chat_request({"messages": [user("x")]}, MODEL, 1, True)["stream"] is True


def test_function_tools_become_anthropic_tools():
    params = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    out = convert([user("x")], tools=[
        {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": params, "strict": True}},
        {"type": "function", "function": {"name": "now"}},
        {"type": "function", "function": {"name": "ping", "parameters": {}}},
        {"type": "function", "function": {"name": "implied", "parameters": {"properties": {"a": {"type": "integer"}}}}},
    ])
    assert out["tools"] == [
        {"name": "get_weather", "description": "Weather", "input_schema": params},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
        {"name": "implied", "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}},
    ]


@pytest.mark.parametrize("tool", [{"type": "code_interpreter"}, {"type": "function", "function": {"description": "no name"}}, "x"])
def test_tools_that_are_not_named_functions_are_invalid(tool):
    with pytest.raises(InvalidInput) as info:
        convert([user("x")], tools=[tool])
    assert info.value.param.startswith("tools[0]")


TOOLS = [{"type": "function", "function": {"name": "f"}}]


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice_maps_to_anthropics(choice, sent):
    assert convert([user("x")], tools=TOOLS, tool_choice=choice)["tool_choice"] == sent


@pytest.mark.parametrize("choice", ["always", {"type": "function"}, 3])
def test_an_unknown_tool_choice_is_invalid(choice):
    with pytest.raises(InvalidInput) as info:
        convert([user("x")], tools=TOOLS, tool_choice=choice)
    assert info.value.param == "tool_choice"


def test_parallel_tool_calls_false_disables_parallel_tool_use():
    assert convert([user("x")], tools=TOOLS, tool_choice="required", parallel_tool_calls=False)["tool_choice"] == {
        "type": "any", "disable_parallel_tool_use": True}
    assert convert([user("x")], tools=TOOLS, parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto", "disable_parallel_tool_use": True}
    # "none" takes no such flag
    assert convert([user("x")], tools=TOOLS, tool_choice="none", parallel_tool_calls=False)["tool_choice"] == {"type": "none"}
    assert "tool_choice" not in convert([user("x")], tools=TOOLS, parallel_tool_calls=True)


def test_tool_choice_without_tools_is_left_out():
    out = convert([user("x")], tool_choice="auto", parallel_tool_calls=False)
    assert "tool_choice" not in out and "tools" not in out
    assert "tools" not in convert([user("x")], tools=[], tool_choice="auto")


def test_the_clients_body_is_not_changed():
    body = {"messages": [user("x"), {"role": "assistant", "tool_calls": [call("c", "f", "{}")]}], "stop": "s",
            "tools": TOOLS, "tool_choice": "auto", "parallel_tool_calls": False}
    before = orjson.dumps(body)
    chat_request(body, MODEL, 10)
    assert orjson.dumps(body) == before


# ------------------------------------------------------------------ answer


def message(content: list[dict], stop_reason: str = "end_turn", **usage: int) -> dict:
    return {
        "id": "msg_01ABC", "type": "message", "role": "assistant", "model": "claude-real", "content": content,
        "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }  # fmt: skip


def test_text_blocks_are_joined_into_the_content():
    out = chat_answer(message([{"type": "text", "text": "Hello "}, {"type": "text", "text": "world"}]), 1700, MODEL)
    assert out["id"] == "chatcmpl-msg_01ABC"
    assert out["object"] == "chat.completion" and out["created"] == 1700 and out["model"] == MODEL
    assert out["choices"] == [{
        "index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": None},
        "logprobs": None, "finish_reason": "stop",
    }]  # fmt: skip


def test_tool_use_blocks_become_tool_calls_and_content_is_null_without_text():
    out = chat_answer(message([
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
    ], "tool_use"), 1, MODEL)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]


def test_thinking_is_reasoning_content_redacted_thinking_is_dropped_and_no_content_is_an_empty_string():
    out = chat_answer(message([{"type": "thinking", "thinking": "x", "signature": "s"},
                               {"type": "redacted_thinking", "data": "zz"}]), 1, MODEL)
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "", "refusal": None, "reasoning_content": "x"}


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("refusal", "content_filter"), ("pause_turn", "stop"), ("model_context_window_exceeded", "length"),
     (None, "stop"), ("something_new", "stop")],
)  # fmt: skip
def test_stop_reasons_map_to_finish_reasons(reason, finish):
    assert chat_answer(message([{"type": "text", "text": "x"}], reason), 1, MODEL)["choices"][0]["finish_reason"] == finish


def test_usage_counts_cache_tokens_as_prompt_tokens():
    out = chat_answer(message([{"type": "text", "text": "x"}], cache_read_input_tokens=100, cache_creation_input_tokens=20), 1, MODEL)
    assert out["usage"] == {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                            "prompt_tokens_details": {"cached_tokens": 100}}
    assert usage_from({"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": None}) == make_usage(3, 1)
    assert usage_from(None) == make_usage(0, 0)


# ------------------------------------------------------------------ stream


def start(msg_id: str = "msg_01XYZ", **usage: int) -> bytes:
    return ev("message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": "claude-real", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 1, **usage}}})


def block_start(index: int, block: dict) -> bytes:
    return ev("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def delta(index: int, d: dict) -> bytes:
    return ev("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})


def text(index: int, t: str) -> bytes:
    return delta(index, {"type": "text_delta", "text": t})


def args(index: int, partial: str) -> bytes:
    return delta(index, {"type": "input_json_delta", "partial_json": partial})


def stop(index: int) -> bytes:
    return ev("content_block_stop", {"type": "content_block_stop", "index": index})


def finish(reason: str = "end_turn", output: int = 7) -> bytes:
    return ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
                                "usage": {"output_tokens": output}})


PING = ev("ping", {"type": "ping"})
MESSAGE_STOP = ev("message_stop", {"type": "message_stop"})


def text_stream(*words: str) -> bytes:
    return (start() + block_start(0, {"type": "text", "text": ""}) + PING
            + b"".join(text(0, w) for w in words) + stop(0) + finish() + MESSAGE_STOP)


def run(raw: bytes, include_usage: bool = False, pieces: int | None = None) -> tuple[Converter, list[Any]]:
    """Feed ``raw`` whole (or in ``pieces``-byte writes); the chunks out ([DONE] as the string)."""
    conv = chat_stream(1700000000, MODEL, include_usage)
    out = b""
    step = pieces or len(raw) or 1
    for i in range(0, len(raw), step):
        out += conv.feed(raw[i : i + step])
        if conv.done:
            break
    out += conv.close()
    return conv, [d if d == "[DONE]" else json.loads(d) for d in sse_data(out.decode())]


def deltas(chunks: list[Any]) -> list[dict]:
    return [c["choices"][0]["delta"] for c in chunks if c != "[DONE]" and c["choices"]]


def test_a_text_stream_is_role_content_one_finish_and_done():
    conv, chunks = run(text_stream("Hel", "lo ", "wörld"))
    assert conv.done and conv.error is None and conv.invalid is None
    assert chunks[-1] == "[DONE]"
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "Hel"}, {"content": "lo "},
                              {"content": "wörld"}, {}]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1]]
    assert finishes == [None, None, None, None, "stop"]
    assert {c["id"] for c in chunks[:-1]} == {"chatcmpl-msg_01XYZ"}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL and c["created"] == 1700000000
               for c in chunks[:-1])


def test_usage_chunk_only_when_asked_but_usage_always_kept():
    quiet, chunks = run(text_stream("a"), include_usage=False)
    assert all(c == "[DONE]" or c["choices"] for c in chunks)
    assert quiet.usage == make_usage(12, 7)
    loud, chunks = run(text_stream("a"), include_usage=True)
    usage_chunks = [c for c in chunks if c != "[DONE]" and "usage" in c]
    assert len(usage_chunks) == 1 and chunks[-2] is usage_chunks[0] and chunks[-1] == "[DONE]"
    assert usage_chunks[0]["choices"] == [] and usage_chunks[0]["usage"] == make_usage(12, 7)


def test_cache_tokens_from_message_start_and_output_from_message_delta():
    raw = (start(cache_read_input_tokens=100, cache_creation_input_tokens=20)
           + block_start(0, {"type": "text", "text": ""}) + text(0, "x") + stop(0)
           + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}})
           + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 9}})
           + MESSAGE_STOP)
    conv, chunks = run(raw, include_usage=True)
    assert conv.usage == {"prompt_tokens": 132, "completion_tokens": 9, "total_tokens": 141,
                          "prompt_tokens_details": {"cached_tokens": 100}}
    assert [c for c in chunks if c != "[DONE]" and "usage" in c][0]["usage"] == conv.usage


def test_cumulative_input_counts_in_message_delta_replace_those_of_message_start():
    raw = start() + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                         "usage": {"input_tokens": 40, "cache_read_input_tokens": None, "output_tokens": 2}})
    conv, _ = run(raw)
    assert conv.usage == make_usage(40, 2)


def test_usage_is_none_before_message_start():
    conv = chat_stream(1, MODEL, True)
    conv.feed(PING)
    assert conv.usage is None and conv.encoder.id is None


def tool_stream() -> bytes:
    """Text, a tool call with arguments in pieces, one with none, one with only an empty fragment."""
    return (
        start()
        + block_start(0, {"type": "thinking", "thinking": "", "signature": ""})
        + delta(0, {"type": "thinking_delta", "thinking": "let me think"})
        + delta(0, {"type": "signature_delta", "signature": "c2ln"}) + stop(0)
        + block_start(1, {"type": "text", "text": ""}) + PING + text(1, "Checking.") + stop(1)
        + block_start(2, {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {}})
        + args(2, "") + args(2, '{"city": ') + args(2, '"Paris"}') + stop(2)
        + block_start(3, {"type": "tool_use", "id": "toolu_B", "name": "now", "input": {}}) + stop(3)
        + block_start(4, {"type": "tool_use", "id": "toolu_C", "name": "uptime", "input": {}}) + args(4, "") + stop(4)
        + finish("tool_use") + MESSAGE_STOP
    )


def test_tool_calls_have_distinct_stable_indexes_and_ids_in_every_chunk():
    conv, chunks = run(tool_stream())
    assert conv.done
    calls = [tc for d in deltas(chunks) for tc in d.get("tool_calls", ())]
    assert calls[0] == {"index": 0, "id": "toolu_A", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    assert calls[1:3] == [{"index": 0, "function": {"arguments": '{"city": '}}, {"index": 0, "function": {"arguments": '"Paris"}'}}]
    assert calls[3] == {"index": 1, "id": "toolu_B", "type": "function", "function": {"name": "now", "arguments": ""}}
    assert calls[4] == {"index": 2, "id": "toolu_C", "type": "function", "function": {"name": "uptime", "arguments": ""}}
    # calls that got no argument get "{}" at the finish
    assert calls[5:] == [{"index": 1, "function": {"arguments": "{}"}}, {"index": 2, "function": {"arguments": "{}"}}]
    assert len(calls) == 7
    # what a client accumulates
    joined: dict[int, str] = {}
    for tc in calls:
        joined[tc["index"]] = joined.get(tc["index"], "") + tc["function"]["arguments"]
    assert {i: json.loads(a) for i, a in joined.items()} == {0: {"city": "Paris"}, 1: {}, 2: {}}
    assert "".join(d.get("content") or "" for d in deltas(chunks)) == "Checking."
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"][0]["finish_reason"]] == ["tool_calls"]


def test_a_tool_call_never_stopped_gets_empty_arguments_before_the_finish():
    raw = start() + block_start(0, {"type": "tool_use", "id": "toolu_X", "name": "now", "input": {}}) + finish("tool_use") + MESSAGE_STOP
    _, chunks = run(raw)
    assert deltas(chunks)[-2] == {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_tool_block_that_brings_its_input_whole_sends_it_as_arguments():
    raw = (start() + block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}) + stop(0)
           + finish("tool_use") + MESSAGE_STOP)
    _, chunks = run(raw)
    assert deltas(chunks)[2] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]}
    assert len([d for d in deltas(chunks) if "tool_calls" in d]) == 2


def test_exactly_one_finish_chunk_even_if_message_delta_repeats_it():
    raw = start() + block_start(0, {"type": "text", "text": ""}) + text(0, "x") + finish() + finish() + MESSAGE_STOP
    _, chunks = run(raw)
    assert sum(1 for c in chunks[:-1] if c["choices"][0]["finish_reason"]) == 1


def test_an_error_event_after_200_sets_error_and_ends_output():
    conv = chat_stream(1, MODEL, True)
    out = conv.feed(start() + block_start(0, {"type": "text", "text": ""}) + text(0, "par")
                    + ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                    + text(0, "never"))
    assert conv.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert not conv.done
    assert b"never" not in out and b"[DONE]" not in out and b"finish_reason\":\"" not in out
    assert b'"content":"par"' in out


def test_an_error_right_after_message_start_has_sent_nothing():
    conv = chat_stream(1, MODEL, True)
    out = conv.feed(start() + PING + ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    assert out == b"" and conv.error["type"] == "overloaded_error"
    assert conv.usage == make_usage(12, 1)


def test_the_role_chunk_comes_with_the_first_block_or_the_finish():
    conv = chat_stream(1, MODEL, False)
    assert conv.feed(start() + PING) == b""
    assert conv.encoder.id == "chatcmpl-msg_01XYZ"
    _, chunks = run(start() + finish("max_tokens") + MESSAGE_STOP)
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {}]
    assert chunks[1]["choices"][0]["finish_reason"] == "length"


def test_an_error_after_an_empty_block_start_has_sent_nothing():
    conv = chat_stream(1, MODEL, False)
    out = conv.feed(start() + block_start(0, {"type": "text", "text": ""}) + PING
                    + ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    assert out == b"" and conv.error["type"] == "overloaded_error"


def test_thinking_streams_as_reasoning_content_before_the_text():
    _, chunks = run(tool_stream())
    assert deltas(chunks)[:3] == [{"role": "assistant", "content": ""}, {"reasoning_content": "let me think"},
                                  {"content": "Checking."}]


def test_eof_before_message_stop_is_not_done():
    conv, chunks = run(start() + block_start(0, {"type": "text", "text": ""}) + text(0, "x") + finish())
    assert not conv.done and conv.error is None and conv.invalid is None
    assert "[DONE]" not in chunks


def test_a_cut_event_at_eof_is_invalid():
    conv = chat_stream(1, MODEL, False)
    conv.feed(start() + b"event: content_block_delta\ndata: {\"type\"")
    assert conv.close() == b""
    assert conv.invalid is not None and not conv.done


@pytest.mark.parametrize("garbage", [b"data: {not json\n\n", b"event: content_block_delta\ndata: [1,2]\n\n", b"data: 12\n\n"])
def test_garbage_is_invalid(garbage):
    conv = chat_stream(1, MODEL, False)
    conv.feed(start() + garbage + text(0, "after"))
    assert conv.invalid is not None and not conv.done


def test_content_before_message_start_or_a_stop_without_stop_reason_is_invalid():
    early = chat_stream(1, MODEL, False)
    early.feed(block_start(0, {"type": "text", "text": ""}))
    assert early.invalid == "content before message_start"
    unfinished = chat_stream(1, MODEL, False)
    unfinished.feed(start() + MESSAGE_STOP)
    assert unfinished.invalid == "message_stop without a stop_reason" and not unfinished.done


def test_unknown_events_and_delta_types_are_ignored():
    raw = (start() + ev("future_event", {"type": "future_event", "x": 1})
           + block_start(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}})
           + args(0, '{"q":"x"}') + stop(0)
           + block_start(1, {"type": "text", "text": ""}) + delta(1, {"type": "citations_delta", "citation": {}})
           + text(1, "ok") + stop(1) + finish() + MESSAGE_STOP)
    conv, chunks = run(raw)
    assert conv.done
    assert deltas(chunks) == [{"role": "assistant", "content": ""}, {"content": "ok"}, {}]


def test_nothing_after_message_stop_is_read():
    conv = chat_stream(1, MODEL, False)
    out = conv.feed(text_stream("a") + b"data: {garbage")
    assert conv.done and conv.invalid is None and out.endswith(DONE_EVENT)


@pytest.mark.parametrize("pieces", [1, 2, 3, 5, 7])
def test_splits_into_small_writes_cutting_utf8_and_lines_arrive_intact(pieces):
    raw = text_stream("héllo ", "wörld ", "你好 ", "🎉")
    _, whole = run(raw)
    _, split = run(raw, pieces=pieces)
    assert split == whole
    assert "".join(d.get("content") or "" for d in deltas(split)) == "héllo wörld 你好 🎉"


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_split_of_a_stream_gives_the_same_output(data):
    raw = tool_stream().replace(b"Checking.", "Chécking 🎉.".encode())
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=40))))
    conv = chat_stream(1, MODEL, True)
    out = b""
    prev = 0
    for cut in [*cuts, len(raw)]:
        out += conv.feed(raw[prev:cut])
        prev = cut
    whole = chat_stream(1, MODEL, True)
    assert out == whole.feed(raw) and conv.done


# ------------------------------------------------------------------ decoder: events


def decode(raw: bytes, cuts: list[int] | None = None, close: bool = True) -> tuple[AnthropicDecoder, list[tuple]]:
    """Feed ``raw`` to a decoder over a Recorder, cut at ``cuts``; (decoder, events)."""
    rec = Recorder()
    dec = AnthropicDecoder(rec)
    prev = 0
    for cut in [*(cuts or ()), len(raw)]:
        dec.feed(raw[prev:cut])
        prev = cut
    if close:
        dec.close()
    return dec, rec.events


def test_the_decoder_turns_a_stream_into_events():
    dec, events = decode(tool_stream())
    assert dec.done and dec.error is None and dec.invalid is None and dec.id == "msg_01XYZ"
    assert events == [
        ("start", "msg_01XYZ"),
        ("usage", 12, 1, 0, 0, 0),
        ("reasoning", 0, "let me think"),
        ("text", 0, "Checking."),
        ("tool_start", 0, 0, "toolu_A", "get_weather", None),
        ("tool_args", 0, 0, '{"city": '),
        ("tool_args", 0, 0, '"Paris"}'),
        ("tool_start", 0, 1, "toolu_B", "now", None),
        ("tool_start", 0, 2, "toolu_C", "uptime", None),
        ("usage", 12, 7, 0, 0, 0),
        ("finish", 0, "tool_calls", None),
        ("end",),
    ]


def test_one_byte_writes_give_the_same_events():
    raw = tool_stream().replace(b"Checking.", "Chécking 🎉.".encode())
    assert decode(raw, list(range(1, len(raw))))[1] == decode(raw)[1]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_split_gives_the_same_events(data):
    raw = tool_stream().replace(b"let me think", "let mé 🤔".encode())
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=40))))
    dec, events = decode(raw, cuts)
    assert dec.done and events == decode(raw)[1]


def test_thinking_is_reasoning_and_signatures_are_dropped():
    raw = (start() + block_start(0, {"type": "thinking", "thinking": "first, ", "signature": ""})
           + delta(0, {"type": "thinking_delta", "thinking": "then"}) + delta(0, {"type": "thinking_delta", "thinking": ""})
           + delta(0, {"type": "signature_delta", "signature": "c2ln"}) + stop(0)
           + block_start(1, {"type": "redacted_thinking", "data": "opaque"}) + stop(1)
           + block_start(2, {"type": "text", "text": "ok"}) + stop(2) + finish() + MESSAGE_STOP)
    _, events = decode(raw)
    assert [e for e in events if e[0] in ("reasoning", "text")] == [
        ("reasoning", 0, "first, "), ("reasoning", 0, "then"), ("text", 0, "ok")]


def test_a_stop_sequence_is_the_finish_match_and_stop_reasons_are_normalised():
    raw = start() + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "stop_sequence",
                                                                            "stop_sequence": "END"}}) + MESSAGE_STOP
    assert decode(raw)[1][-2:] == [("finish", 0, "stop", "END"), ("end",)]
    assert decode(start() + finish("refusal") + MESSAGE_STOP)[1][-2] == ("finish", 0, "content_filter", None)
    assert decode(start() + finish("something_new") + MESSAGE_STOP)[1][-2] == ("finish", 0, "stop", None)


def test_a_tool_block_with_whole_input_is_one_fragment_and_a_missing_id_gets_a_new_one():
    raw = (start() + block_start(5, {"type": "tool_use", "name": "f", "input": {"a": [1, "é"]}}) + stop(5)
           + finish("end_turn") + MESSAGE_STOP)
    _, events = decode(raw)
    (_, _, index, call_id, name, extra), args = events[2], events[3]
    assert (index, name, extra) == (0, "f", None) and call_id.startswith("call_") and len(call_id) == 29
    assert args == ("tool_args", 0, 0, '{"a":[1,"é"]}')
    assert events[-2] == ("finish", 0, "tool_calls", None)  # a stop with tool calls


def test_usage_counts_take_what_is_there_and_keep_the_rest():
    raw = (start(cache_read_input_tokens=100, cache_creation_input_tokens=20)
           + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": None},
                                  "usage": {"output_tokens": 3, "input_tokens": True, "cache_read_input_tokens": None}})
           + ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}})
           + MESSAGE_STOP)
    dec, events = decode(raw)
    assert [e for e in events if e[0] == "usage"] == [
        ("usage", 12, 1, 100, 20, 0), ("usage", 12, 3, 100, 20, 0), ("usage", 12, 9, 100, 20, 0)]
    assert dec.usage == make_usage(12, 9, 100, 20)


def test_the_decoder_stops_at_an_error_event_and_at_garbage():
    err = ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    dec, events = decode(start() + PING + err + text(0, "never"))
    assert dec.error == {"type": "overloaded_error", "message": "Overloaded"} and not dec.done
    assert events == [("start", "msg_01XYZ"), ("usage", 12, 1, 0, 0, 0)]
    bare = decode(start() + b'event: error\ndata: {"type":"error"}\n\n')[0]
    assert bare.error == {"type": "error"}
    dec, events = decode(start() + b"data: {not json\n\n" + text(0, "after"))
    assert dec.invalid == "an event is not valid JSON" and ("text", 0, "after") not in events
    dec.feed(text(0, "later"))
    assert ("text", 0, "later") not in events


@pytest.mark.parametrize(("raw", "why"), [
    (block_start(0, {"type": "text", "text": ""}), "content before message_start"),
    (text(0, "x"), "content before message_start"),
    (finish(), "message_delta before message_start"),
    (start() + MESSAGE_STOP, "message_stop without a stop_reason"),
    (b"data: [1]\n\n", "an event is not a JSON object"),
])  # fmt: skip
def test_events_out_of_order_are_invalid_and_end_is_never_called(raw, why):
    dec, events = decode(raw)
    assert dec.invalid == why and not dec.done and ("end",) not in events


def test_a_stream_cut_before_message_stop_is_not_done_and_a_cut_event_is_invalid():
    dec, events = decode(start() + text(0, "x") + finish())
    assert not dec.done and dec.invalid is None and events[-1] == ("finish", 0, "stop", None)
    dec, _ = decode(start() + b'event: content_block_delta\ndata: {"type"')
    assert dec.invalid is not None and not dec.done


def test_nothing_after_message_stop_is_read_not_even_at_close():
    dec, events = decode(text_stream("a") + b"data: {garbage")
    assert dec.done and dec.invalid is None and events[-1] == ("end",)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=20), st.sampled_from(["text", "thinking"]), st.integers(0, 12), st.booleans())
def test_a_delta_reads_the_same_however_it_is_written(value, kind, index, spaced):
    d = {"type": "content_block_delta", "index": index, "delta": {"type": f"{kind}_delta", kind: value}}
    data = json.dumps(d, ensure_ascii=False) if spaced else orjson.dumps(d).decode()
    _, events = decode(start() + b"event: content_block_delta\ndata: " + data.encode() + b"\n\n")
    assert events[2:] == ([("text" if kind == "text" else "reasoning", 0, value)] if value else [])


@pytest.mark.parametrize("data", [
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\xff"}}',
    b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\x01"}}',
    b'{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"a"}}',
    b'{"type":"content_block_delta","index":,"delta":{"type":"text_delta","text":"a"}}',
])  # fmt: skip
def test_a_delta_that_is_not_json_is_invalid(data):
    dec, events = decode(start() + b"data: " + data + b"\n\n")
    assert dec.invalid == "an event is not valid JSON" and len(events) == 2


def test_read_answer_gives_the_events_of_a_whole_message():
    rec = Recorder()
    read_answer(message([
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "zz"},
        {"type": "text", "text": "Let me check."},
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"q": "x"}},
        {"type": "tool_use", "name": "now", "input": {}},
    ], "tool_use", cache_read_input_tokens=3), rec)
    tool_id = rec.events[5][3]
    assert tool_id.startswith("call_")
    assert rec.events == [
        ("start", "msg_01ABC"),
        ("reasoning", 0, "hmm"),
        ("text", 0, "Let me check."),
        ("tool_start", 0, 0, "toolu_1", "get_weather", None),
        ("tool_args", 0, 0, '{"city":"Paris"}'),
        ("tool_start", 0, 1, tool_id, "now", None),
        ("usage", 10, 5, 3, 0, 0),
        ("finish", 0, "tool_calls", None),
        ("end",),
    ]


def test_read_answer_of_a_bare_message():
    rec = Recorder()
    read_answer({"content": [], "stop_sequence": "END", "stop_reason": "stop_sequence", "usage": None}, rec)
    assert rec.events == [("start", None), ("usage", 0, 0, 0, 0, 0), ("finish", 0, "stop", "END"), ("end",)]


# ---------------------------------------------------------------- stream == answer

words = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
tool_calls = st.lists(
    st.fixed_dictionaries({"name": st.sampled_from(["a", "get_weather", "now"]),
                           "arguments": st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=3)}),
    max_size=3,
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(content=st.lists(words, max_size=6).map(" ".join), calls=tool_calls, cache=st.integers(0, 50))
def test_joined_stream_deltas_equal_the_non_stream_answer(content, calls, cache):
    body = {"model": MODEL, "max_tokens": 1000, "messages": [{"role": "user", "content": "x"}]}
    fake = {"content": content, "tool_calls": calls, "cache_read": cache}
    answer = Answer(body, "msg_01PROP", fake, "")
    whole = chat_answer(answer.message(), 1, MODEL)
    raw = b"".join(ev(name, obj) for name, obj in answer.events())
    conv, chunks = run(raw, include_usage=True)
    assert conv.done
    got_text = "".join(d.get("content") or "" for d in deltas(chunks))
    got_calls: dict[int, dict] = {}
    for d in deltas(chunks):
        for tc in d.get("tool_calls", ()):
            entry = got_calls.setdefault(tc["index"], {"id": tc.get("id"), "name": tc["function"].get("name"), "arguments": ""})
            entry["arguments"] += tc["function"]["arguments"]
    message = whole["choices"][0]["message"]
    assert got_text == (message["content"] or "")
    expected = [{"id": c["id"], "name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
                for c in message.get("tool_calls", ())]
    assert [{**c, "arguments": json.loads(c["arguments"])} for _, c in sorted(got_calls.items())] == expected
    finish_reasons = [c["choices"][0]["finish_reason"] for c in chunks if c != "[DONE]" and c["choices"]]
    assert [f for f in finish_reasons if f] == [whole["choices"][0]["finish_reason"]]
    assert conv.usage == whole["usage"]


# ------------------------------------------------------------------ OpenAI -> Anthropic, property

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
images = st.one_of(
    st.builds(lambda t, d: f"data:image/{t};base64,{d}", st.sampled_from(["png", "jpeg", "gif", "webp"]),
              st.text("ABCDEFabcdef0123456789+/", min_size=1, max_size=12)),
    st.builds(lambda p: f"https://example.com/{p}.png", st.text("abcxyz", min_size=1, max_size=6)),
)  # fmt: skip
user_parts = st.lists(
    st.one_of(texts.map(lambda t: {"type": "text", "text": t}),
              images.map(lambda u: {"type": "image_url", "image_url": {"url": u}})),
    min_size=1, max_size=3,
)  # fmt: skip


@st.composite
def conversations(draw: st.DrawFn) -> list[dict]:
    """System messages, user turns (text or parts with images), assistant text and tool
    calls, each call answered by a tool message."""
    messages: list[dict] = [{"role": draw(st.sampled_from(["system", "developer"])), "content": t}
                            for t in draw(st.lists(texts, max_size=2))]
    n = 0
    for _ in range(draw(st.integers(1, 4))):
        messages.append({"role": "user", "content": draw(st.one_of(texts, user_parts))})
        if draw(st.booleans()):
            messages.append({"role": "user", "content": draw(texts)})
        assistant: dict = {"role": "assistant", "content": draw(st.one_of(st.just(""), st.none(), texts))}
        calls = []
        for _ in range(draw(st.integers(0, 3))):
            n += 1
            args = draw(st.dictionaries(st.text(min_size=1, max_size=4), json_values, max_size=2))
            calls.append(call(f"call_{n}", draw(st.sampled_from(["f", "g"])), json.dumps(args) if args else draw(st.sampled_from(["", "{}"]))))
        if calls:
            assistant["tool_calls"] = calls
        if assistant["content"] or calls:
            messages.append(assistant)
        for c in calls:
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": draw(texts)})
    return messages


def openai_items(messages: list[dict]) -> tuple[list[str], list[tuple]]:
    """(system texts, every other piece of content in order) of an OpenAI conversation."""
    system: list[str] = []
    items: list[tuple] = []
    for m in messages:
        role, content = m["role"], m.get("content")
        if role in ("system", "developer"):
            system.append(content)
        elif role == "tool":
            items.append(("tool", m["tool_call_id"], content))
        else:
            parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            for p in parts:
                if p["type"] == "text" and p["text"]:
                    items.append((role, "text", p["text"]))
                elif p["type"] == "image_url":
                    items.append((role, "image", p["image_url"]["url"]))
            for c in m.get("tool_calls", ()):
                raw = c["function"]["arguments"]
                items.append((role, "call", c["id"], c["function"]["name"], json.loads(raw) if raw else {}))
    return system, items


def anthropic_items(body: dict) -> tuple[list[str], list[tuple]]:
    """The same, read back from the Anthropic request (the test's inverse)."""
    system = body.get("system")
    texts_ = [] if system is None else [system] if isinstance(system, str) else [b["text"] for b in system]
    items: list[tuple] = []
    for turn in body["messages"]:
        for b in turn["content"]:
            if b["type"] == "text":
                items.append((turn["role"], "text", b["text"]))
            elif b["type"] == "image":
                s = b["source"]
                items.append((turn["role"], "image", f"data:{s['media_type']};base64,{s['data']}" if s["type"] == "base64" else s["url"]))
            elif b["type"] == "tool_use":
                items.append((turn["role"], "call", b["id"], b["name"], b["input"]))
            elif b["type"] == "tool_result":
                assert turn["role"] == "user"
                items.append(("tool", b["tool_use_id"], b["content"]))
    return texts_, items


@settings(max_examples=150, deadline=None)
@given(conversations())
def test_a_conversation_keeps_its_content_order_and_tool_call_ids(messages):
    body = chat_request({"messages": messages}, MODEL, 100)
    assert anthropic_items(body) == openai_items(messages)
    roles = [t["role"] for t in body["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles  # turns alternate
    for turn in body["messages"]:
        kinds = [b["type"] for b in turn["content"]]
        assert kinds  # no empty turn
        # tool results open their user turn
        assert kinds == sorted(kinds, key=lambda k: k != "tool_result")
    if len([m for m in messages if m["role"] in ("system", "developer")]) == 1:
        assert isinstance(body["system"], str)


# ------------------------------------------------------------------ pass-through watcher


def watch(raw: bytes, pieces: int | None = None) -> tuple[MessagesWatch, bytes]:
    w = MessagesWatch()
    out = b""
    step = pieces or len(raw) or 1
    for i in range(0, len(raw), step):
        out += w.feed(raw[i : i + step])
        if w.done:
            break
    out += w.close()
    return w, out


def test_the_watcher_forwards_the_upstream_bytes_unchanged():
    raw = tool_stream()
    w, out = watch(raw)
    assert out == raw and w.done and w.error is None and w.invalid is None


@pytest.mark.parametrize("pieces", [1, 3, 7])
def test_the_watcher_forwards_split_streams_unchanged(pieces):
    raw = text_stream("héllo", " 🎉 ", "你好")
    w, out = watch(raw, pieces)
    assert out == raw and w.done


def test_the_watcher_counts_usage_from_message_start_and_message_delta():
    raw = start(cache_read_input_tokens=100, cache_creation_input_tokens=20) + finish(output=9) + MESSAGE_STOP
    w, _ = watch(raw)
    assert w.usage == {"prompt_tokens": 132, "completion_tokens": 9, "total_tokens": 141,
                       "prompt_tokens_details": {"cached_tokens": 100}}
    assert MessagesWatch().usage is None


def test_the_watcher_keeps_an_error_event_back_and_reports_it():
    err = ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    raw = start() + block_start(0, {"type": "text", "text": ""}) + text(0, "a")
    w, out = watch(raw + err + text(0, "b"))
    assert out == raw
    assert w.error == {"type": "overloaded_error", "message": "Overloaded"} and not w.done


def test_the_watcher_holds_message_start_and_pings_until_the_first_block():
    w = MessagesWatch()
    assert w.feed(start() + PING) == b""
    assert w.feed(block_start(0, {"type": "text", "text": ""})) == start() + PING + block_start(0, {"type": "text", "text": ""})
    early = MessagesWatch()
    err = ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert early.feed(start() + PING + err) == b"" and early.error["type"] == "overloaded_error"
    assert early.usage == make_usage(12, 1)


@pytest.mark.parametrize("garbage", [b"event: content_block_delta\ndata: {not json\n\n", b"event: ping\ndata: oops\n\n",
                                     b"event: message_delta\ndata: {bad}\n\n"])
def test_the_watcher_reports_garbage(garbage):
    opened = start() + block_start(0, {"type": "text", "text": ""})
    w, out = watch(opened + garbage + MESSAGE_STOP)
    assert w.invalid is not None and not w.done and out == opened


def test_the_watcher_is_not_done_at_eof_before_message_stop_and_reads_nothing_after_it():
    w, _ = watch(start() + finish())
    assert not w.done and w.invalid is None
    w2 = MessagesWatch()
    assert w2.feed(start() + MESSAGE_STOP + b"data: {garbage") == start() + MESSAGE_STOP and w2.done


def test_the_watcher_finishes_a_crlf_message_stop_cut_after_its_cr():
    raw = (start() + MESSAGE_STOP).replace(b"\n", b"\r\n")
    w = MessagesWatch()
    out = w.feed(raw[:-1])  # the last LF is still upstream
    assert w.done and out == raw


def test_the_watcher_reads_unnamed_events_by_their_type():
    raw = b'data: {"type":"message_start","message":{"usage":{"input_tokens":4,"output_tokens":1}}}\n\n' + \
          b'data: {"type":"message_stop"}\n\n'
    w, out = watch(raw)
    assert w.done and out == raw and w.usage == make_usage(4, 1)


# ------------------------------------------------------------------ the adapter's own functions


def provider(**kw: Any) -> Provider:
    return Provider(name="claude", type=ProviderType.ANTHROPIC, base_url="http://x/v1",
                    api_key="sk-ant-secret-0123456789abcdef", **kw)


def test_native_request_rewrites_model_and_defaults_max_tokens_on_a_copy():
    body = {"model": "public", "messages": [user("x")], "system": "s", "thinking": {"type": "enabled"}}
    sent = native_request(body, Target("claude", "claude-up", default_max_tokens=64000))
    assert sent == {**body, "model": "claude-up", "max_tokens": 64000}
    assert body["model"] == "public" and "max_tokens" not in body
    assert native_request(body, Target("claude", "m"))["max_tokens"] == ANTHROPIC_DEFAULT_MAX_TOKENS == 4096
    assert native_request({**body, "max_tokens": 7}, Target("claude", "m", default_max_tokens=99))["max_tokens"] == 7


def test_max_tokens_of_a_target():
    assert max_tokens_of(Target("p", "m", default_max_tokens=123)) == 123
    assert max_tokens_of(Target("p", "m")) == ANTHROPIC_DEFAULT_MAX_TOKENS


def error(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"})


def test_a_400_keeps_anthropics_message_and_type():
    exc = anthropic_error(provider(), 400, error("invalid_request_error", "messages.0: bad"))
    assert exc.status == 400 and exc.type == "invalid_request_error" and not exc.retryable
    assert "messages.0: bad" in exc.message


def test_401_and_403_are_502_without_anthropics_text():
    for status in (401, 403):
        exc = anthropic_error(provider(), status, error("authentication_error", "invalid x-api-key sk-ant-secret-0123456789abcdef"))
        assert exc.status == 502 and "x-api-key" not in exc.message and "secret" not in exc.message


def test_429_is_429_and_retryable():
    exc = anthropic_error(provider(), 429, error("rate_limit_error", "slow down"))
    assert exc.status == 429 and exc.retryable


@pytest.mark.parametrize(("status", "kind"), [(500, "api_error"), (529, "overloaded_error")])
def test_500_and_529_overloaded_are_502_and_retryable(status, kind):
    exc = anthropic_error(provider(), status, error(kind, "Overloaded"))
    assert exc.status == 502 and exc.retryable
    assert exc.retry_key == (503 if status == 529 else 500)
    assert exc.reason == f"status_{status}"


def test_413_request_too_large_keeps_its_status_and_type_and_is_not_retried():
    exc = anthropic_error(provider(), 413, error("request_too_large", "Request exceeds the maximum allowed number of bytes."))
    assert exc.status == 413 and exc.type == "request_too_large" and not exc.retryable
    assert "maximum allowed" in exc.message


def test_a_key_quoted_in_an_error_is_redacted():
    exc = anthropic_error(provider(), 400, error("invalid_request_error", "bad key sk-ant-secret-0123456789abcdef"))
    assert "sk-ant-secret" not in exc.message


REASONING = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5, "top_p": 0.9}


@pytest.mark.parametrize(("effort", "budget"), [("minimal", 1024), ("low", 2048), ("medium", 8192), ("high", 24576)])
def test_reasoning_effort_becomes_extended_thinking_without_the_sampling_it_refuses(effort: str, budget: int) -> None:
    out = fast.chat_request({**REASONING, "reasoning_effort": effort}, "claude", 32000)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert "temperature" not in out and "top_p" not in out


def test_the_thinking_budget_stays_under_max_tokens_or_thinking_stays_off() -> None:
    out = fast.chat_request({**REASONING, "reasoning_effort": "high", "max_tokens": 4000}, "claude", 32000)
    assert out["thinking"]["budget_tokens"] == 3999
    out = fast.chat_request({**REASONING, "reasoning_effort": "high", "max_tokens": 1000}, "claude", 32000)
    assert "thinking" not in out and out["temperature"] == 0.5


def test_no_thinking_for_none_or_a_forced_tool() -> None:
    assert "thinking" not in fast.chat_request({**REASONING, "reasoning_effort": "none"}, "claude", 32000)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    forced = {**REASONING, "reasoning_effort": "high", "tools": tools, "tool_choice": "required"}
    assert "thinking" not in fast.chat_request(forced, "claude", 32000)
