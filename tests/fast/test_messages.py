"""/v1/messages on OpenAI-shaped backends: gw._fast.messages, both directions, stream and not."""

from __future__ import annotations

import copy
import importlib.machinery
import re

import anthropic.types
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

import gw._fast.messages as messages_module
from gw._fast.chat import DONE_EVENT
from gw._fast.convert import sse_data
from gw._fast.events import Converter
from gw._fast.messages import (
    InvalidAnswer,
    MessageAnswer,
    MessagesEvents,
    error_event,
    message_id,
    to_openai,
)
from gw._fast.openai import ChatDecoder, read_answer
from gw._fast.rules import InvalidInput
from tests.fast.wire import chunk_event, usage_event
from tests.strategies import ChatStream, chat_streams

STREAM_EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def valid_message(message: dict) -> dict:
    """``message`` as the anthropic SDK's ``Message`` accepts it (strictly)."""
    anthropic.types.Message.model_validate(message, strict=True)
    return message


def test_the_module_is_a_compiled_extension():
    assert messages_module.__file__ is not None
    assert messages_module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def request(*messages: dict, **fields: object) -> dict:
    return {"model": "claude-x", "max_tokens": 64, "messages": list(messages), **fields}


def user(content: object) -> dict:
    return {"role": "user", "content": content}


def assistant(content: object) -> dict:
    return {"role": "assistant", "content": content}


def text(t: str) -> dict:
    return {"type": "text", "text": t}


# ---------------------------------------------------------------- request: messages


def test_string_messages_keep_their_order_and_the_system_string_comes_first():
    chat = to_openai(request(user("hi"), assistant("hello"), user("bye"), system="Be brief."))
    assert chat["model"] == "claude-x"
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]


def test_system_text_blocks_are_joined_with_a_blank_line_and_cache_control_is_dropped():
    system = [text("You are a CLI."), {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}]
    chat = to_openai(request(user("x"), system=system))
    assert chat["messages"][0] == {"role": "system", "content": "You are a CLI.\n\nBe terse."}


@pytest.mark.parametrize("system", ["", []])
def test_an_empty_system_sends_no_system_message(system):
    assert to_openai(request(user("x"), system=system))["messages"] == [{"role": "user", "content": "x"}]


def test_a_system_block_that_is_not_text_is_invalid_input():
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user("x"), system=[{"type": "image", "source": {}}]))
    assert info.value.param == "system[0]"


def test_system_messages_inside_messages_stay_in_their_place():
    body = request(user("a"), {"role": "system", "content": [text("Now be formal."), text("Very.")]}, user("b"), system="S")
    assert to_openai(body)["messages"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "a"},
        {"role": "system", "content": "Now be formal.\n\nVery."},
        {"role": "user", "content": "b"},
    ]


def test_one_text_block_becomes_a_string_and_several_become_text_parts():
    chat = to_openai(request(user([text("one")]), assistant([text("a"), text("b")]), user([text("x"), text("y")])))
    assert chat["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": [text("a"), text("b")]},
        {"role": "user", "content": [text("x"), text("y")]},
    ]


def test_images_become_image_url_parts_base64_as_a_data_url():
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        text("what are these?"),
    ]
    assert to_openai(request(user(content)))["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        text("what are these?"),
    ]


def test_an_image_from_the_files_api_is_invalid_input():
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user([{"type": "image", "source": {"type": "file", "file_id": "file_1"}}])))
    assert info.value.param == "messages[0].content[0].source.type"


