"""gw/_fast/gemini.pyx: OpenAI <-> Gemini requests, answers, streams and embeddings."""

from __future__ import annotations

import base64
import importlib.machinery
import itertools
import re
import struct
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gw._fast import gemini
from gw._fast.chat import ChatAnswer, ChatChunks
from gw._fast.events import Converter, Recorder
from gw._fast.gemini import (
    GeminiDecoder,
    block_reason,
    chat_request,
    embed_answer,
    embed_request,
    embedding_inputs,
    estimate_tokens,
    gemini_schema,
    model_path,
    read_answer,
    usage_from,
)
from gw._fast.rules import InvalidInput


def chat_stream(id: str, created: int, model: str, include_usage: bool) -> Converter:
    """What gw runs for a chat client on a Gemini backend: the decoder driving ``ChatChunks``."""
    encoder = ChatChunks(created, model, include_usage)
    return Converter(GeminiDecoder(encoder, id), encoder)


def req(*messages: dict, **body: Any) -> dict:
    return chat_request({"model": "m", "messages": list(messages), **body})


def user(content: Any) -> dict:
    return {"role": "user", "content": content}


def call(id: str, name: str, arguments: Any = "{}", **extra: Any) -> dict:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}, **extra}


def invalid(param: str, *messages: dict, **body: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        req(*messages, **body)
    assert info.value.param == param, info.value.message
    assert param.split(".")[0] in info.value.message
    return info.value


def test_the_module_is_compiled() -> None:
    assert gemini.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_model_path_takes_both_spellings() -> None:
    assert model_path("gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("models/gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("tunedModels/my-tune") == "tunedModels/my-tune"


# ------------------------------------------------------------------ request: messages


def test_system_and_developer_messages_become_the_system_instruction_in_order() -> None:
    out = req(
        {"role": "system", "content": "one"},
        user("hi"),
        {"role": "developer", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}]},
    )
    assert out["systemInstruction"] == {"parts": [{"text": "one"}, {"text": "two"}, {"text": "three"}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_no_system_message_no_system_instruction() -> None:
    assert "systemInstruction" not in req(user("hi"))


def test_roles_map_to_user_and_model_and_neighbours_of_one_role_merge() -> None:
    out = req(user("a"), user([{"type": "text", "text": "b"}]), {"role": "assistant", "content": "c"},
              {"role": "assistant", "content": "d"}, user("e"))
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}, {"text": "d"}]},
        {"role": "user", "parts": [{"text": "e"}]},
    ]


def test_empty_texts_are_not_sent_and_an_empty_turn_disappears() -> None:
    out = req(user("a"), {"role": "assistant", "content": ""}, {"role": "assistant", "content": None}, user("b"))
    assert out["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]


def test_assistant_refusal_parts_are_text() -> None:
    out = req(user("a"), {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]})
    assert out["contents"][1] == {"role": "model", "parts": [{"text": "no"}]}


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "narrator", "content": "x"}, "messages[0].role"),
        ({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://a/b.png"}}]},
         "messages[0].content[0]"),
        ({"role": "user", "content": 5}, "messages[0].content"),
        ({"role": "user", "content": [{"type": "video", "video": {}}]}, "messages[0].content[0].type"),
        ({"role": "user", "content": [{"type": "text", "text": 3}]}, "messages[0].content[0].text"),
        ({"role": "function", "content": "x"}, "messages[0].name"),
    ],
)
def test_messages_gemini_cannot_take_are_invalid_input(message: dict, param: str) -> None:
    invalid(param, message)


# ------------------------------------------------------------------ request: images and files


def test_data_url_images_are_inline_data() -> None:
    out = req(user([{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]))
    assert out["contents"][0]["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]


@pytest.mark.parametrize(
    ("url", "mime"),
    [
        ("https://example.com/cat.png", "image/png"),
        ("https://example.com/cat.JPG?size=2#x", "image/jpeg"),
        ("http://example.com/a/b.webp", "image/webp"),
        ("https://example.com/render?id=3", "image/jpeg"),
        ("https://example.com/file.unknownext", "image/jpeg"),
        ("gs://bucket/x.heic", "image/heic"),
    ],
)
def test_http_image_urls_are_file_data_with_a_guessed_type(url: str, mime: str) -> None:
    out = req(user([{"type": "image_url", "image_url": {"url": url}}]))
    assert out["contents"][0]["parts"] == [{"fileData": {"mimeType": mime, "fileUri": url}}]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.png", "data:image/png,rawbytes", "data:image/png;base64", "", "cat.png"]
)
def test_other_image_urls_are_invalid_input(url: str) -> None:
    invalid("messages[0].content[0].image_url.url", user([{"type": "image_url", "image_url": {"url": url}}]))


def test_audio_and_inline_files_are_inline_data() -> None:
    out = req(user([
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
    ]))
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]


def test_a_file_by_id_is_invalid_input() -> None:
    invalid("messages[0].content[0].file", user([{"type": "file", "file": {"file_id": "file-123"}}]))


# ------------------------------------------------------------------ request: tool calls and results


def test_assistant_tool_calls_become_function_calls_with_parsed_args() -> None:
    out = req(user("go"), {"role": "assistant", "content": "let me see", "tool_calls": [
        call("c1", "weather", '{"city": "Paris", "days": [1, 2]}'), call("c2", "time", '{"tz": "UTC"}')]})
    assert out["contents"][1] == {"role": "model", "parts": [
        {"text": "let me see"},
        {"functionCall": {"name": "weather", "args": {"city": "Paris", "days": [1, 2]}}},
        {"functionCall": {"name": "time", "args": {"tz": "UTC"}}},
    ]}


@pytest.mark.parametrize("arguments", ["", "  ", None, "null", "{}"])
def test_empty_or_missing_arguments_are_an_empty_object(arguments: Any) -> None:
    tool_call = call("c1", "now", arguments)
    if arguments is None:
        del tool_call["function"]["arguments"]
    out = req(user("go"), {"role": "assistant", "tool_calls": [tool_call]})
    assert out["contents"][1]["parts"] == [{"functionCall": {"name": "now", "args": {}}}]


@pytest.mark.parametrize("arguments", ['{"a": ', "[1, 2]", "3", 17])
def test_arguments_that_are_not_a_json_object_are_invalid_input(arguments: Any) -> None:
    invalid("messages[1].tool_calls[0].function.arguments", user("go"),
            {"role": "assistant", "tool_calls": [call("c1", "f", arguments)]})


