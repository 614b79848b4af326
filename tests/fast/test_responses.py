"""/v1/responses on chat backends: gw._fast.responses, both directions, stream and not.

Every Response and every stream event is validated by the openai SDK's own
types, and every stream is read back by the SDK's own accumulator.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gw._fast.chat import DONE_EVENT
from gw._fast.events import Converter
from gw._fast.openai import ChatDecoder, read_answer
from gw._fast.responses import (
    ResponseAnswer,
    ResponseEvents,
    response_failed,
    response_id,
    to_chat,
)
from gw._fast.rules import InvalidInput
from tests.fast.wire import chunk_event, usage_event
from tests.strategies import ChatStream, chat_streams

STREAM_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


# ---------------------------------------------------------------- request

APPLY_PATCH_GRAMMAR = 'start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF\n'
SHELL = {
    "type": "function",
    "name": "shell",
    "description": "Runs a shell command and returns its output.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"command": {"type": "array", "items": {"type": "string"}}, "workdir": {"type": "string"}},
        "required": ["command"],
        "additionalProperties": False,
    },
}
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Use the `apply_patch` tool to edit files.",
    "format": {"type": "grammar", "syntax": "lark", "definition": APPLY_PATCH_GRAMMAR},
}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"


def codex_request() -> dict[str, Any]:
    """What the Codex CLI sends on its second turn (store: false, the whole history in input)."""
    return {
        "model": "gpt-5-codex",
        "instructions": "You are Codex, a coding agent.",
        "input": [
            {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": "<permissions>workspace-write</permissions>"}]},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "<environment_context>cwd=/repo</environment_context>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "add a.txt, list files"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Plan."}],
             "content": None, "encrypted_content": "gAAAAB..."},
            {"type": "message", "role": "assistant", "id": "msg_1",
             "content": [{"type": "output_text", "text": "Adding it.", "annotations": []}]},
            {"type": "custom_tool_call", "status": "completed", "call_id": "call_p", "name": "apply_patch",
             "input": PATCH},
            {"type": "function_call", "name": "shell", "arguments": '{"command":["ls"]}', "call_id": "call_s"},
            {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Success. Updated: A a.txt"},
            {"type": "function_call_output", "call_id": "call_s", "output": "a.txt\n"},
        ],
        "tools": [SHELL, APPLY_PATCH],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199a1b2-c3d4",
        "text": {"verbosity": "low"},
    }  # fmt: skip


def test_a_codex_request_becomes_a_chat_request():
    chat = to_chat(codex_request())
    assert chat["messages"] == [
        {"role": "system", "content": "You are Codex, a coding agent."},
        {"role": "system", "content": "<permissions>workspace-write</permissions>"},
        {"role": "user", "content": "<environment_context>cwd=/repo</environment_context>"},
        {"role": "user", "content": "add a.txt, list files"},
        # the reasoning item is dropped; the calls join the assistant's text: one turn
        {"role": "assistant", "content": "Adding it.", "tool_calls": [
            {"id": "call_p", "type": "function",
             "function": {"name": "apply_patch", "arguments": orjson.dumps({"input": PATCH}).decode()}},
            {"id": "call_s", "type": "function", "function": {"name": "shell", "arguments": '{"command":["ls"]}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_p", "content": "Success. Updated: A a.txt"},
        {"role": "tool", "tool_call_id": "call_s", "content": "a.txt\n"},
    ]  # fmt: skip
    shell, patch = chat["tools"]
    assert shell == {"type": "function", "function": {
        "name": "shell", "description": SHELL["description"], "parameters": SHELL["parameters"], "strict": False}}  # fmt: skip
    assert patch["type"] == "function"
    assert patch["function"]["name"] == "apply_patch"
    assert patch["function"]["parameters"] == {
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The tool's freeform input."}},
        "required": ["input"],
        "additionalProperties": False,
    }
    description = patch["function"]["description"]
    assert description.startswith("Use the `apply_patch` tool to edit files.")
    assert "lark grammar:\n" + APPLY_PATCH_GRAMMAR in description
    assert "string parameter `input`" in description
    assert chat["tool_choice"] == "auto"
    assert chat["parallel_tool_calls"] is False
    assert chat["reasoning_effort"] == "medium"
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    for dropped in ("store", "include", "prompt_cache_key", "text", "reasoning", "instructions", "input"):
        assert dropped not in chat
    assert chat["model"] == "gpt-5-codex"


def test_the_request_is_not_changed():
    body = codex_request()
    before = copy.deepcopy(body)
    to_chat(body)
    assert body == before


def test_a_string_input_is_one_user_message_and_sampling_fields_are_kept():
    chat = to_chat({"model": "m", "input": "Hi", "max_output_tokens": 50, "temperature": 0.2, "top_p": 0.9,
                    "user": "u1", "metadata": {"k": "v"}, "truncation": "auto", "service_tier": "flex"})
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 50,
                    "temperature": 0.2, "top_p": 0.9, "user": "u1"}  # fmt: skip


def test_the_safety_identifier_is_the_user_when_there_is_no_user():
    assert to_chat({"model": "m", "input": "x", "safety_identifier": "s1"})["user"] == "s1"


def test_short_form_messages_parts_images_and_files():
    chat = to_chat({"model": "m", "input": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "low"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
            {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        ]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "A cat."},
                                          {"type": "refusal", "refusal": "No more."}]},
    ]})  # fmt: skip
    assert chat["messages"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
        ]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}, {"type": "refusal", "refusal": "No more."}]},
    ]  # fmt: skip


def test_consecutive_calls_are_one_assistant_message_and_list_outputs_are_joined_text():
    chat = to_chat({"model": "m", "input": [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": {"city": "Rome"}},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "18°C"},
                                                                     {"type": "input_text", "text": "sunny"}]},
        {"type": "function_call_output", "call_id": "c2", "output": "20°C"},
    ]})  # fmt: skip
    assert chat["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"city":"Paris"}'}},
            {"id": "c2", "type": "function", "function": {"name": "w", "arguments": '{"city":"Rome"}'}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "18°C\nsunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "20°C"},
    ]  # fmt: skip


def test_images_of_tool_outputs_follow_the_tool_messages_as_a_user_message():
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
    chat = to_chat({"model": "m", "input": [
        {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": '{"path":"a.png"}'},
        {"type": "function_call", "call_id": "c2", "name": "view_image", "arguments": '{"path":"b.png"}'},
        {"type": "function_call_output", "call_id": "c1", "output": [image]},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "b:"}, image]},
        {"role": "user", "content": "compare them"},
    ]})  # fmt: skip
    url = {"type": "image_url", "image_url": {"url": image["image_url"]}}
    assert chat["messages"][1:] == [
        {"role": "tool", "tool_call_id": "c1", "content": ""},
        {"role": "tool", "tool_call_id": "c2", "content": "b:"},
        {"role": "user", "content": [url, url]},
        {"role": "user", "content": "compare them"},
    ]
    last = to_chat({"model": "m", "input": [
        {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [image]},
    ]})["messages"]  # fmt: skip
    assert last[-1] == {"role": "user", "content": [url]}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "shell"}, {"type": "function", "function": {"name": "shell"}}),
        ({"type": "custom", "name": "apply_patch"}, {"type": "function", "function": {"name": "apply_patch"}}),
    ],
)
def test_tool_choices_become_chat_tool_choices(choice, expected):
    assert to_chat({"model": "m", "input": "x", "tools": [SHELL], "tool_choice": choice})["tool_choice"] == expected


def test_tool_choice_without_tools_is_not_sent():
    assert "tool_choice" not in to_chat({"model": "m", "input": "x", "tool_choice": "none"})


def test_a_function_tool_without_parameters_takes_an_empty_object_and_strict_only_when_given():
    chat = to_chat({"model": "m", "input": "x", "tools": [{"type": "function", "name": "now"}]})
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "now", "parameters": {"type": "object", "properties": {}}}}]  # fmt: skip


def test_a_custom_tool_with_a_text_format_has_only_its_description_and_the_note():
    chat = to_chat({"model": "m", "input": "x", "tools": [{"type": "custom", "name": "sql", "format": {"type": "text"}}]})
    assert chat["tools"][0]["function"]["description"] == (
        "Put the tool's freeform input, exactly as it would be sent, in the string parameter `input`."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({"format": {"type": "json_schema", "name": "person", "schema": {"type": "object"}, "strict": True}},
         {"type": "json_schema", "json_schema": {"name": "person", "schema": {"type": "object"}, "strict": True}}),
        ({"format": {"type": "json_object"}}, {"type": "json_object"}),
        ({"format": {"type": "text"}}, None),
        ({"verbosity": "high"}, None),
    ],
)  # fmt: skip
def test_the_text_format_becomes_the_response_format(text, expected):
    assert to_chat({"model": "m", "input": "x", "text": text}).get("response_format") == expected


def test_reasoning_without_effort_and_a_whole_request_send_neither():
    chat = to_chat({"model": "m", "input": "x", "reasoning": {"summary": "auto"}, "stream": False})
    assert "reasoning_effort" not in chat and "stream" not in chat and "stream_options" not in chat


def invalid(body: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        to_chat({"model": "m", **body})
    return info.value


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "x", "conversation": "conv_1"}, "conversation"),
        ({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"input": "x", "background": True}, "background"),
        ({}, "input"),
        ({"input": []}, "input"),
        ({"input": 3}, "input"),
        ({"input": ["hi"]}, "input[0]"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": 3}]}, "input[0].content"),
        ({"input": [{"role": "user", "content": ["x"]}]}, "input[0].content[0]"),
        ({"input": ["x", {"role": "user", "content": [{"type": "input_text", "text": "a"},
                                                      {"type": "input_audio"}]}][1:]}, "input[0].content[1].type"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]}, "input[0].content[0].text"),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
         "input[0].content[0].file_id"),
        ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input[0].content[0].image_url"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]},
         "input[0].content[0].file_data"),
        ({"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]},
         "input[0].content[0].file_data"),
        ({"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}]},
         "input[0].content[0].type"),
        ({"input": [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]}, "input[0].content[0].type"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
        ({"input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]}, "input[0].name"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": 1}]}, "input[0].arguments"),
        ({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "f"}]}, "input[0].input"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output"),
        ({"input": [{"type": "function_call_output", "call_id": "c",
                     "output": [{"type": "input_audio"}]}]}, "input[0].output[0].type"),
        ({"input": [{"type": "function_call_output", "call_id": "c",
                     "output": [{"type": "input_image", "file_id": "file_1"}]}]}, "input[0].output[0].file_id"),
        ({"input": [{"type": "custom_tool_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": "x", "instructions": 3}, "instructions"),
        ({"input": "x", "tools": {}}, "tools"),
        ({"input": "x", "tools": [SHELL, {"type": "web_search"}]}, "tools[1].type"),
        ({"input": "x", "tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type"),
        ({"input": "x", "tools": [{"type": "local_shell"}]}, "tools[0].type"),
        ({"input": "x", "tools": [{"type": "mcp", "server_label": "s"}]}, "tools[0].type"),
        ({"input": "x", "tools": [{"type": "computer_use_preview"}]}, "tools[0].type"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": "x", "tools": [{"type": "function", "name": "f", "parameters": "{}"}]}, "tools[0].parameters"),
        ({"input": "x", "tools": [{"type": "custom", "name": "f", "format": {"type": "grammar"}}]},
         "tools[0].format.definition"),
        ({"input": "x", "tools": [SHELL], "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"input": "x", "tools": [SHELL], "tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"input": "x", "tools": [SHELL], "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}},
         "tool_choice"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "x", "max_output_tokens": "5"}, "max_output_tokens"),
        ({"input": "x", "text": {"format": {"type": "grammar"}}}, "text.format.type"),
        ({"input": "x", "text": {"format": {"type": "json_schema", "name": "p"}}}, "text.format.schema"),
        ({"input": "x", "text": "json"}, "text"),
        ({"input": "x", "reasoning": "high"}, "reasoning"),
        ({"input": "x", "reasoning": {"effort": 3}}, "reasoning.effort"),
    ],
)  # fmt: skip
def test_what_a_chat_backend_cannot_take_is_invalid_input_naming_the_field(body, param):
    error = invalid(body)
    assert error.param == param
    assert error.message.startswith(f"'{param}")


def test_previous_response_id_says_to_send_the_whole_conversation():
    error = invalid({"input": "x", "previous_response_id": "resp_1"})
    assert "gw keeps no history on converted backends" in error.message
    assert "send the full conversation in 'input' (store: false)" in error.message


def test_a_null_previous_response_id_and_background_false_are_fine():
    assert to_chat({"model": "m", "input": "x", "previous_response_id": None, "background": False})["messages"]


# ---------------------------------------------------------------- answer and stream: helpers

CREATED = 1_700_000_000
TOOLS_REQUEST = {"model": "gpt-x", "input": "x", "tools": [SHELL, APPLY_PATCH], "max_output_tokens": 64}


def valid_response(response: dict[str, Any]) -> Response:
    """``response`` as the openai SDK's ``Response`` reads it (every field checked)."""
    return Response.model_validate(response)