def test_assistant_tool_use_blocks_become_tool_calls_with_json_arguments():
    content = [
        text("Let me check."),
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris", "days": 2}},
        {"type": "tool_use", "id": "toolu_02", "name": "now", "input": {}},
    ]
    message = to_openai(request(user("weather?"), assistant(content)))["messages"][1]
    assert message["role"] == "assistant"
    assert message["content"] == "Let me check."
    assert [c["id"] for c in message["tool_calls"]] == ["toolu_01", "toolu_02"]
    assert message["tool_calls"][0]["type"] == "function"
    assert message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert orjson.loads(message["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris", "days": 2}
    assert message["tool_calls"][1]["function"] == {"name": "now", "arguments": "{}"}


def test_an_assistant_turn_of_tool_use_only_has_null_content():
    content = [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]
    message = to_openai(request(user("x"), assistant(content)))["messages"][1]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"]["arguments"] == '{"a":1}'


def test_tool_results_become_tool_messages_before_the_rest_of_their_user_turn():
    content = [
        text("and now?"),
        {"type": "tool_result", "tool_use_id": "t1", "content": "18°C"},
        {"type": "tool_result", "tool_use_id": "t2", "content": [text("line 1"), text("line 2")]},
        {"type": "tool_result", "tool_use_id": "t3"},
    ]
    assert to_openai(request(user(content)))["messages"] == [
        {"role": "tool", "tool_call_id": "t1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "t2", "content": "line 1\nline 2"},
        {"role": "tool", "tool_call_id": "t3", "content": ""},
        {"role": "user", "content": "and now?"},
    ]


def test_a_user_turn_of_tool_results_only_sends_no_user_message():
    content = [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]
    assert to_openai(request(user(content)))["messages"] == [{"role": "tool", "tool_call_id": "t1", "content": "ok"}]


def test_an_error_tool_result_keeps_its_text_unchanged():
    content = [{"type": "tool_result", "tool_use_id": "t1", "content": "file not found", "is_error": True}]
    assert to_openai(request(user(content)))["messages"][0]["content"] == "file not found"


def test_images_in_a_tool_result_move_to_the_user_message_after_the_tool_messages():
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/shot.png"}}
    content = [{"type": "tool_result", "tool_use_id": "t1", "content": [text("screenshot:"), image]}, text("look")]
    assert to_openai(request(user(content)))["messages"] == [
        {"role": "tool", "tool_call_id": "t1", "content": "screenshot:"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/shot.png"}}, text("look")]},
    ]


def test_thinking_blocks_are_dropped_and_a_turn_of_thinking_only_disappears():
    thinking = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    chat = to_openai(request(user("a"), assistant([thinking, text("b")]), user("c"), assistant([redacted]), user("d")))
    assert chat["messages"] == [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "user", "content": "d"},
    ]


def test_plain_text_documents_become_text():
    content = [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green."}},
        {"type": "document", "source": {"type": "content", "content": [text("part one"), text("part two")]}},
        text("summarise"),
    ]
    assert to_openai(request(user(content)))["messages"][0]["content"] == [
        text("The grass is green."),
        text("part one\npart two"),
        text("summarise"),
    ]


@pytest.mark.parametrize(
    "source",
    [
        {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        {"type": "url", "url": "https://example.com/a.pdf"},
        {"type": "file", "file_id": "file_1"},
    ],
)
def test_pdf_and_file_documents_are_invalid_input(source):
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user([{"type": "document", "source": source}])))
    assert info.value.param == "messages[0].content[0].source.type"
    assert "plain-text documents" in info.value.message


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (user([{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]), "messages[0].content[0].type"),
        (user([{"type": "tool_use", "id": "t", "name": "f", "input": {}}]), "messages[0].content[0].type"),
        (assistant([{"type": "tool_result", "tool_use_id": "t"}]), "messages[0].content[0].type"),
        (assistant([{"type": "image", "source": {"type": "url", "url": "u"}}]), "messages[0].content[0].type"),
        (user(["not a block"]), "messages[0].content[0]"),
        (user([{"type": "text", "text": 3}]), "messages[0].content[0].text"),
        (user([]), "messages[0].content"),
        (user(7), "messages[0].content"),
        ({"role": "tool", "content": "x"}, "messages[0].role"),
        ({"role": "system", "content": [{"type": "image", "source": {}}]}, "messages[0].content[0]"),
        (assistant([{"type": "tool_use", "id": "t", "name": "f", "input": [1]}]), "messages[0].content[0].input"),
        (user([{"type": "tool_result", "content": "no id"}]), "messages[0].content[0].tool_use_id"),
    ],
)
def test_what_chat_completions_cannot_express_is_invalid_input_naming_the_field(message, param):
    with pytest.raises(InvalidInput) as info:
        to_openai(request(message))
    assert info.value.param == param


def test_conversion_leaves_the_request_unchanged_for_an_anthropic_target_tried_next():
    body = request(
        user([text("x"), {"type": "tool_result", "tool_use_id": "t", "content": [text("r")]}]),
        assistant([{"type": "tool_use", "id": "t2", "name": "f", "input": {"a": [1]}}]),
        system=[text("s")],
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
        tool_choice={"type": "auto"},
        stream=True,
    )
    before = copy.deepcopy(body)
    to_openai(body)
    assert body == before


# ---------------------------------------------------------------- request: parameters


def test_sampling_fields_are_kept_and_stop_sequences_become_stop():
    chat = to_openai(request(user("x"), temperature=0.2, top_p=0.9, top_k=40, stop_sequences=["END", "\n\n"]))
    assert chat["max_tokens"] == 64
    assert (chat["temperature"], chat["top_p"], chat["top_k"]) == (0.2, 0.9, 40)
    assert chat["stop"] == ["END", "\n\n"]


def test_without_max_tokens_none_is_sent_and_an_empty_stop_list_sends_no_stop():
    body = request(user("x"), stop_sequences=[])
    del body["max_tokens"]
    chat = to_openai(body)
    assert "max_tokens" not in chat and "stop" not in chat


def test_metadata_user_id_becomes_user_and_other_metadata_is_dropped():
    chat = to_openai(request(user("x"), metadata={"user_id": "u-42", "other": 1}))
    assert chat["user"] == "u-42"
    assert "metadata" not in chat


def test_fields_without_a_chat_completions_counterpart_are_dropped():
    chat = to_openai(
        request(
            user("x"),
            service_tier="auto",
            context_management={"edits": []},
            cache_control={"type": "ephemeral"},
            speed="fast",
            inference_geo="us",
            output_config={"effort": "low"},
            something_new=True,
        )
    )
    assert set(chat) == {"model", "messages", "max_tokens"}  # thinking: reasoning_effort, below


@pytest.mark.parametrize(
    "fields",
    [
        {"output_config": {"effort": "high", "format": {"type": "json_schema", "schema": {"type": "object"}}}},
        {"output_format": {"type": "json_schema", "schema": {"type": "object"}}},
    ],
)
def test_a_structured_output_format_becomes_a_json_schema_response_format(fields):
    chat = to_openai(request(user("x"), **fields))
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}}
    assert "output_config" not in chat and "output_format" not in chat and "reasoning_effort" not in chat


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"output_config": {"format": {"type": "text"}}}, "output_config.format"),
        ({"output_format": {"type": "json_schema"}}, "output_format"),
        ({"output_config": "high"}, "output_config"),
    ],
)
def test_a_malformed_output_format_is_invalid_input(fields, param):
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user("x"), **fields))
    assert info.value.param == param