def test_a_tool_call_without_a_name_is_invalid_input() -> None:
    invalid("messages[1].tool_calls[0].function.name", user("go"),
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"arguments": "{}"}}]})


def test_the_thought_signature_goes_back_on_its_function_call_part() -> None:
    signed = call("c1", "f", "{}", extra_content={"google": {"thought_signature": "c2ln"}})
    out = req(user("go"), {"role": "assistant", "tool_calls": [signed, call("c2", "g")]})
    assert out["contents"][1]["parts"] == [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "g", "args": {}}},
    ]


def test_tool_results_are_function_responses_named_after_their_call_in_one_user_turn() -> None:
    out = req(
        user("go"),
        {"role": "assistant", "tool_calls": [call("c1", "weather"), call("c2", "time")]},
        {"role": "tool", "tool_call_id": "c2", "content": '{"now": "12:00"}'},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        user("thanks"),
    )
    assert out["contents"][2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "time", "response": {"now": "12:00"}}},
        {"functionResponse": {"name": "weather", "response": {"content": "sunny"}}},
        {"text": "thanks"},
    ]}


@pytest.mark.parametrize(
    ("content", "response"),
    [
        ("[1, 2]", {"content": "[1, 2]"}),
        ("42", {"content": "42"}),
        ("{not json", {"content": "{not json"}),
        (' {"a": 1}', {"a": 1}),
        ([{"type": "text", "text": '{"a":'}, {"type": "text", "text": " 2}"}], {"a": 2}),
        ("", {"content": ""}),
    ],
)
def test_a_tool_result_is_its_json_object_or_its_text(content: Any, response: dict) -> None:
    out = req(user("go"), {"role": "assistant", "tool_calls": [call("c1", "f")]},
              {"role": "tool", "tool_call_id": "c1", "content": content})
    assert out["contents"][2]["parts"][0]["functionResponse"]["response"] == response


def test_a_tool_result_for_an_unknown_call_is_invalid_input() -> None:
    invalid("messages[2].tool_call_id", user("go"), {"role": "assistant", "tool_calls": [call("c1", "f")]},
            {"role": "tool", "tool_call_id": "c9", "content": "x"})
    invalid("messages[1].tool_call_id", user("go"), {"role": "tool", "content": "x"})


def test_legacy_function_call_and_function_result() -> None:
    out = req(user("go"), {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"x": 1}'}},
              {"role": "function", "name": "f", "content": '{"y": 2}'})
    assert out["contents"][1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"y": 2}}}]},
    ]


# ------------------------------------------------------------------ request: tools and tool_choice

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather of a city",
        "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False},
    },
}
NOW = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}


def test_function_tools_become_function_declarations() -> None:
    out = req(user("go"), tools=[WEATHER, NOW, {"type": "function", "function": {"name": "bare"}}])
    assert out["tools"] == [{"functionDeclarations": [
        {"name": "weather", "description": "Weather of a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "now"},  # Gemini rejects an OBJECT with no properties
        {"name": "bare"},
    ]}]
    assert "toolConfig" not in out


def test_non_function_tools_are_invalid_input() -> None:
    invalid("tools[1]", user("go"), tools=[WEATHER, {"type": "custom", "custom": {"name": "x"}}])
    invalid("tools[0].function.name", user("go"), tools=[{"type": "function", "function": {}}])


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "weather"}}, {"mode": "ANY", "allowedFunctionNames": ["weather"]}),
    ],
)
def test_tool_choice_becomes_the_function_calling_config(choice: Any, config: dict) -> None:
    out = req(user("go"), tools=[WEATHER], tool_choice=choice)
    assert out["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize("choice", ["sometimes", {"type": "function"}, {"type": "allowed_tools"}, 3])
def test_other_tool_choices_are_invalid_input(choice: Any) -> None:
    invalid("tool_choice", user("go"), tools=[WEATHER], tool_choice=choice)


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "toolConfig" not in req(user("go"), tool_choice="none")


def test_legacy_functions_and_function_call() -> None:
    out = req(user("go"), functions=[WEATHER["function"]], function_call={"name": "weather"})
    assert out["tools"][0]["functionDeclarations"][0]["name"] == "weather"
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}}


# ------------------------------------------------------------------ request: generation config


def test_sampling_fields_become_the_generation_config() -> None:
    out = req(user("go"), temperature=0.2, top_p=0.9, top_k=40, max_tokens=50, stop=["END", "STOP"], n=2,
              seed=7, presence_penalty=0.5, frequency_penalty=-0.5)
    assert out["generationConfig"] == {
        "temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 50, "stopSequences": ["END", "STOP"],
        "candidateCount": 2, "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.5,
    }


def test_max_completion_tokens_wins_and_a_stop_string_is_a_list() -> None:
    out = req(user("go"), max_tokens=50, max_completion_tokens=20, stop="END")
    assert out["generationConfig"] == {"maxOutputTokens": 20, "stopSequences": ["END"]}


def test_fields_gemini_cannot_take_are_dropped() -> None:
    out = req(user("go"), model="m", stream=True, stream_options={"include_usage": True}, user="u1",
              logit_bias={"1": 2}, logprobs=True, top_logprobs=2, parallel_tool_calls=False, store=True,
              metadata={"a": "b"}, service_tier="auto", modalities=["text"], stop=[])
    assert out == {"contents": [{"role": "user", "parts": [{"text": "go"}]}]}


def test_stop_with_a_non_string_is_invalid_input() -> None:
    invalid("stop", user("go"), stop=["a", 1])


@pytest.mark.parametrize(("effort", "budget"), [("none", 0), ("low", 1024), ("medium", 8192), ("high", 24576)])
def test_reasoning_effort_becomes_a_thinking_budget(effort: str, budget: int) -> None:
    out = req(user("go"), reasoning_effort=effort)
    assert out["generationConfig"] == {"thinkingConfig": {"thinkingBudget": budget}}


def test_response_format_json_object_and_text() -> None:
    out = req(user("go"), response_format={"type": "json_object"})
    assert out["generationConfig"] == {"responseMimeType": "application/json"}
    assert "generationConfig" not in req(user("go"), response_format={"type": "text"})
    invalid("response_format", user("go"), response_format={"type": "yaml"})