def play(encoder: Any, script: list[tuple[Any, ...]]) -> None:
    """Calls the encoder's Sink methods: ``("text", 0, "Hi")`` -> ``encoder.text(0, "Hi")``."""
    for name, *args in script:
        getattr(encoder, name)(*args)


def answer_of(script: list[tuple[Any, ...]], request: dict[str, Any] | None = None) -> dict[str, Any]:
    encoder = ResponseAnswer("resp_1", CREATED, "gpt-x", request if request is not None else TOOLS_REQUEST)
    play(encoder, script)
    answer = encoder.answer()
    valid_response(answer)
    return answer


def events(raw: bytes) -> list[dict[str, Any]]:
    """The SSE events' data, each checked: its ``event:`` is its ``type``, the SDK's
    stream event union reads it, the sequence numbers rise from 0."""
    out = []
    for block in raw.split(b"\n\n")[:-1]:
        head, data = block.split(b"\n")
        event = orjson.loads(data.removeprefix(b"data: "))
        assert head == b"event: " + event["type"].encode()
        STREAM_EVENT.validate_python(event)
        assert event["sequence_number"] == len(out)
        out.append(event)
    assert raw.endswith(b"\n\n") or not raw
    return out


def accumulated(evs: list[dict[str, Any]], tools: Any = omit) -> Any:
    """The SDK's own stream accumulator (what ``client.responses.stream()`` uses) over the events."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=tools, text_format=omit)
    final = None
    for event in evs:
        for handled in state.handle_event(STREAM_EVENT.validate_python(event)):
            if handled.type in ("response.completed", "response.incomplete"):
                final = handled.response
    assert final is not None
    return final


def stream_of(
    script: list[tuple[Any, ...]], request: dict[str, Any] | None = None
) -> tuple[ResponseEvents, list[dict[str, Any]]]:
    encoder = ResponseEvents("resp_1", CREATED, "gpt-x", request if request is not None else TOOLS_REQUEST)
    raw = b""
    for step in script:
        play(encoder, [step])
        raw += encoder.take()
    evs = events(raw)
    final = evs[-1]["response"]
    valid_response(final)
    assert encoder.sequence_number == len(evs)
    return encoder, evs


def types(evs: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in evs]


def without_ids(response: dict[str, Any]) -> dict[str, Any]:
    """The response with its item ids and completed_at blanked: they differ between encoders."""
    response = copy.deepcopy(response)
    response.pop("completed_at", None)
    for item in response["output"]:
        item["id"] = "-"
    return response


def same_answer(script: list[tuple[Any, ...]], request: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stream's final Response equals the whole answer (ids aside); returns it."""
    _, evs = stream_of(script, request)
    answer = answer_of(script, request)
    assert without_ids(evs[-1]["response"]) == without_ids(answer)
    return answer