@pytest.mark.parametrize("name", ["mcp_servers", "container"])
def test_features_run_by_anthropic_servers_are_invalid_input(name):
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user("x"), **{name: [{"type": "url", "url": "https://mcp.example.com", "name": "m"}]}))
    assert info.value.param == name


def test_stop_sequences_must_be_strings():
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user("x"), stop_sequences=["a", 1]))
    assert info.value.param == "stop_sequences"


def test_custom_tools_become_function_tools_with_the_input_schema_as_parameters():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tools = [
        {"name": "get_weather", "description": "Weather of a city", "input_schema": schema, "cache_control": {"type": "ephemeral"}},
        {"type": "custom", "name": "now", "input_schema": {"type": "object"}, "strict": True},
        {"name": "bare"},
    ]
    assert to_openai(request(user("x"), tools=tools))["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": schema}},
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}, "strict": True}},
        {"type": "function", "function": {"name": "bare", "parameters": {"type": "object", "properties": {}}}},
    ]


@pytest.mark.parametrize("kind", ["web_search_20250305", "bash_20250124", "text_editor_20250728", "computer_20250124"])
def test_server_tools_are_invalid_input(kind):
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user("x"), tools=[{"name": "f", "input_schema": {}}, {"type": kind, "name": "x"}]))
    assert info.value.param == "tools[1].type"
    assert kind in info.value.message


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_maps_to_its_openai_counterpart(choice, expected):
    chat = to_openai(request(user("x"), tools=[{"name": "get_weather", "input_schema": {}}], tool_choice=choice))
    assert chat["tool_choice"] == expected
    assert "parallel_tool_calls" not in chat


def test_disable_parallel_tool_use_becomes_parallel_tool_calls_false():
    choice = {"type": "auto", "disable_parallel_tool_use": True}
    chat = to_openai(request(user("x"), tools=[{"name": "f", "input_schema": {}}], tool_choice=choice))
    assert chat["parallel_tool_calls"] is False


def test_tool_choice_without_tools_is_not_sent():
    # OpenAI refuses tool_choice and parallel_tool_calls without tools.
    chat = to_openai(request(user("x"), tools=[], tool_choice={"type": "none", "disable_parallel_tool_use": True}))
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(chat)


def test_an_unknown_tool_choice_is_invalid_input():
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user("x"), tools=[{"name": "f"}], tool_choice={"type": "sometimes"}))
    assert info.value.param == "tool_choice.type"


def test_stream_asks_for_usage_and_a_whole_request_does_not_stream():
    streamed = to_openai(request(user("x"), stream=True))
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}
    whole = to_openai(request(user("x"), stream=False))
    assert "stream" not in whole and "stream_options" not in whole


# ---------------------------------------------------------------- request: property


_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=8).map(lambda s: "toolu_" + s)
_texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_image = st.builds(
    lambda url, b64: (
        {"type": "image", "source": {"type": "url", "url": url}}
        if b64 is None
        else {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64}}
    ),
    st.text("abc/:.", min_size=1, max_size=8),
    st.one_of(st.none(), st.text("ABCabc012+/=", min_size=1, max_size=8)),
)
_tool_result = st.builds(
    lambda i, c: {"type": "tool_result", "tool_use_id": i, "content": c},
    _ids,
    st.one_of(_texts, st.lists(_texts.map(text), max_size=3), st.lists(st.one_of(_texts.map(text), _image), max_size=3)),
)
_user_content = st.one_of(_texts, st.lists(st.one_of(_texts.map(text), _image, _tool_result), min_size=1, max_size=5))
_tool_use = st.builds(
    lambda i, n, a: {"type": "tool_use", "id": i, "name": n, "input": a},
    _ids,
    st.sampled_from(["get_weather", "read_file", "now"]),
    # integers as orjson parses them (larger ones become floats)
    st.dictionaries(st.sampled_from(["city", "path", "n"]), st.one_of(_texts, st.integers(-(2**63), 2**64 - 1)), max_size=2),
)
_thinking = st.just({"type": "thinking", "thinking": "…", "signature": "sig"})
_assistant_content = st.one_of(_texts, st.lists(st.one_of(_texts.map(text), _tool_use, _thinking), min_size=1, max_size=4))


@st.composite
def conversations(draw: st.DrawFn) -> dict:
    turns = []
    for i in range(draw(st.integers(1, 6))):
        turns.append(user(draw(_user_content)) if i % 2 == 0 else assistant(draw(_assistant_content)))
        if draw(st.integers(0, 5)) == 0:
            system = draw(st.one_of(_texts, st.lists(_texts.map(text), min_size=1, max_size=2)))
            turns.append({"role": "system", "content": system})
    body = request(*turns)
    if draw(st.booleans()):
        body["system"] = draw(st.one_of(_texts, st.lists(_texts.map(text), min_size=1, max_size=3)))
    return body


def _url(image: dict) -> str:
    source = image["source"]
    return source["url"] if source["type"] == "url" else f"data:{source['media_type']};base64,{source['data']}"