def test_response_format_json_schema_sends_the_cleaned_schema() -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
              "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
              "required": ["name", "age"]}
    out = req(user("go"), response_format={"type": "json_schema",
                                           "json_schema": {"name": "person", "strict": True, "schema": schema}})
    assert out["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {
            "name": {"type": "string"}, "age": {"type": "integer", "nullable": True}}, "required": ["name", "age"]},
    }


def test_schema_refs_are_inlined_and_optional_any_of_is_nullable() -> None:
    # what pydantic writes for `item: Item | None` and a list of an enum
    schema = {
        "$defs": {"Item": {"type": "object", "title": "Item", "properties": {"sku": {"type": "string", "format": "uuid"}},
                           "additionalProperties": False},
                  "Color": {"enum": ["red", "blue"], "type": "string"}},
        "type": "object",
        "properties": {
            "item": {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}], "default": None},
            "colors": {"type": "array", "items": {"$ref": "#/$defs/Color"}, "examples": [["red"]]},
            "when": {"type": "string", "format": "date-time"},
            "kind": {"const": "fixed"},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["item", "colors", "gone"],
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "item": {"nullable": True, "type": "object", "title": "Item", "properties": {"sku": {"type": "string"}},
                     "default": None},
            "colors": {"type": "array", "items": {"enum": ["red", "blue"], "type": "string"}},
            "when": {"type": "string", "format": "date-time"},
            "kind": {"enum": ["fixed"], "type": "string"},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["item", "colors"],
    }


def test_schema_all_of_is_merged() -> None:
    schema = {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                        {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]}
    assert gemini_schema(schema) == {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                                     "required": ["a", "b"]}


def test_recursive_and_remote_schema_refs_are_invalid_input() -> None:
    recursive = {"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
                 "$ref": "#/$defs/Node"}
    with pytest.raises(InvalidInput, match="recursive"):
        gemini_schema(recursive)
    with pytest.raises(InvalidInput, match="not supported"):
        gemini_schema({"$ref": "https://example.com/schema.json"})


# ------------------------------------------------------------------ answer

def answer_of(*parts: dict, finish: str | None = "STOP", **extra: Any) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}, **extra}


def convert(answer: dict) -> dict:
    """A whole Gemini answer for a chat client: ``read_answer`` into ``ChatAnswer``."""
    encoder = ChatAnswer(1700000000, "gemini-2.5-flash")
    read_answer(answer, encoder, "chatcmpl-1")
    return encoder.answer()


def test_a_text_answer_is_a_chat_completion() -> None:
    out = convert(answer_of({"text": "Hello "}, {"text": "world"}))
    assert out == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gemini-2.5-flash",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                  "prompt_tokens_details": {"cached_tokens": 0}},
    }


def test_thought_parts_are_reasoning_content() -> None:
    out = convert(answer_of({"text": "secret plan", "thought": True}, {"text": "answer", "thoughtSignature": "x"}))
    assert out["choices"][0]["message"]["content"] == "answer"
    assert out["choices"][0]["message"]["reasoning_content"] == "secret plan"


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
     ("BLOCKLIST", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
     ("IMAGE_SAFETY", "content_filter"), ("LANGUAGE", "stop"), ("OTHER", "stop"),
     ("MALFORMED_FUNCTION_CALL", "stop"), ("FINISH_REASON_UNSPECIFIED", "stop"), (None, "stop")],
)
def test_finish_reasons_map(reason: str | None, finish: str) -> None:
    assert convert(answer_of({"text": "x"}, finish=reason))["choices"][0]["finish_reason"] == finish


def test_function_calls_are_tool_calls_with_ids_json_arguments_and_the_signature() -> None:
    out = convert(answer_of(
        {"functionCall": {"name": "weather", "args": {"city": "Zürich"}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "now"}},
        {"functionCall": {"name": "echo", "args": {}, "id": "gemini-own-id"}},
    ))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["function"] for c in calls] == [
        {"name": "weather", "arguments": '{"city":"Zürich"}'},
        {"name": "now", "arguments": "{}"},
        {"name": "echo", "arguments": "{}"},
    ]
    assert calls[0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert "extra_content" not in calls[1]
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", c["id"]) for c in calls[:2])
    assert calls[0]["id"] != calls[1]["id"]
    assert calls[2]["id"] == "gemini-own-id"
    assert {c["type"] for c in calls} == {"function"}


def test_text_and_function_calls_together() -> None:
    out = convert(answer_of({"text": "Checking."}, {"functionCall": {"name": "f", "args": {"a": 1}}}))
    message = out["choices"][0]["message"]
    assert message["content"] == "Checking."
    assert message["tool_calls"][0]["function"]["arguments"] == '{"a":1}'


def test_several_candidates_are_choices_indexed_by_the_candidate() -> None:
    answer = {"candidates": [
        {"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},  # proto3 leaves index 0 out
        {"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS", "index": 1},
    ]}
    out = convert(answer)
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in out["choices"]] == [
        (0, "a", "stop"), (1, "b", "length")]


def test_a_candidate_without_content() -> None:
    out = convert({"candidates": [{"finishReason": "SAFETY", "index": 0}]})
    assert out["choices"][0]["message"]["content"] == ""
    assert out["choices"][0]["finish_reason"] == "content_filter"


def test_usage_counts_cached_tokens_once_and_thoughts_as_completion() -> None:
    usage = usage_from({"promptTokenCount": 110, "cachedContentTokenCount": 100, "candidatesTokenCount": 5,
                        "thoughtsTokenCount": 7, "toolUsePromptTokenCount": 3, "totalTokenCount": 125})
    assert usage == {"prompt_tokens": 113, "completion_tokens": 12, "total_tokens": 125,
                     "prompt_tokens_details": {"cached_tokens": 100},
                     "completion_tokens_details": {"reasoning_tokens": 7}}
    assert usage_from(None) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                                "prompt_tokens_details": {"cached_tokens": 0}}
    assert convert({"candidates": []})["usage"]["total_tokens"] == 0


def test_block_reason_only_without_candidates() -> None:
    assert block_reason({"promptFeedback": {"blockReason": "SAFETY"}}) == "SAFETY"
    assert block_reason({"promptFeedback": {"blockReason": "OTHER", "blockReasonMessage": "why"}}) == "OTHER: why"
    assert block_reason({"promptFeedback": {"blockReason": "SAFETY"}, "candidates": [{"index": 0}]}) is None
    assert block_reason({"candidates": []}) is None