TEXT = [("start", "chatcmpl-1"), ("text", 0, "Héllo"), ("text", 0, " wörld 🎉"), ("finish", 0, "stop", None),
        ("usage", 7, 3, 0, 0, 0), ("end",)]  # fmt: skip


# ---------------------------------------------------------------- answer


def test_a_text_answer_is_a_completed_response_with_one_message():
    answer = answer_of(TEXT)
    assert answer["id"] == "resp_1" and answer["object"] == "response" and answer["created_at"] == CREATED
    assert answer["model"] == "gpt-x"
    assert answer["status"] == "completed"
    assert answer["error"] is None and answer["incomplete_details"] is None
    assert answer["completed_at"] >= CREATED
    [message] = answer["output"]
    assert re.fullmatch(r"msg_[0-9a-f]{24}", message["id"])
    assert message == {"id": message["id"], "type": "message", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": "Héllo wörld 🎉", "annotations": [],
                                    "logprobs": []}]}  # fmt: skip
    assert answer["usage"] == {
        "input_tokens": 7, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 10,
    }  # fmt: skip
    assert valid_response(answer).output_text == "Héllo wörld 🎉"


def test_the_request_fields_are_echoed_with_the_apis_defaults():
    answer = answer_of(TEXT, {"model": "gpt-x", "input": "x"})
    assert {k: answer[k] for k in ("instructions", "max_output_tokens", "metadata", "parallel_tool_calls",
                                   "previous_response_id", "reasoning", "store", "temperature", "text",
                                   "tool_choice", "tools", "top_p", "truncation", "user")} == {
        "instructions": None, "max_output_tokens": None, "metadata": {}, "parallel_tool_calls": True,
        "previous_response_id": None, "reasoning": None, "store": False, "temperature": None,
        "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": None,
        "truncation": "disabled", "user": None,
    }  # fmt: skip
    request = codex_request()
    answer = answer_of(TEXT, request)
    assert answer["instructions"] == request["instructions"]
    assert answer["tools"] == [SHELL, APPLY_PATCH]
    assert answer["parallel_tool_calls"] is False
    assert answer["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert answer["text"] == {"verbosity": "low"}
    assert answer["store"] is False  # gw stores nothing, whatever the request asked
    assert answer["prompt_cache_key"] == "0199a1b2-c3d4"


def test_reasoning_then_text_is_a_reasoning_item_then_a_message():
    answer = answer_of([("start", None), ("reasoning", 0, "Think"), ("reasoning", 0, "ing."), ("text", 0, "42"),
                        ("finish", 0, "stop", None), ("end",)])  # fmt: skip
    reasoning, message = answer["output"]
    assert re.fullmatch(r"rs_[0-9a-f]{24}", reasoning["id"])
    assert reasoning == {"id": reasoning["id"], "type": "reasoning",
                         "summary": [{"type": "summary_text", "text": "Thinking."}]}  # fmt: skip
    assert message["content"][0]["text"] == "42"
    assert answer["usage"] is None  # the backend gave none


def test_a_function_call_is_a_function_call_item_with_the_backends_call_id():
    answer = answer_of([("start", None), ("text", 0, "Listing."), ("tool_start", 0, 0, "call_1", "shell", None),
                        ("tool_args", 0, 0, '{"command":'), ("tool_args", 0, 0, '["ls"]}'),
                        ("finish", 0, "tool_calls", None), ("end",)])  # fmt: skip
    message, call = answer["output"]
    assert message["content"][0]["text"] == "Listing."
    assert re.fullmatch(r"fc_[0-9a-f]{24}", call["id"])
    assert call == {"id": call["id"], "type": "function_call", "status": "completed", "call_id": "call_1",
                    "name": "shell", "arguments": '{"command":["ls"]}'}  # fmt: skip
    assert answer["status"] == "completed"


def test_a_call_without_arguments_has_an_empty_object_and_one_without_an_id_gets_one():
    answer = answer_of([("start", None), ("tool_start", 0, 0, "", "shell", None), ("finish", 0, "tool_calls", None),
                        ("end",)])  # fmt: skip
    [call] = answer["output"]
    assert call["arguments"] == "{}"
    assert re.fullmatch(r"call_[0-9a-f]{24}", call["call_id"])


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (['{"input": "', PATCH.replace("\n", "\\n"), '"}'], PATCH),
        (["not json"], "not json"),
        (['{"patch": "x"}'], '{"patch": "x"}'),
        (['{"input": 3}'], '{"input": 3}'),
    ],
)
def test_a_custom_tool_call_carries_the_input_string_of_its_arguments(arguments, expected):
    script = [("start", None), ("tool_start", 0, 0, "call_p", "apply_patch", None)]
    script += [("tool_args", 0, 0, a) for a in arguments]
    answer = answer_of([*script, ("finish", 0, "tool_calls", None), ("end",)])
    [call] = answer["output"]
    assert re.fullmatch(r"ctc_[0-9a-f]{24}", call["id"])
    assert call == {"id": call["id"], "type": "custom_tool_call", "status": "completed", "call_id": "call_p",
                    "name": "apply_patch", "input": expected}  # fmt: skip