def _expected(body: dict) -> list[tuple]:
    """What each Anthropic turn means, as (role, kind, value) items, in conversation order."""
    items: list[tuple] = []
    system = body.get("system")
    if system:
        items.append(("system", "text", system if isinstance(system, str) else "\n\n".join(b["text"] for b in system)))
    for message in body["messages"]:
        role, content = message["role"], message["content"]
        if isinstance(content, str):
            items.append((role, "text", content))
            continue
        if role == "system":
            items.append(("system", "text", "\n\n".join(b["text"] for b in content)))
        elif role == "user":
            moved = []
            for block in content:
                if block["type"] == "tool_result":
                    c = block["content"]
                    texts = c if isinstance(c, str) else "\n".join(p["text"] for p in c if p["type"] == "text")
                    items.append(("tool", block["tool_use_id"], texts))
                    if not isinstance(c, str):
                        moved += [("user", "image", _url(p)) for p in c if p["type"] == "image"]
            items += moved
            for block in content:
                if block["type"] == "text":
                    items.append(("user", "text", block["text"]))
                elif block["type"] == "image":
                    items.append(("user", "image", _url(block)))
        else:
            for block in content:
                if block["type"] == "text":
                    items.append(("assistant", "text", block["text"]))
            for block in content:
                if block["type"] == "tool_use":
                    items.append(("assistant", "call", block["id"], block["name"], block["input"]))
    return items


def _flatten(chat: dict) -> list[tuple]:
    items: list[tuple] = []
    for message in chat["messages"]:
        role, content = message["role"], message.get("content")
        if role == "tool":
            items.append(("tool", message["tool_call_id"], content))
            continue
        if isinstance(content, str):
            items.append((role, "text", content))
        elif isinstance(content, list):
            for part in content:
                if part["type"] == "text":
                    items.append((role, "text", part["text"]))
                else:
                    items.append((role, "image", part["image_url"]["url"]))
        for call in message.get("tool_calls", ()):
            fn = call["function"]
            items.append((role, "call", call["id"], fn["name"], orjson.loads(fn["arguments"])))
    return items


@settings(max_examples=300, deadline=None)
@given(conversations())
def test_a_conversation_keeps_every_content_its_order_and_its_tool_ids(body):
    chat = to_openai(body)
    assert _flatten(chat) == _expected(body)
    # Tool results sit before the rest of their turn, and no message is left empty.
    for message in chat["messages"]:
        assert message.get("content") not in ("", [], None) or message["role"] == "tool" or message.get("tool_calls")


# ---------------------------------------------------------------- answer


def message_of(answer: dict, id: str, model: str, stop_sequences: list[str] | None = None) -> dict:
    """What gw makes of a whole chat answer for a Messages client: ``read_answer`` into ``MessageAnswer``."""
    encoder = MessageAnswer(id, model, stop_sequences)
    read_answer(answer, encoder)
    return encoder.answer()


def messages_stream(id: str, model: str, stop_sequences: list[str] | None = None) -> Converter:
    """What gw runs for a Messages client on a chat backend: ``ChatDecoder`` driving ``MessagesEvents``."""
    encoder = MessagesEvents(id, model, stop_sequences)
    return Converter(ChatDecoder(encoder), encoder)


def completion(message: dict, finish: str = "stop", usage: dict | None = None, **choice: object) -> dict:
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "upstream-model",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish, **choice}],
    }
    if usage is not None:
        answer["usage"] = usage
    return answer


def test_a_text_answer_becomes_a_message_with_the_clients_model_name():
    answer = completion({"content": "Hello!"}, usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})
    assert message_of(answer, "msg_1", "claude-x") == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 3},
    }


def test_cached_prompt_tokens_are_cache_reads_not_input_tokens():
    usage = {"prompt_tokens": 130, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 100}}
    message = message_of(completion({"content": "x"}, usage=usage), "m", "c")
    assert message["usage"] == {
        "input_tokens": 30, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 5,
    }  # fmt: skip


def test_an_answer_without_usage_counts_zero():
    usage = message_of(completion({"content": "x"}), "m", "c")["usage"]
    assert usage == {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}


@pytest.mark.parametrize(
    ("finish", "reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("function_call", "tool_use"),
     ("content_filter", "refusal"), ("eos", "end_turn"), (None, "end_turn")],
)  # fmt: skip
def test_finish_reasons_map_to_stop_reasons(finish, reason):
    assert message_of(completion({"content": "x"}, finish), "m", "c")["stop_reason"] == reason


def test_a_stop_string_reported_by_vllm_is_the_stop_sequence():
    answer = completion({"content": "x"}, "stop", stop_reason="END")
    message = message_of(answer, "m", "c", ["END"])
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")
    other = message_of(answer, "m", "c", ["STOP"])
    assert (other["stop_reason"], other["stop_sequence"]) == ("end_turn", None)


def test_tool_calls_become_tool_use_blocks_after_the_text():
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
    ]
    message = message_of(completion({"content": "Checking.", "tool_calls": calls}, "tool_calls"), "m", "c")
    assert message["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"


def test_tool_calls_finished_with_stop_are_still_tool_use_and_null_content_makes_no_text_block():
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    message = message_of(completion({"content": None, "tool_calls": calls}, "stop"), "m", "c")
    assert [b["type"] for b in message["content"]] == ["tool_use"]
    assert message["stop_reason"] == "tool_use"


def test_a_tool_call_without_an_id_gets_one():
    calls = [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]
    block = message_of(completion({"tool_calls": calls}, "tool_calls"), "m", "c")["content"][0]
    assert re.fullmatch(r"call_[0-9a-f]{24}", block["id"])  # rules.new_id, as for every backend


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"'])
def test_tool_arguments_that_are_not_a_json_object_are_an_invalid_answer(arguments):
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]
    with pytest.raises(InvalidAnswer):
        message_of(completion({"tool_calls": calls}, "tool_calls"), "m", "c")