# ------------------------------------------------------------------ stream


def sse(*objects: dict | bytes) -> bytes:
    return b"".join(b"data: " + (o if isinstance(o, bytes) else orjson.dumps(o)) + b"\r\n\r\n" for o in objects)


def chunk(*parts: dict, finish: str | None = None, index: int | None = 0, usage: dict | None = None) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}}
    if finish:
        candidate["finishReason"] = finish
    if index is not None:
        candidate["index"] = index
    out: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        out["usageMetadata"] = usage
    return out


def payloads(data: bytes) -> list[Any]:
    """The data of each OpenAI event (``[DONE]`` as the string)."""
    out = []
    for block in data.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: "), block
        body = block[6:]
        out.append("[DONE]" if body == b"[DONE]" else orjson.loads(body))
    assert data.endswith(b"\n\n") or not data
    return out


def run(stream_bytes: bytes, include_usage: bool = False, pieces: int | None = None) -> tuple[Converter, list]:
    conv = chat_stream("chatcmpl-9", 1700000000, "gemini-2.5-flash", include_usage)
    out = b""
    if pieces is None:
        out += conv.feed(stream_bytes)
    else:
        for i in range(0, len(stream_bytes), pieces):
            out += conv.feed(stream_bytes[i : i + pieces])
    out += conv.close()
    return conv, payloads(out)


def deltas(events: list) -> list[tuple[int, dict, str | None]]:
    return [(c["index"], c["delta"], c["finish_reason"]) for e in events if e != "[DONE]" for c in e["choices"]]


USAGE = {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7}
TEXT_STREAM = sse(chunk({"text": "Hel"}, usage={"promptTokenCount": 4, "totalTokenCount": 4}),
                  chunk({"text": "lo wörld"}, usage={"promptTokenCount": 4, "totalTokenCount": 5}),
                  chunk({"text": " 🎉"}, finish="STOP", usage=USAGE))


def test_a_text_stream_is_role_content_finish_then_done_at_eof() -> None:
    conv, events = run(TEXT_STREAM)
    assert deltas(events) == [
        (0, {"role": "assistant", "content": ""}, None),
        (0, {"content": "Hel"}, None),
        (0, {"content": "lo wörld"}, None),
        (0, {"content": " 🎉"}, None),
        (0, {}, "stop"),
    ]
    assert events[-1] == "[DONE]"
    first = events[0]
    assert (first["id"], first["object"], first["created"], first["model"]) == (
        "chatcmpl-9", "chat.completion.chunk", 1700000000, "gemini-2.5-flash")
    assert conv.done and conv.error is None and conv.invalid is None
    assert conv.usage == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7,
                          "prompt_tokens_details": {"cached_tokens": 0}}


def test_the_usage_chunk_comes_only_when_asked_just_before_done() -> None:
    _, events = run(TEXT_STREAM, include_usage=True)
    assert events[-2]["choices"] == [] and events[-2]["usage"]["total_tokens"] == 7
    assert sum(1 for e in events if e != "[DONE]" and "usage" in e) == 1
    _, plain = run(TEXT_STREAM)
    assert all("usage" not in e for e in plain if e != "[DONE]")


def test_done_waits_for_eof_not_for_the_finish() -> None:
    conv = chat_stream("c", 1, "m", False)
    out = conv.feed(TEXT_STREAM)
    assert b"[DONE]" not in out and not conv.done
    assert conv.close().endswith(b"data: [DONE]\n\n") and conv.done


def test_a_repeated_finish_gives_one_finish_chunk_and_nothing_after_it() -> None:
    stream = sse(chunk({"text": "a"}, finish="STOP"), chunk({"text": "late"}, finish="STOP", usage=USAGE),
                 chunk({"text": ""}, finish="STOP"))
    conv, events = run(stream, include_usage=True)
    assert deltas(events) == [(0, {"role": "assistant", "content": ""}, None), (0, {"content": "a"}, None),
                              (0, {}, "stop")]
    assert conv.usage["total_tokens"] == 7, "usage still read after the finish"


def test_thought_parts_are_reasoning_content_and_empty_texts_give_no_delta() -> None:
    stream = sse(chunk({"text": "hmm", "thought": True}), chunk({"text": ""}, {"text": "x", "thoughtSignature": "s"},
                                                             finish="STOP"))
    _, events = run(stream)
    assert [d for _, d, _ in deltas(events)] == [{"role": "assistant", "content": ""}, {"reasoning_content": "hmm"},
                                                 {"content": "x"}, {}]


def joined_calls(got: list[tuple[int, dict, str | None]], choice: int = 0) -> list[dict]:
    """The tool calls of one choice as a client joins the deltas (by index, arguments appended)."""
    calls: dict[int, dict] = {}
    for index, delta, _ in got:
        for c in delta.get("tool_calls", ()) if index == choice else ():
            if c["index"] not in calls:
                calls[c["index"]] = {**c, "function": dict(c["function"])}
            else:
                calls[c["index"]]["function"]["arguments"] += c["function"]["arguments"]
    return [calls[i] for i in sorted(calls)]