def test_a_tool_named_like_a_custom_one_is_a_function_call_when_the_request_has_no_such_custom_tool():
    answer = answer_of([("start", None), ("tool_start", 0, 0, "c", "apply_patch", None), ("tool_args", 0, 0, "{}"),
                        ("finish", 0, "tool_calls", None), ("end",)], {"model": "gpt-x", "input": "x"})  # fmt: skip
    assert answer["output"][0]["type"] == "function_call"


@pytest.mark.parametrize(("reason", "why"), [("length", "max_output_tokens"), ("content_filter", "content_filter")])
def test_a_length_or_content_filter_finish_is_an_incomplete_response(reason, why):
    answer = answer_of([("start", None), ("text", 0, "Once upon"), ("finish", 0, reason, None), ("end",)])
    assert answer["status"] == "incomplete"
    assert answer["incomplete_details"] == {"reason": why}
    assert answer["output"][0]["status"] == "incomplete"
    assert "completed_at" not in answer


def test_usage_counts_cached_input_in_input_tokens_and_reasoning_in_the_output_details():
    script = [("start", None), ("reasoning", 0, "r"), ("text", 0, "t"), ("usage", 10, 30, 80, 5, 20),
              ("finish", 0, "stop", None), ("end",)]  # fmt: skip
    encoder = ResponseAnswer("resp_1", CREATED, "gpt-x", TOOLS_REQUEST)
    play(encoder, script)
    usage = encoder.answer()["usage"]
    assert usage == {
        "input_tokens": 95, "input_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 5},
        "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 20}, "total_tokens": 125,
    }  # fmt: skip
    # gw's metrics read the OpenAI shape (rules.make_usage), counted the same way.
    assert encoder.openai_usage() == {
        "prompt_tokens": 95, "completion_tokens": 30, "total_tokens": 125,
        "prompt_tokens_details": {"cached_tokens": 80}, "completion_tokens_details": {"reasoning_tokens": 20},
    }  # fmt: skip