@pytest.mark.parametrize(
    "answer", [{"choices": []}, {}, {"choices": [{"finish_reason": "stop"}]}, {"choices": ["x"]}]
)
def test_an_answer_without_a_readable_choice_is_invalid(answer):
    with pytest.raises(InvalidAnswer):
        message_of(answer, "m", "c")


def test_a_refusal_without_content_is_the_text():
    message = message_of(completion({"content": None, "refusal": "I can't."}, "content_filter"), "m", "c")
    assert message["content"] == [{"type": "text", "text": "I can't."}]
    assert message["stop_reason"] == "refusal"


def test_content_parts_in_an_answer_are_joined():
    answer = completion({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
    assert message_of(answer, "m", "c")["content"] == [{"type": "text", "text": "ab"}]


def test_message_ids_are_fresh_and_error_events_are_anthropic_sse():
    first, second = message_id(), message_id()
    assert re.fullmatch(r"msg_[0-9a-f]{24}", first) and first != second
    body = b'{"type":"error","error":{"type":"api_error","message":"reset"}}'
    assert error_event(body) == b"event: error\ndata: " + body + b"\n\n"


# ---------------------------------------------------------------- stream


def chunk(delta: dict, finish: str | None = None, **extra: object) -> bytes:
    event = chunk_event("chatcmpl-1", 1, "upstream-model", delta, finish)
    if not extra:
        return event
    obj = orjson.loads(event[6:])
    obj["choices"][0].update(extra)
    return sse_data(orjson.dumps(obj))


def usage(prompt: int, completion: int, cached: int | None = None) -> bytes:
    u: dict = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if cached is not None:
        u["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage_event("chatcmpl-1", 1, "upstream-model", u)


def tool_start(index: int, call_id: str, name: str) -> dict:
    return {"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}


def tool_args(index: int, arguments: str) -> dict:
    return {"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}


TEXT_STREAM = (
    chunk({"role": "assistant", "content": ""})
    + chunk({"content": "Héllo"})
    + chunk({"content": " wörld 🎉"})
    + chunk({}, "stop")
    + usage(7, 3)
    + DONE_EVENT
)

TOOL_STREAM = (
    chunk({"role": "assistant", "content": ""})
    + chunk({"content": "Let me check both."})
    + chunk(tool_start(0, "call_a", "get_weather"))
    + chunk(tool_args(0, '{"city": '))
    + chunk(tool_args(0, '"Paris"}'))
    + chunk(tool_start(1, "call_b", "get_time"))
    + chunk(tool_args(1, '{"tz": "CET"}'))
    + chunk({}, "tool_calls")
    + usage(20, 9, cached=8)
    + DONE_EVENT
)


def events(raw: bytes) -> list[tuple[str, dict]]:
    """(event name, data) of each Anthropic SSE event, checking the exact framing."""
    out = []
    for block in raw.decode().split("\n\n")[:-1]:
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        data = orjson.loads(data_line[6:])
        assert data["type"] == name_line[7:]
        STREAM_EVENT.validate_python(data, strict=True)
        out.append((name_line[7:], data))
    assert raw.endswith(b"\n\n")
    return out


def accumulate(evs: list[tuple[str, dict]]) -> dict:
    """The final message from a stream, by Anthropic's accumulation rules (strictly)."""
    assert evs[0][0] == "message_start" and evs[-1][0] == "message_stop"
    message = evs[0][1]["message"]
    assert message["content"] == []
    open_blocks: set[int] = set()
    json_bufs: dict[int, str] = {}
    for name, data in evs[1:-1]:
        if name == "content_block_start":
            assert data["index"] == len(message["content"])
            message["content"].append(dict(data["content_block"]))
            open_blocks.add(data["index"])
        elif name == "content_block_delta":
            assert data["index"] in open_blocks
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                assert block["type"] == "thinking"
                block["thinking"] += delta["thinking"]
            else:
                assert delta["type"] == "input_json_delta"
                json_bufs[data["index"]] = json_bufs.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop":
            open_blocks.remove(data["index"])
        else:
            assert name == "message_delta"
            message.update(data["delta"])
            message["usage"].update(data["usage"])
    assert not open_blocks
    for index, buf in json_bufs.items():
        message["content"][index]["input"] = orjson.loads(buf)
    return valid_message(message)


def convert(raw: bytes, pieces: list[bytes] | None = None, stops: list[str] | None = None) -> tuple[bytes, Converter]:
    stream = messages_stream("msg_1", "claude-x", stops)
    out = b"".join(stream.feed(p) for p in (pieces if pieces is not None else [raw]))
    return out + stream.close(), stream


def test_a_text_stream_is_the_exact_anthropic_event_sequence():
    out, stream = convert(TEXT_STREAM)
    assert stream.done and stream.error is None and stream.invalid is None
    assert events(out) == [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Héllo"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " wörld 🎉"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"input_tokens": 7, "cache_creation_input_tokens": 0,
                                     "cache_read_input_tokens": 0, "output_tokens": 3}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    assert stream.usage == {  # rules.make_usage: one OpenAI usage shape for every backend
        "prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "prompt_tokens_details": {"cached_tokens": 0},
    }  # fmt: skip


def test_tool_calls_stream_as_distinct_tool_use_blocks_with_their_json_fragments():
    out, stream = convert(TOOL_STREAM)
    assert stream.done
    evs = events(out)
    assert [name for name, _ in evs] == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert evs[4][1]["content_block"] == {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {}}
    assert evs[5][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"city": '}
    assert evs[8][1] == {"type": "content_block_start", "index": 2,
                         "content_block": {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}}}  # fmt: skip
    message = accumulate(evs)
    assert message["content"] == [
        {"type": "text", "text": "Let me check both."},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {"tz": "CET"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 8, "output_tokens": 9,
    }  # fmt: skip
    assert stream.usage == {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29,
                            "prompt_tokens_details": {"cached_tokens": 8}}  # fmt: skip


def test_one_byte_reads_give_the_same_events():
    for raw in (TEXT_STREAM, TOOL_STREAM):
        whole, _ = convert(raw)
        split, stream = convert(raw, [raw[i : i + 1] for i in range(len(raw))])
        assert split == whole and stream.done


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_reads_cut_anywhere_even_inside_a_utf8_character_give_the_same_events(data):
    raw = data.draw(st.sampled_from([TEXT_STREAM, TOOL_STREAM]))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=40)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    whole, _ = convert(raw)
    split, stream = convert(raw, pieces)
    assert split == whole and stream.done


def test_a_cut_inside_a_utf8_character_is_held_until_the_character_is_whole():
    raw = TEXT_STREAM
    cut = raw.index("é".encode()) + 1  # between the two bytes of é
    stream = messages_stream("msg_1", "claude-x")
    first = stream.feed(raw[:cut])
    assert b"H\xc3" not in first and "Héllo".encode() not in first
    assert "Héllo".encode() in stream.feed(raw[cut:])


def test_message_start_waits_for_a_whole_first_chunk():
    stream = messages_stream("msg_1", "claude-x")
    assert stream.feed(TEXT_STREAM[:10]) == b""
    assert stream.feed(TEXT_STREAM[10:]).startswith(b"event: message_start\n")


def test_first_chunk_usage_gives_message_start_its_input_tokens():
    first = chunk_event("c", 1, "m", {"role": "assistant", "content": ""})
    obj = orjson.loads(first[6:])
    obj["usage"] = {"prompt_tokens": 11, "completion_tokens": 0, "total_tokens": 11}
    out, _ = convert(sse_data(orjson.dumps(obj)) + chunk({"content": "x"}) + chunk({}, "stop") + DONE_EVENT)
    assert events(out)[0][1]["message"]["usage"] == {"input_tokens": 11, "output_tokens": 0}


def test_a_stream_without_usage_reports_output_tokens_zero():
    out, stream = convert(chunk({"content": "x"}) + chunk({}, "length") + DONE_EVENT)
    assert stream.done
    assert events(out)[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"output_tokens": 0},
    }


def test_text_after_a_tool_call_opens_a_new_text_block():
    raw = (chunk(tool_start(0, "c1", "f")) + chunk(tool_args(0, "{}")) + chunk({"content": "done"})
           + chunk({}, "tool_calls") + DONE_EVENT)  # fmt: skip
    message = accumulate(events(convert(raw)[0]))
    assert message["content"] == [
        {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
        {"type": "text", "text": "done"},
    ]


def test_tool_calls_without_an_index_are_told_apart_by_their_id():
    # Some servers send each call whole, without `index`.
    calls = [{"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
             {"id": "b", "type": "function", "function": {"name": "g", "arguments": '{"y":2}'}}]  # fmt: skip
    raw = chunk({"tool_calls": calls}) + chunk({}, "stop") + DONE_EVENT
    message = accumulate(events(convert(raw)[0]))
    assert [(b["id"], b["input"]) for b in message["content"]] == [("a", {"x": 1}), ("b", {"y": 2})]
    assert message["stop_reason"] == "tool_use"


def test_a_stop_string_reported_by_vllm_in_a_stream_is_the_stop_sequence():
    raw = chunk({"content": "x"}) + chunk({}, "stop", stop_reason="###") + DONE_EVENT
    delta = events(convert(raw, stops=["###"])[0])[-2][1]["delta"]
    assert delta == {"stop_reason": "stop_sequence", "stop_sequence": "###"}


def test_a_refusal_delta_is_text_and_finishes_as_refusal():
    raw = chunk({"refusal": "I can't help."}) + chunk({}, "content_filter") + DONE_EVENT
    message = accumulate(events(convert(raw)[0]))
    assert message["content"] == [{"type": "text", "text": "I can't help."}]
    assert message["stop_reason"] == "refusal"


def test_an_error_event_mid_stream_stops_the_conversion_after_what_came_before():
    raw = chunk({"content": "partial"}) + sse_data(b'{"error":{"message":"overloaded","type":"server_error"}}')
    stream = messages_stream("msg_1", "claude-x")
    out = stream.feed(raw)
    assert stream.error == {"message": "overloaded", "type": "server_error"}
    assert [name for name, _ in events(out)] == ["message_start", "content_block_start", "content_block_delta"]
    assert stream.feed(chunk({}, "stop") + DONE_EVENT) == b""
    assert not stream.done


def test_an_error_before_any_chunk_produces_nothing():
    stream = messages_stream("msg_1", "claude-x")
    assert stream.feed(sse_data(b'{"error":"upstream said no"}')) == b""
    assert stream.error == "upstream said no"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (chunk({"content": "x"}) + DONE_EVENT, "without a finish_reason"),
        (chunk({"content": "x"}) + b"data: {not json\n\n", "not valid JSON"),
        (chunk({"content": "x"}) + b"data: [1, 2]\n\n", "not a JSON object"),
        (chunk(tool_start(0, "c", "f")) + chunk(tool_args(0, '{"a": ')) + chunk({}, "tool_calls") + DONE_EVENT,
         "not a JSON object"),
        (chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"arguments": "{}"}}]}), "without a function name"),
    ],
)  # fmt: skip
def test_a_stream_that_cannot_be_converted_is_invalid_and_never_finishes(raw, why):
    out, stream = convert(raw)
    assert stream.invalid is not None and why in stream.invalid
    assert not stream.done
    assert b"message_delta" not in out and b"message_stop" not in out