def test_function_calls_stream_as_a_start_and_their_whole_arguments_with_stable_distinct_indexes() -> None:
    stream = sse(
        chunk({"text": "Let me check."}),
        chunk({"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
              {"functionCall": {"name": "now"}}),
        chunk({"functionCall": {"name": "time", "args": {"tz": "UTC"}, "id": "g-1"}}, finish="STOP"),
    )
    _, events = run(stream)
    got = deltas(events)
    deltas_of_calls = [d["tool_calls"] for _, d, _ in got if "tool_calls" in d]
    assert [len(c) for c in deltas_of_calls] == [1] * 6
    starts = [c[0] for c in deltas_of_calls if "id" in c[0]]
    assert [(c["index"], c["function"]["arguments"]) for c in starts] == [(0, ""), (1, ""), (2, "")]
    calls = joined_calls(got)
    assert [c["index"] for c in calls] == [0, 1, 2]
    assert [c["function"] for c in calls] == [
        {"name": "weather", "arguments": '{"city":"Paris"}'},
        {"name": "now", "arguments": "{}"},
        {"name": "time", "arguments": '{"tz":"UTC"}'},
    ]
    assert {c["type"] for c in calls} == {"function"}
    ids = [c["id"] for c in calls]
    assert len(set(ids)) == 3 and ids[2] == "g-1" and ids[0].startswith("call_")
    assert calls[0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert "extra_content" not in calls[1]
    assert got[1] == (0, {"content": "Let me check."}, None)
    assert got[-1] == (0, {}, "tool_calls")


def test_text_before_a_function_call_in_one_event_keeps_its_order() -> None:
    _, events = run(sse(chunk({"text": "a"}, {"functionCall": {"name": "f"}}, {"text": "b"}, finish="STOP")))
    kinds = [next(iter(d)) for _, d, _ in deltas(events)[1:-1]]
    assert kinds == ["content", "tool_calls", "content", "tool_calls"]  # the last: the call's "{}" at the finish


@pytest.mark.parametrize(("reason", "finish"), [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
                                                ("RECITATION", "content_filter"), ("OTHER", "stop")])
def test_stream_finish_reasons_map(reason: str, finish: str) -> None:
    _, events = run(sse(chunk({"text": "x"}, finish=reason)))
    assert deltas(events)[-1] == (0, {}, finish)


def test_two_candidates_each_get_a_role_chunk_and_one_finish() -> None:
    stream = sse(
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}, {"content": {"parts": [{"text": "b"}]}, "index": 1}]},
        {"candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP"},
                        {"content": {"parts": [{"functionCall": {"name": "f"}}]}, "finishReason": "STOP", "index": 1}]},
    )
    conv, events = run(stream)
    got = deltas(events)
    assert [g for g in got if g[0] == 0] == [(0, {"role": "assistant", "content": ""}, None), (0, {"content": "a"}, None),
                                             (0, {"content": "!"}, None), (0, {}, "stop")]
    assert [g[2] for g in got if g[0] == 1] == [None, None, None, None, "tool_calls"]
    assert [c["function"] for c in joined_calls(got, 1)] == [{"name": "f", "arguments": "{}"}]
    assert conv.done


def test_eof_before_every_choice_finished_is_not_done() -> None:
    conv, events = run(sse(chunk({"text": "a"}), chunk({"text": "b"})))
    assert not conv.done and "[DONE]" not in events
    assert conv.error is None and conv.invalid is None
    two = sse({"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},
                              {"content": {"parts": [{"text": "b"}]}, "index": 1}]})
    conv, _ = run(two)
    assert not conv.done


def test_an_empty_stream_is_not_done() -> None:
    conv, events = run(b"")
    assert not conv.done and events == []


def test_an_error_object_after_200_sets_error_and_stops() -> None:
    error = {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
    conv = chat_stream("c", 1, "m", True)
    out = conv.feed(sse(chunk({"text": "a"}), {"error": error}, chunk({"text": "b"}, finish="STOP")))
    assert conv.error == error
    assert [d for _, d, _ in deltas(payloads(out))] == [{"role": "assistant", "content": ""}, {"content": "a"}]
    assert conv.close() == b"" and not conv.done


@pytest.mark.parametrize("bad", [b"data: {not json\r\n\r\n", b"data: [1, 2]\r\n\r\n", b"data: [DONE]\r\n\r\n"])
def test_garbage_sets_invalid(bad: bytes) -> None:
    conv = chat_stream("c", 1, "m", False)
    conv.feed(sse(chunk({"text": "a"})) + bad)
    assert conv.invalid is not None
    assert conv.close() == b"" and not conv.done


def test_a_stream_cut_inside_an_event_is_invalid_at_close() -> None:
    conv = chat_stream("c", 1, "m", False)
    conv.feed(sse(chunk({"text": "a"}, finish="STOP"))[:-3])
    assert conv.close() == b""
    assert conv.invalid is not None and not conv.done


def test_a_blocked_prompt_sets_blocked_and_error_and_sends_nothing() -> None:
    conv = chat_stream("c", 1, "m", True)
    out = conv.feed(sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                         "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}))
    assert out == b""
    assert conv.decoder.blocked == "PROHIBITED_CONTENT"
    assert conv.error["code"] == "content_filter" and "PROHIBITED_CONTENT" in conv.error["message"]
    assert conv.usage["prompt_tokens"] == 9


def test_usage_is_the_last_usage_metadata_seen_and_none_before() -> None:
    conv = chat_stream("c", 1, "m", False)
    assert conv.usage is None
    conv.feed(sse(chunk({"text": "a"}, usage={"promptTokenCount": 5, "cachedContentTokenCount": 2})))
    assert conv.usage["prompt_tokens"] == 5 and conv.usage["prompt_tokens_details"] == {"cached_tokens": 2}
    conv.feed(sse(chunk({"text": "b"}, usage={"promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 1})))
    assert conv.usage["completion_tokens"] == 3


def test_a_stream_without_usage_metadata_still_sends_a_usage_chunk_when_asked() -> None:
    _, events = run(sse(chunk({"text": "a"}, finish="STOP")), include_usage=True)
    assert events[-2]["usage"]["total_tokens"] == 0


@pytest.mark.parametrize("pieces", [1, 2, 3, 5, 7])
def test_any_split_of_the_stream_gives_the_same_events(pieces: int) -> None:
    stream = sse(chunk({"text": "héllo 你好 "}), chunk({"functionCall": {"name": "f", "args": {"q": "🎉"}, "id": "x"}}),
                 chunk({"text": "wörld"}, finish="STOP", usage=USAGE))
    whole = run(stream, include_usage=True)[1]
    assert run(stream, include_usage=True, pieces=pieces)[1] == whole


# ------------------------------------------------------------------ embeddings


def test_embedding_inputs() -> None:
    assert embedding_inputs({"input": "a"}) == ["a"]
    assert embedding_inputs({"input": ["a", "b"]}) == ["a", "b"]
    for tokens in ([1, 2, 3], [[1, 2], [3]], ["a", 1], []):
        with pytest.raises(InvalidInput) as info:
            embedding_inputs({"input": tokens})
        assert info.value.param == "input"


def test_embed_request_is_one_request_per_text() -> None:
    assert embed_request(["a", "b"], "models/e", None) == {"requests": [
        {"model": "models/e", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/e", "content": {"parts": [{"text": "b"}]}},
    ]}
    assert embed_request(["a"], "models/e", 8)["requests"][0]["outputDimensionality"] == 8


def test_embed_answer_as_floats_and_as_openai_base64() -> None:
    answer = {"embeddings": [{"values": [0.5, -0.25, 1]}, {"values": [0.125, 0, 2.5]}]}
    floats = embed_answer(answer, 2, "gemini-embedding-001", False, 6)
    assert floats == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25, 1]},
                 {"object": "embedding", "index": 1, "embedding": [0.125, 0, 2.5]}],
        "model": "gemini-embedding-001",
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    encoded = embed_answer(answer, 2, "m", True, 6)["data"][1]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(encoded)) == (0.125, 0.0, 2.5)


def test_embed_answer_with_the_wrong_count_is_none() -> None:
    assert embed_answer({"embeddings": [{"values": [1.0]}]}, 2, "m", False, 1) is None
    assert embed_answer({"embeddings": [{"nope": 1}]}, 1, "m", False, 1) is None
    assert embed_answer({}, 1, "m", False, 1) is None


def test_estimate_tokens() -> None:
    assert estimate_tokens(["", "abcd", "abcde"]) == 1 + 1 + 2


# ------------------------------------------------------------------ properties

_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_names = st.sampled_from(["weather", "time", "search", "lookup"])
_args = st.dictionaries(st.sampled_from(["a", "b", "city"]), st.one_of(st.integers(-(2**53), 2**53), _text), max_size=2)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict]:
    """System, user (text and images), assistant (text and tool calls) and tool messages;
    every tool result answers a call made before it."""
    messages: list[dict] = []
    open_calls: list[str] = []
    n = 0
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["system", "user", "assistant", "tool"] if open_calls else ["system", "user", "assistant"]))
        if kind == "system":
            messages.append({"role": draw(st.sampled_from(["system", "developer"])), "content": draw(_text)})
        elif kind == "user":
            parts = draw(st.lists(st.one_of(
                _text.map(lambda t: {"type": "text", "text": t}),
                st.sampled_from(["https://x.test/a.png", "data:image/webp;base64,UklGRg=="]).map(
                    lambda u: {"type": "image_url", "image_url": {"url": u}}),
            ), min_size=1, max_size=3))
            messages.append({"role": "user", "content": parts if draw(st.booleans()) or len(parts) > 1 or
                             parts[0]["type"] != "text" else parts[0]["text"]})
        elif kind == "assistant":
            calls = []
            for _ in range(draw(st.integers(0, 3))):
                n += 1
                args = draw(_args)
                signature = draw(st.one_of(st.none(), st.just(f"sig{n}")))
                tool_call = call(f"call_{n}", draw(_names), orjson.dumps(args).decode() if args else "")
                if signature:
                    tool_call["extra_content"] = {"google": {"thought_signature": signature}}
                calls.append(tool_call)
                open_calls.append(tool_call["id"])
            message: dict[str, Any] = {"role": "assistant", "content": draw(st.one_of(st.none(), _text))}
            if calls:
                message["tool_calls"] = calls
            messages.append(message)
        else:
            call_id = draw(st.sampled_from(open_calls))
            result = draw(st.one_of(_text, _args.map(lambda a: orjson.dumps(a).decode())))
            messages.append({"role": "tool", "tool_call_id": call_id, "content": result})
    return messages