def test_other_choices_are_not_written():
    answer = answer_of([("start", None), ("text", 1, "other"), ("text", 0, "mine"),
                        ("tool_start", 1, 0, "c", "shell", None), ("tool_args", 1, 0, "{}"),
                        ("finish", 1, "stop", None), ("finish", 0, "stop", None), ("end",)])  # fmt: skip
    assert [item["type"] for item in answer["output"]] == ["message"]
    assert answer["output"][0]["content"][0]["text"] == "mine"


def test_a_whole_chat_completion_is_read_into_a_response():
    completion = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "upstream-model",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Patching.", "reasoning_content": "Need a file.",
            "tool_calls": [{"id": "call_p", "type": "function", "function": {
                "name": "apply_patch", "arguments": orjson.dumps({"input": PATCH}).decode()}}]}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29,
                  "prompt_tokens_details": {"cached_tokens": 8}},
    }  # fmt: skip
    encoder = ResponseAnswer("resp_1", CREATED, "gpt-5-codex", codex_request())
    read_answer(completion, encoder)
    answer = encoder.answer()
    response = valid_response(answer)
    assert [item["type"] for item in answer["output"]] == ["reasoning", "message", "custom_tool_call"]
    assert response.output_text == "Patching."
    assert answer["output"][2]["input"] == PATCH
    assert answer["model"] == "gpt-5-codex"
    assert answer["usage"]["input_tokens"] == 20 and answer["usage"]["input_tokens_details"]["cached_tokens"] == 8


# ---------------------------------------------------------------- stream


MESSAGE_EVENTS = ["output_item.added", "content_part.added"]
MESSAGE_DONE = ["output_text.done", "content_part.done", "output_item.done"]