def test_a_finished_stream_without_done_is_finished_at_close():
    stream = messages_stream("msg_1", "claude-x")
    out = stream.feed(chunk({"content": "x"}) + chunk({}, "stop") + usage(1, 1))
    assert not stream.done and b"message_delta" not in out
    end = stream.close()
    assert stream.done
    assert [name for name, _ in events(end)] == ["message_delta", "message_stop"]


def test_a_stream_cut_inside_an_event_is_invalid_at_close():
    stream = messages_stream("msg_1", "claude-x")
    stream.feed(chunk({"content": "x"}) + chunk({}, "stop")[:20])
    assert stream.close() == b""
    assert stream.invalid is not None and not stream.done


def test_an_unfinished_stream_does_not_finish_at_close():
    stream = messages_stream("msg_1", "claude-x")
    stream.feed(chunk({"content": "x"}))
    assert stream.close() == b""
    assert not stream.done and stream.invalid is None


def test_only_the_first_choice_is_converted_and_nothing_follows_message_stop():
    other = orjson.loads(chunk({"content": "other"})[6:])
    other["choices"][0]["index"] = 1
    raw = sse_data(orjson.dumps(other)) + chunk({"content": "mine"}) + chunk({}, "stop") + DONE_EVENT
    stream = messages_stream("msg_1", "claude-x")
    message = accumulate(events(stream.feed(raw)))
    assert message["content"] == [{"type": "text", "text": "mine"}]
    assert stream.feed(chunk({"content": "late"})) == b""