def openai_atoms(messages: list[dict]) -> tuple[list, list]:
    """What a conversation says, in order: system texts apart, then everything else."""
    system, rest = [], []
    names = {}
    for m in messages:
        role, content = m["role"], m.get("content")
        if role in ("system", "developer"):
            system.append(content)
            continue
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for part in content if role != "tool" and content else ():
            if part["type"] == "text":
                rest.append(("user" if role == "user" else "model", "text", part["text"]))
            else:
                rest.append(("user", "image", part["image_url"]["url"]))
        for c in m.get("tool_calls") or ():
            names[c["id"]] = c["function"]["name"]
            args = c["function"]["arguments"]
            sig = (c.get("extra_content") or {}).get("google", {}).get("thought_signature")
            rest.append(("model", "call", c["function"]["name"], orjson.loads(args) if args else {}, sig))
        if role == "tool":
            try:
                parsed = orjson.loads(content[0]["text"])
            except orjson.JSONDecodeError:
                parsed = None
            response = parsed if isinstance(parsed, dict) else {"content": content[0]["text"]}
            rest.append(("user", "result", names[m["tool_call_id"]], response))
    return system, rest


def gemini_atoms(body: dict) -> tuple[list, list]:
    """The inverse: what a generateContent body says, in order."""
    system = [p["text"] for p in body.get("systemInstruction", {}).get("parts", [])]
    rest = []
    for content in body["contents"]:
        role = content["role"]
        for part in content["parts"]:
            if "text" in part:
                rest.append((role, "text", part["text"]))
            elif "inlineData" in part:
                data = part["inlineData"]
                rest.append((role, "image", f"data:{data['mimeType']};base64,{data['data']}"))
            elif "fileData" in part:
                rest.append((role, "image", part["fileData"]["fileUri"]))
            elif "functionCall" in part:
                fc = part["functionCall"]
                rest.append((role, "call", fc["name"], fc["args"], part.get("thoughtSignature")))
            else:
                fr = part["functionResponse"]
                rest.append((role, "result", fr["name"], fr["response"]))
    return system, rest