def test_a_text_stream_is_the_exact_event_sequence():
    encoder, evs = stream_of(TEXT)
    assert types(evs) == ["created", "in_progress", *MESSAGE_EVENTS, "output_text.delta", "output_text.delta",
                          *MESSAGE_DONE, "completed"]  # fmt: skip
    created = evs[0]["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    assert evs[1]["response"] == created
    item_id = evs[2]["item"]["id"]
    assert evs[2] == {"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": {
        "id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}  # fmt: skip
    assert evs[3] == {"type": "response.content_part.added", "sequence_number": 3, "item_id": item_id,
                      "output_index": 0, "content_index": 0,
                      "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}  # fmt: skip
    assert evs[4] == {"type": "response.output_text.delta", "sequence_number": 4, "item_id": item_id,
                      "output_index": 0, "content_index": 0, "delta": "Héllo", "logprobs": []}  # fmt: skip
    assert evs[6] == {"type": "response.output_text.done", "sequence_number": 6, "item_id": item_id,
                      "output_index": 0, "content_index": 0, "text": "Héllo wörld 🎉", "logprobs": []}  # fmt: skip
    assert evs[7]["part"]["text"] == "Héllo wörld 🎉"
    assert evs[8]["item"]["status"] == "completed"
    final = evs[-1]["response"]
    assert final["status"] == "completed" and final["usage"]["total_tokens"] == 10
    assert final["output"] == [evs[8]["item"]]
    assert accumulated(evs).output_text == "Héllo wörld 🎉"
    assert encoder.openai_usage() == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
                                      "prompt_tokens_details": {"cached_tokens": 0}}  # fmt: skip
    same_answer(TEXT)


def test_each_delta_is_written_when_it_comes_and_nothing_at_start():
    encoder = ResponseEvents("resp_1", CREATED, "gpt-x", TOOLS_REQUEST)
    encoder.start("chatcmpl-1")
    assert encoder.take() == b""  # a backend error now leaves nothing sent
    encoder.text(0, "a")
    assert types(events(encoder.take())) == ["created", "in_progress", *MESSAGE_EVENTS, "output_text.delta"]
    encoder.text(0, "b")
    out = encoder.take()
    assert out.startswith(b"event: response.output_text.delta\ndata: ")
    assert orjson.loads(out.split(b"data: ")[1])["delta"] == "b"


def test_reasoning_then_text_streams_a_reasoning_summary_then_a_message():
    script = [("start", None), ("reasoning", 0, "Think"), ("reasoning", 0, "ing."), ("text", 0, "42"),
              ("finish", 0, "stop", None), ("usage", 5, 4, 0, 0, 2), ("end",)]  # fmt: skip
    _, evs = stream_of(script)
    assert types(evs) == [
        "created", "in_progress",
        "output_item.added", "reasoning_summary_part.added", "reasoning_summary_text.delta",
        "reasoning_summary_text.delta", "reasoning_summary_text.done", "reasoning_summary_part.done",
        "output_item.done",
        *MESSAGE_EVENTS, "output_text.delta", *MESSAGE_DONE,
        "completed",
    ]  # fmt: skip
    rs = evs[2]["item"]["id"]
    assert evs[2]["item"] == {"id": rs, "type": "reasoning", "summary": []}
    assert evs[4] == {"type": "response.reasoning_summary_text.delta", "sequence_number": 4, "item_id": rs,
                      "output_index": 0, "summary_index": 0, "delta": "Think"}  # fmt: skip
    assert evs[6]["text"] == "Thinking." and evs[7]["part"] == {"type": "summary_text", "text": "Thinking."}
    assert evs[9]["output_index"] == 1
    final = accumulated(evs)
    assert final.output_text == "42"
    assert final.output[0].summary[0].text == "Thinking."
    assert same_answer(script)["usage"]["output_tokens_details"] == {"reasoning_tokens": 2}


def test_one_function_call_streams_its_argument_fragments():
    script = [("start", None), ("tool_start", 0, 0, "call_1", "shell", None), ("tool_args", 0, 0, '{"command":'),
              ("tool_args", 0, 0, '["ls"]}'), ("finish", 0, "tool_calls", None), ("end",)]  # fmt: skip
    _, evs = stream_of(script)
    assert types(evs) == ["created", "in_progress", "output_item.added", "function_call_arguments.delta",
                          "function_call_arguments.delta", "function_call_arguments.done", "output_item.done",
                          "completed"]  # fmt: skip
    fc = evs[2]["item"]["id"]
    assert evs[2]["item"] == {"id": fc, "type": "function_call", "status": "in_progress", "call_id": "call_1",
                              "name": "shell", "arguments": ""}  # fmt: skip
    assert evs[3] == {"type": "response.function_call_arguments.delta", "sequence_number": 3, "item_id": fc,
                      "output_index": 0, "delta": '{"command":'}  # fmt: skip
    assert evs[5] == {"type": "response.function_call_arguments.done", "sequence_number": 5, "item_id": fc,
                      "output_index": 0, "arguments": '{"command":["ls"]}'}  # fmt: skip
    [call] = accumulated(evs, [SHELL]).output
    assert (call.type, call.call_id, call.name, call.arguments) == ("function_call", "call_1", "shell",
                                                                    '{"command":["ls"]}')  # fmt: skip
    same_answer(script)


def test_parallel_calls_with_interleaved_arguments_are_distinct_items():
    script = [("start", None), ("text", 0, "Both."),
              ("tool_start", 0, 0, "call_a", "shell", None), ("tool_start", 0, 1, "call_b", "shell", None),
              ("tool_args", 0, 0, '{"command":'), ("tool_args", 0, 1, '{"command":'),
              ("tool_args", 0, 1, '["pwd"]}'), ("tool_args", 0, 0, '["ls"]}'),
              ("tool_start", 0, 2, "call_c", "shell", None), ("tool_args", 0, 2, '{"command":["id"]}'),
              ("usage", 12, 9, 8, 0, 0), ("finish", 0, "tool_calls", None), ("end",)]  # fmt: skip
    _, evs = stream_of(script)
    assert types(evs) == [
        "created", "in_progress", *MESSAGE_EVENTS, "output_text.delta", *MESSAGE_DONE,
        "output_item.added", "output_item.added",
        "function_call_arguments.delta", "function_call_arguments.delta", "function_call_arguments.delta",
        "function_call_arguments.delta",
        "output_item.added", "function_call_arguments.delta",
        "function_call_arguments.done", "output_item.done",
        "function_call_arguments.done", "output_item.done",
        "function_call_arguments.done", "output_item.done",
        "completed",
    ]  # fmt: skip
    added = [e for e in evs if e["type"] == "response.output_item.added"][1:]
    assert [(e["output_index"], e["item"]["call_id"]) for e in added] == [(1, "call_a"), (2, "call_b"), (3, "call_c")]
    assert len({e["item"]["id"] for e in added}) == 3
    by_index = {e["output_index"]: e["item"]["id"] for e in added}
    for e in evs:
        if e["type"].startswith("response.function_call_arguments"):
            assert e["item_id"] == by_index[e["output_index"]]
    done = {e["output_index"]: e["arguments"] for e in evs if e["type"] == "response.function_call_arguments.done"}
    assert done == {1: '{"command":["ls"]}', 2: '{"command":["pwd"]}', 3: '{"command":["id"]}'}
    final = accumulated(evs, [SHELL])
    assert final.output_text == "Both."
    assert [(o.call_id, o.arguments) for o in final.output[1:]] == [
        ("call_a", '{"command":["ls"]}'), ("call_b", '{"command":["pwd"]}'), ("call_c", '{"command":["id"]}')]
    answer = same_answer(script)
    assert answer["usage"]["input_tokens"] == 20 and answer["usage"]["input_tokens_details"]["cached_tokens"] == 8


def test_a_custom_tool_call_streams_its_input_when_the_call_ends():
    arguments = orjson.dumps({"input": PATCH}).decode()
    script = [("start", None), ("tool_start", 0, 0, "call_p", "apply_patch", None),
              ("tool_args", 0, 0, arguments[:10]), ("tool_args", 0, 0, arguments[10:]),
              ("finish", 0, "tool_calls", None), ("end",)]  # fmt: skip
    encoder = ResponseEvents("resp_1", CREATED, "gpt-x", TOOLS_REQUEST)
    play(encoder, script[:3])
    assert types(events(encoder.take())) == ["created", "in_progress", "output_item.added"]
    _, evs = stream_of(script)
    assert types(evs) == ["created", "in_progress", "output_item.added", "custom_tool_call_input.delta",
                          "custom_tool_call_input.done", "output_item.done", "completed"]  # fmt: skip
    ctc = evs[2]["item"]["id"]
    assert evs[2]["item"] == {"id": ctc, "type": "custom_tool_call", "status": "in_progress", "call_id": "call_p",
                              "name": "apply_patch", "input": ""}  # fmt: skip
    assert evs[3] == {"type": "response.custom_tool_call_input.delta", "sequence_number": 3, "item_id": ctc,
                      "output_index": 0, "delta": PATCH}  # fmt: skip
    assert evs[4] == {"type": "response.custom_tool_call_input.done", "sequence_number": 4, "item_id": ctc,
                      "output_index": 0, "input": PATCH}  # fmt: skip
    [call] = accumulated(evs, [SHELL, APPLY_PATCH]).output
    assert (call.type, call.call_id, call.name, call.input) == ("custom_tool_call", "call_p", "apply_patch", PATCH)
    same_answer(script)


def test_a_length_finish_streams_response_incomplete():
    script = [("start", None), ("text", 0, "Once upon"), ("finish", 0, "length", None), ("usage", 3, 64, 0, 0, 0),
              ("end",)]  # fmt: skip
    _, evs = stream_of(script)
    assert types(evs) == ["created", "in_progress", *MESSAGE_EVENTS, "output_text.delta", *MESSAGE_DONE,
                          "incomplete"]  # fmt: skip
    final = evs[-1]["response"]
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert evs[-2]["item"]["status"] == "incomplete"
    assert accumulated(evs).output_text == "Once upon"
    same_answer(script)


def test_text_after_a_tool_call_ends_the_call_and_opens_a_message():
    script = [("start", None), ("tool_start", 0, 0, "c", "shell", None), ("tool_args", 0, 0, "{}"),
              ("text", 0, "done"), ("finish", 0, "stop", None), ("end",)]  # fmt: skip
    _, evs = stream_of(script)
    assert types(evs) == ["created", "in_progress", "output_item.added", "function_call_arguments.delta",
                          "function_call_arguments.done", "output_item.done", *MESSAGE_EVENTS,
                          "output_text.delta", *MESSAGE_DONE, "completed"]  # fmt: skip
    assert accumulated(evs).output_text == "done"
    same_answer(script)


def test_a_finish_without_content_and_an_end_without_finish_still_complete():
    _, evs = stream_of([("start", None), ("finish", 0, "stop", None), ("end",)])
    assert types(evs) == ["created", "in_progress", "completed"]
    assert evs[-1]["response"]["output"] == []
    _, evs = stream_of([("start", None), ("text", 0, "x"), ("end",)])
    assert types(evs) == ["created", "in_progress", *MESSAGE_EVENTS, "output_text.delta", *MESSAGE_DONE,
                          "completed"]  # fmt: skip


def test_nothing_follows_the_end():
    encoder, _ = stream_of(TEXT)
    encoder.end()
    encoder.text(0, "late")
    assert encoder.take().count(b"response.completed") == 0


def test_response_failed_is_one_valid_event():
    raw = response_failed("resp_1", CREATED, "gpt-x", 7, "upstream reset", "server_error")
    [event] = [orjson.loads(block.split(b"data: ")[1]) for block in raw.split(b"\n\n")[:-1]]
    assert raw.startswith(b"event: response.failed\ndata: ")
    STREAM_EVENT.validate_python(event)
    assert event["sequence_number"] == 7
    response = event["response"]
    valid_response(response)
    assert response["status"] == "failed"
    assert response["error"] == {"code": "server_error", "message": "upstream reset"}
    assert response["output"] == [] and response["id"] == "resp_1"


def test_response_ids_are_fresh():
    a, b = response_id(), response_id()
    assert re.fullmatch(r"resp_[0-9a-f]{32}", a) and a != b


# ---------------------------------------------------------------- any backend stream


def chat_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return chunk_event("chatcmpl-1", 1, "upstream", delta, finish)


def test_a_chat_stream_converts_through_the_chat_decoder():
    raw = (chat_chunk({"role": "assistant", "content": ""}) + chat_chunk({"reasoning_content": "hm"})
           + chat_chunk({"content": "Hi"})
           + chat_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                         "function": {"name": "shell", "arguments": ""}}]})
           + chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"command":["ls"]}'}}]})
           + chat_chunk({}, "tool_calls")
           + usage_event("chatcmpl-1", 1, "upstream", {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13})
           + DONE_EVENT)  # fmt: skip
    encoder = ResponseEvents("resp_1", CREATED, "gpt-x", TOOLS_REQUEST)
    converter = Converter(ChatDecoder(encoder), encoder)
    out = b"".join(converter.feed(raw[i : i + 7]) for i in range(0, len(raw), 7)) + converter.close()
    assert converter.done and converter.invalid is None
    evs = events(out)
    final = accumulated(evs, [SHELL])
    assert final.output_text == "Hi"
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call"]
    assert final.usage is not None and final.usage.total_tokens == 13
    assert converter.usage == {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
                               "prompt_tokens_details": {"cached_tokens": 0}}  # fmt: skip