def test_crlf_comments_and_multiline_data_are_read_as_sse():
    raw = b": keep-alive\r\n" + chunk({"content": "a"}).replace(b"\n", b"\r\n") + b'data: {"choices":[{"index":0,\ndata: "delta":{},"finish_reason":"stop"}]}\n\n' + DONE_EVENT
    message = accumulate(events(convert(raw)[0]))
    assert message["content"] == [{"type": "text", "text": "a"}]
    assert message["stop_reason"] == "end_turn"


# ---------------------------------------------------------------- shared rules on the request side


def test_a_stop_sequences_string_is_one_stop_sequence_and_other_types_are_invalid():
    assert to_openai(request(user("x"), stop_sequences="END"))["stop"] == ["END"]
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user("x"), stop_sequences=5))
    assert info.value.param == "stop_sequences"


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "64"])
def test_max_tokens_for_a_chat_backend_must_be_a_positive_integer(value):
    with pytest.raises(InvalidInput) as info:
        to_openai(request(user("x"), max_tokens=value))
    assert info.value.param == "max_tokens"


def test_a_tool_use_input_sent_as_json_text_is_read_by_the_tool_argument_rule():
    def arguments(value: object) -> str:
        content = [{"type": "tool_use", "id": "t", "name": "f", "input": value}]
        return to_openai(request(user("x"), assistant(content)))["messages"][1]["tool_calls"][0]["function"]["arguments"]

    assert arguments('{"a": 1}') == '{"a":1}'
    assert arguments("null") == arguments("") == arguments(None) == "{}"
    for bad in ("[1]", "{not json"):
        with pytest.raises(InvalidInput) as info:
            arguments(bad)
        assert info.value.param == "messages[1].content[0].input"


# ---------------------------------------------------------------- encoders


def test_reasoning_streams_as_a_thinking_block_before_the_text():
    raw = (chunk({"role": "assistant", "content": ""}) + chunk({"reasoning_content": "Let me"})
           + chunk({"reasoning": " think."}) + chunk({"content": "Hi"}) + chunk({}, "stop") + DONE_EVENT)  # fmt: skip
    out, stream = convert(raw)
    assert stream.done
    evs = events(out)
    assert evs[1:6] == [
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Let me"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": " think."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    ]  # fmt: skip
    assert accumulate(evs)["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": ""},
        {"type": "text", "text": "Hi"},
    ]


def test_reasoning_after_text_opens_a_new_thinking_block():
    raw = chunk({"content": "a"}) + chunk({"reasoning_content": "r"}) + chunk({"content": "b"}) + chunk({}, "stop") + DONE_EVENT
    assert [b["type"] for b in accumulate(events(convert(raw)[0]))["content"]] == ["text", "thinking", "text"]


def test_an_answers_reasoning_is_a_thinking_block_before_the_text():
    answer = completion({"content": "Hi", "reasoning_content": "hmm"})
    message = valid_message(message_of(answer, "m", "c"))
    assert message["content"] == [{"type": "thinking", "thinking": "hmm", "signature": ""}, {"type": "text", "text": "Hi"}]


def test_nothing_is_written_before_the_first_content_and_message_start_has_the_input_so_far():
    encoder = MessagesEvents("msg_1", "claude-x", None)
    encoder.start("chatcmpl-1")
    encoder.usage(40, 0, 2, 0, 0)
    assert encoder.take() == b"" and encoder.started
    encoder.reasoning(0, "r")
    start = events(encoder.take())[0][1]
    assert start["message"]["usage"] == {"input_tokens": 40, "output_tokens": 0}