@settings(max_examples=200, deadline=None)
@given(conversations())
def test_a_conversation_keeps_every_content_its_order_and_tool_call_links(messages: list[dict]) -> None:
    body = chat_request({"model": "m", "messages": messages})
    assert gemini_atoms(body) == openai_atoms(messages)
    roles = [c["role"] for c in body["contents"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), "user and model turns alternate"
    assert all(c["parts"] for c in body["contents"])


@st.composite
def gemini_streams(draw: st.DrawFn) -> tuple[list[dict], dict]:
    """Stream events of one candidate, and the whole answer they add up to."""
    events, parts = [], []
    for i in range(draw(st.integers(1, 6))):
        part = draw(st.one_of(
            _text.map(lambda t: {"text": t}),
            st.tuples(_names, _args).map(lambda na, i=i: {"functionCall": {"name": na[0], "args": na[1], "id": f"id{i}"}}),
        ))
        parts.append(part)
        events.append(chunk(part))
    finish = draw(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY"]))
    events[-1]["candidates"][0]["finishReason"] = finish
    answer = {"candidates": [{"content": {"parts": parts}, "finishReason": finish, "index": 0}]}
    return events, answer


@settings(max_examples=150, deadline=None)
@given(gemini_streams(), st.lists(st.integers(1, 9), min_size=1, max_size=40))
def test_joined_stream_deltas_equal_the_whole_answer_however_the_bytes_are_split(
    stream: tuple[list[dict], dict], cuts: list[int]
) -> None:
    events, answer = stream
    raw = sse(*events)
    conv = chat_stream("c", 1, "m", True)
    out, pos, k = b"", 0, 0
    while pos < len(raw):
        size = cuts[k % len(cuts)]
        out += conv.feed(raw[pos : pos + size])
        pos, k = pos + size, k + 1
    out += conv.close()
    assert conv.done
    got = deltas(payloads(out))
    content = "".join(d.get("content") or "" for _, d, _ in got)
    calls = joined_calls(got)
    whole = convert(answer)["choices"][0]
    assert content == (whole["message"]["content"] or "")
    assert [{k: v for k, v in c.items() if k != "index"} for c in calls] == whole["message"].get("tool_calls", [])
    assert [c["index"] for c in calls] == list(range(len(calls)))
    assert [f for _, _, f in got if f] == [whole["finish_reason"]]


# ------------------------------------------------------------------ decoder: events


def decode(raw: bytes, cuts: list[int] | None = None, id: str | None = None) -> tuple[GeminiDecoder, list[tuple]]:
    """Feed ``raw`` to a decoder over a Recorder, cut at ``cuts``, then close; (decoder, events)."""
    rec = Recorder()
    dec = GeminiDecoder(rec, id)
    prev = 0
    for cut in [*(cuts or ()), len(raw)]:
        dec.feed(raw[prev:cut])
        prev = cut
    dec.close()
    return dec, rec.events


def answer_events(answer: dict, id: str | None = None) -> list[tuple]:
    rec = Recorder()
    read_answer(answer, rec, id)
    return rec.events


def test_the_decoder_turns_a_stream_into_events_and_ends_it_at_close() -> None:
    raw = sse({**chunk({"text": "Hel"}, usage={"promptTokenCount": 4}), "responseId": "r-1"},
              chunk({"text": "lo"}, {"text": "!"}, finish="STOP", usage=USAGE))
    rec = Recorder()
    dec = GeminiDecoder(rec)
    dec.feed(raw)
    assert not dec.done and ("end",) not in rec.events, "Gemini has no end marker: EOF is the end"
    dec.close()
    assert dec.done and dec.error is None and dec.invalid is None and dec.blocked is None
    assert rec.events == [
        ("start", "r-1"),
        ("usage", 4, 0, 0, 0, 0),
        ("text", 0, "Hel"),
        ("usage", 4, 3, 0, 0, 0),
        ("text", 0, "lo!"),
        ("finish", 0, "stop", None),
        ("end",),
    ]


def test_the_id_given_is_the_start_id_and_without_a_response_id_it_is_none() -> None:
    raw = sse({**chunk({"text": "a"}, finish="STOP"), "responseId": "r-1"})
    assert decode(raw, id="chatcmpl-7")[1][0] == ("start", "chatcmpl-7")
    assert decode(sse(chunk({"text": "a"}, finish="STOP")))[1][0] == ("start", None)


def test_thought_parts_are_reasoning_and_neighbours_of_one_kind_are_one_event() -> None:
    raw = sse(chunk({"text": "plan ", "thought": True}, {"text": "more", "thought": True}, {"text": "Hi", "thoughtSignature": "s"},
                    {"text": ""}, {"text": " there"}, {"text": "again", "thought": True}),
              chunk({"text": "?", "thought": True, "functionCall": {"name": "not-a-call"}}, finish="STOP",
                    usage={"promptTokenCount": 5, "candidatesTokenCount": 2, "thoughtsTokenCount": 9}))
    _, events = decode(raw)
    assert events == [
        ("start", None),
        ("reasoning", 0, "plan more"),
        ("text", 0, "Hi there"),
        ("reasoning", 0, "again"),
        ("usage", 5, 11, 0, 0, 9),
        ("reasoning", 0, "?"),
        ("finish", 0, "stop", None),
        ("end",),
    ]


def test_parallel_function_calls_are_tool_starts_with_whole_arguments() -> None:
    raw = sse(chunk({"text": "Checking."},
                    {"functionCall": {"name": "weather", "args": {"city": "Zürich"}}, "thoughtSignature": "c2ln"},
                    {"functionCall": {"name": "now", "args": {}}},
                    {"text": "and"},
                    {"functionCall": {"name": "time", "args": {"tz": "UTC"}, "id": "g-1"}}, finish="STOP"))
    _, events = decode(raw)
    ids = [e[3] for e in events if e[0] == "tool_start"]
    assert all(re.fullmatch(r"call_[0-9a-f]{24}", i) for i in ids[:2]) and ids[0] != ids[1] and ids[2] == "g-1"
    assert events == [
        ("start", None),
        ("text", 0, "Checking."),
        ("tool_start", 0, 0, ids[0], "weather", {"extra_content": {"google": {"thought_signature": "c2ln"}}}),
        ("tool_args", 0, 0, '{"city":"Zürich"}'),
        ("tool_start", 0, 1, ids[1], "now", None),
        ("text", 0, "and"),
        ("tool_start", 0, 2, "g-1", "time", None),
        ("tool_args", 0, 2, '{"tz":"UTC"}'),
        ("finish", 0, "tool_calls", None),
        ("end",),
    ]


def test_two_candidates_are_two_choices_each_with_its_calls_and_one_finish() -> None:
    raw = sse(
        {"candidates": [{"content": {"parts": [{"text": "a"}]}},
                        {"content": {"parts": [{"functionCall": {"name": "f", "id": "x"}}]}, "index": 1}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "g", "id": "y"}}]}, "index": 1,
                         "finishReason": "STOP"}]},
        {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS"},
                        {"content": {"parts": [{"text": "late"}]}, "finishReason": "STOP", "index": 1}]},
    )
    dec, events = decode(raw)
    assert dec.done
    assert events == [
        ("start", None),
        ("text", 0, "a"),
        ("tool_start", 1, 0, "x", "f", None),
        ("tool_start", 1, 1, "y", "g", None),
        ("finish", 1, "tool_calls", None),
        ("text", 0, "b"),
        ("finish", 0, "length", None),
        ("end",),
    ]