def _summary(response: dict[str, Any]) -> dict[str, Any]:
    """What a Response says, whatever its item runs: for comparing a stream with its whole answer."""
    output = response["output"]
    return {
        "reasoning": "".join(i["summary"][0]["text"] for i in output if i["type"] == "reasoning"),
        "text": "".join(i["content"][0]["text"] for i in output if i["type"] == "message"),
        "calls": [(i["call_id"], i["name"], orjson.loads(i["arguments"])) for i in output if i["type"] == "function_call"],
        "status": (response["status"], response["incomplete_details"]),
        "usage": response["usage"],
    }  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(chat_streams())
def test_any_chat_stream_is_valid_responses_events_that_accumulate_to_the_whole_answer(stream: ChatStream):
    encoder = ResponseEvents("resp_1", CREATED, "gpt-x", TOOLS_REQUEST)
    converter = Converter(ChatDecoder(encoder), encoder)
    out = converter.feed(stream.raw) + converter.close()
    assert converter.done and converter.invalid is None
    evs = events(out)  # each event validated by the SDK's types
    accumulated(evs)
    streamed = evs[-1]["response"]
    valid_response(streamed)
    whole = ResponseAnswer("resp_1", CREATED, "gpt-x", TOOLS_REQUEST)
    read_answer(stream.answer, whole)
    answer = whole.answer()
    valid_response(answer)
    assert _summary(streamed) == _summary(answer)