def test_an_error_after_the_role_chunk_leaves_nothing_written():
    stream = messages_stream("msg_1", "claude-x")
    out = stream.feed(chunk({"role": "assistant", "content": ""}) + sse_data(b'{"error":{"message":"overloaded"}}'))
    assert out == b"" and stream.error == {"message": "overloaded"}


def test_a_finish_without_content_is_a_message_without_blocks():
    out, stream = convert(chunk({"role": "assistant", "content": ""}) + chunk({}, "length") + DONE_EVENT)
    assert stream.done
    evs = events(out)
    assert [name for name, _ in evs] == ["message_start", "message_delta", "message_stop"]
    assert accumulate(evs)["stop_reason"] == "max_tokens"


def test_events_of_other_choices_are_not_written():
    encoder = MessagesEvents("msg_1", "claude-x", None)
    encoder.start(None)
    encoder.text(1, "other")
    encoder.tool_start(1, 0, "c", "f", None)
    encoder.tool_args(1, 0, "{}")
    encoder.finish(1, "stop", None)
    assert encoder.take() == b"" and not encoder.finished
    encoder.text(0, "mine")
    encoder.finish(0, "stop", None)
    encoder.end()
    assert accumulate(events(encoder.take()))["content"] == [{"type": "text", "text": "mine"}]


def test_a_message_answer_is_read_from_any_decoders_events():
    encoder = MessageAnswer("msg_1", "claude-x", ["END"])
    encoder.start("x")
    encoder.reasoning(0, "a")
    encoder.reasoning(0, "b")
    encoder.text(0, "t")
    encoder.tool_start(0, 0, "call_1", "f", {"extra_content": {}})
    encoder.tool_args(0, 0, '{"k":')
    encoder.tool_args(0, 0, "1}")
    encoder.text(0, "u")
    encoder.usage(10, 5, 3, 2, 1)
    encoder.finish(0, "stop", "END")
    encoder.end()
    assert valid_message(encoder.answer()) == {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "thinking", "thinking": "ab", "signature": ""}, {"type": "text", "text": "t"},
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {"k": 1}}, {"type": "text", "text": "u"}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3, "output_tokens": 5},
    }  # fmt: skip


def test_a_matched_stop_sequence_counts_only_when_the_request_named_it():
    for stops, expected in ((["END"], ("stop_sequence", "END")), (["X"], ("end_turn", None)), (None, ("end_turn", None))):
        encoder = MessageAnswer("m", "c", stops)
        encoder.finish(0, "stop", "END")
        answer = encoder.answer()
        assert (answer["stop_reason"], answer["stop_sequence"]) == expected


def test_null_tool_arguments_are_empty_input_in_an_answer_but_invalid_in_a_stream():
    # A whole answer is rewritten (rules.tool_arguments); a stream's fragments already went out as they came.
    calls = [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "null"}}]
    message = message_of(completion({"tool_calls": calls}, "tool_calls"), "m", "c")
    assert message["content"][0]["input"] == {}
    out, stream = convert(chunk(tool_start(0, "c", "f")) + chunk(tool_args(0, "null")) + chunk({}, "tool_calls") + DONE_EVENT)
    assert stream.invalid == "tool call arguments are not a JSON object" and not stream.done
    assert b"message_stop" not in out


def _summary(message: dict) -> dict:
    """What a message says, whatever its block runs: for comparing a stream with its whole answer."""
    content = message["content"]
    return {
        "thinking": "".join(b["thinking"] for b in content if b["type"] == "thinking"),
        "text": "".join(b["text"] for b in content if b["type"] == "text"),
        "tools": [(b["id"], b["name"], b["input"]) for b in content if b["type"] == "tool_use"],
        "stop": (message["stop_reason"], message["stop_sequence"]),
        "usage": {k: message["usage"].get(k, 0) for k in
                  ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")},
    }  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(chat_streams())
def test_any_chat_stream_is_valid_anthropic_events_that_accumulate_to_the_whole_answer(stream: ChatStream):
    out, converter = convert(stream.raw)
    assert converter.done and converter.invalid is None
    streamed = accumulate(events(out))  # each event and the message validated by the SDK's types
    whole = valid_message(message_of(stream.answer, "msg_1", "claude-x"))
    assert _summary(streamed) == _summary(whole)


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 10000}, "medium"),
        ({"type": "enabled", "budget_tokens": 31999}, "high"),
        ({"type": "adaptive", "display": "omitted"}, "medium"),
        ({"type": "disabled"}, "none"),
    ],
)
def test_thinking_becomes_reasoning_effort_for_other_backends(thinking: dict, effort: str) -> None:
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], "thinking": thinking}
    assert to_openai(body)["reasoning_effort"] == effort


@pytest.mark.parametrize(("effort", "expected"), [("low", "low"), ("high", "high"), ("max", "high"), (None, "medium")])
def test_adaptive_thinking_takes_output_configs_effort(effort: str | None, expected: str) -> None:
    # what Claude Code sends: thinking adaptive, output_config.effort
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    body |= {"thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": effort}}
    assert to_openai(body)["reasoning_effort"] == expected


def test_a_thinking_of_another_shape_is_invalid_input() -> None:
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(InvalidInput) as exc:
        to_openai({**body, "thinking": {"type": "sometimes"}})
    assert exc.value.param == "thinking.type"