def test_end_only_when_every_choice_finished() -> None:
    one_open = sse({"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},
                                   {"content": {"parts": [{"text": "b"}]}, "index": 1}]})
    dec, events = decode(one_open)
    assert not dec.done and ("end",) not in events
    only_second = sse({"candidates": [{"content": {"parts": [{"text": "b"}]}, "index": 1, "finishReason": "STOP"}]})
    dec, events = decode(only_second)
    assert not dec.done and ("end",) not in events, "never an end without a finish of choice 0"
    dec, events = decode(b"")
    assert not dec.done and events == []


def test_a_repeated_finish_is_one_finish_and_usage_is_still_read() -> None:
    raw = sse(chunk({"text": "a"}, finish="STOP"), chunk({"text": "late"}, finish="STOP", usage=USAGE))
    _, events = decode(raw)
    assert events == [("start", None), ("text", 0, "a"), ("finish", 0, "stop", None), ("usage", 4, 3, 0, 0, 0),
                      ("end",)]


def test_usage_counts_cached_tokens_once_and_ignores_what_is_not_a_count() -> None:
    meta = {"promptTokenCount": 110, "cachedContentTokenCount": 100, "candidatesTokenCount": 5,
            "thoughtsTokenCount": 7, "toolUsePromptTokenCount": 3}
    _, events = decode(sse(chunk({"text": "a"}, finish="STOP", usage=meta)))
    assert events[1] == ("usage", 13, 12, 100, 0, 7)
    _, events = decode(sse(chunk({"text": "a"}, finish="STOP", usage={"promptTokenCount": True, "candidatesTokenCount": "4"})))
    assert events[1] == ("usage", 0, 0, 0, 0, 0)
    assert usage_from({"promptTokenCount": True, "candidatesTokenCount": 2})["prompt_tokens"] == 0


def test_the_decoder_stops_at_an_error_object_a_block_and_garbage() -> None:
    error = {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
    dec, events = decode(sse(chunk({"text": "a"}), {"error": error}, chunk({"text": "b"}, finish="STOP")))
    assert dec.error == error and not dec.done and events == [("start", None), ("text", 0, "a")]
    dec.feed(sse(chunk({"text": "c"})))
    assert ("text", 0, "c") not in events
    dec, events = decode(sse({"promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "why"},
                              "usageMetadata": {"promptTokenCount": 9}}))
    assert dec.blocked == "SAFETY: why" and dec.error["code"] == "content_filter" and not dec.done
    assert events == [("start", None), ("usage", 9, 0, 0, 0, 0)]
    dec, events = decode(sse(chunk({"text": "a"})) + b"data: [1]\r\n\r\n" + sse(chunk({"text": "b"}, finish="STOP")))
    assert dec.invalid == "an event is not a JSON object" and not dec.done and ("text", 0, "b") not in events
    dec, _ = decode(sse(chunk({"text": "a"}, finish="STOP"))[:-3])
    assert dec.invalid is not None and not dec.done


def test_one_byte_writes_give_the_same_events() -> None:
    raw = sse(chunk({"text": "héllo 你好 "}), chunk({"functionCall": {"name": "f", "args": {"q": "🎉"}, "id": "x"}}),
              chunk({"text": "wörld", "thought": True}, finish="STOP", usage=USAGE))
    assert decode(raw, list(range(1, len(raw))))[1] == decode(raw)[1]


def test_read_answer_gives_the_events_of_a_whole_answer() -> None:
    answer = {
        "responseId": "r-9",
        "candidates": [
            {"content": {"parts": [{"text": "hmm", "thought": True}, {"text": "Hello "}, {"text": "world"},
                                   {"functionCall": {"name": "f", "args": {"a": 1}, "id": "c"}}]}},
            {"content": {"parts": [{"text": "b"}]}, "finishReason": "SAFETY", "index": 1},
            {"content": {"parts": [{"text": "dup"}]}, "index": 1},
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
    }
    assert answer_events(answer) == [
        ("start", "r-9"),
        ("usage", 3, 2, 0, 0, 0),
        ("reasoning", 0, "hmm"),
        ("text", 0, "Hello world"),
        ("tool_start", 0, 0, "c", "f", None),
        ("tool_args", 0, 0, '{"a":1}'),
        ("finish", 0, "tool_calls", None),
        ("text", 1, "b"),
        ("finish", 1, "content_filter", None),
        ("end",),
    ]
    assert answer_events(answer, "chatcmpl-1")[0] == ("start", "chatcmpl-1")


def test_read_answer_of_a_blocked_prompt_is_a_content_filter_finish() -> None:
    assert answer_events({"promptFeedback": {"blockReason": "SAFETY"}}) == [
        ("start", None), ("usage", 0, 0, 0, 0, 0), ("finish", 0, "content_filter", None), ("end",)]


@settings(max_examples=150, deadline=None)
@given(gemini_streams(), st.lists(st.integers(1, 9), min_size=1, max_size=40))
def test_any_split_gives_the_same_events_and_they_add_up_to_the_whole_answer(
    stream: tuple[list[dict], dict], cuts: list[int]
) -> None:
    events, answer = stream
    raw = sse(*events)
    positions, pos, k = [], 0, 0
    while pos < len(raw):
        pos += cuts[k % len(cuts)]
        k += 1
        if pos < len(raw):
            positions.append(pos)
    dec, got = decode(raw, positions)
    assert dec.done and got == decode(raw)[1]
    merged: list[tuple] = []
    for event in got:
        if merged and event[0] == "text" and merged[-1][0] == "text":
            merged[-1] = ("text", 0, merged[-1][2] + event[2])
        else:
            merged.append(event)
    assert merged == [e for e in answer_events(answer) if e[0] != "usage"]


# ------------------------------------------------------------------ request: shared rules


@pytest.mark.parametrize("stop", [5, ["a", None], {"a": 1}, True])
def test_a_stop_that_is_not_strings_is_invalid_input(stop: Any) -> None:
    invalid("stop", user("go"), stop=stop)


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [0, -1, "5", True, 2.5])
def test_a_token_limit_that_is_not_a_positive_integer_is_invalid_input(name: str, value: Any) -> None:
    invalid(name, user("go"), **{name: value})


def test_embedding_inputs_name_gemini_when_they_refuse() -> None:
    with pytest.raises(InvalidInput, match="^Gemini embeds text only"):
        embedding_inputs({"input": [1, 2]})