# -- Codex's tools: an `additional_tools` input item, in namespaces

EXEC = {"type": "custom", "name": "exec", "description": "Run JavaScript", "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
WAIT = {"type": "function", "name": "wait", "parameters": {"type": "object", "properties": {}}, "strict": False}


def codex_tools_request(**extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-6.2-sol",
        "input": [
            {"type": "additional_tools", "role": "developer", "tools": [
                {"type": "namespace", "name": "functions", "description": "Tools", "tools": [EXEC, WAIT]},
                {"type": "namespace", "name": "collaboration", "description": "Agents", "tools": [{**WAIT}]},
            ]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run it"}]},
        ],
        **extra,
    }  # fmt: skip


def test_additional_tools_items_are_the_tools_and_namespaces_are_flattened() -> None:
    chat = to_chat(codex_tools_request())
    assert [m["role"] for m in chat["messages"]] == ["user"]
    # `wait` is in two namespaces: each gets its namespace in its chat name; `exec` stays itself
    assert [t["function"]["name"] for t in chat["tools"]] == ["exec", "functions__wait", "collaboration__wait"]
    assert chat["tools"][0]["function"]["parameters"]["required"] == ["input"]


def test_a_namespaced_call_in_the_history_takes_its_chat_name() -> None:
    body = codex_tools_request()
    body["input"] += [
        {"type": "function_call", "call_id": "c1", "name": "wait", "namespace": "collaboration", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "exec", "namespace": "functions", "input": "1+1"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "2"}]},
    ]
    calls = [c["function"]["name"] for m in to_chat(body)["messages"] for c in m.get("tool_calls", ())]
    assert calls == ["collaboration__wait", "exec"]


def test_a_call_of_a_namespaced_tool_is_written_back_with_its_name_and_namespace() -> None:
    request = codex_tools_request()
    answer = answer_of([("tool_start", 0, 0, "call_1", "exec", None), ("tool_args", 0, 0, '{"input": "await tools.x()"}'),
                        ("tool_start", 0, 1, "call_2", "collaboration__wait", None), ("tool_args", 0, 1, "{}"),
                        ("finish", 0, "tool_calls", None)], request)  # fmt: skip
    first, second = answer["output"]
    assert (first["type"], first["name"], first["namespace"], first["input"]) == (
        "custom_tool_call", "exec", "functions", "await tools.x()")
    assert (second["type"], second["name"], second["namespace"]) == ("function_call", "wait", "collaboration")
