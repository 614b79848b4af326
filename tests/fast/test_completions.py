"""Legacy completions on chat-only backends: gw._fast.completions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import Completion
from pydantic import ValidationError

from gw._fast.chat import ChatChunks
from gw._fast.completions import (
    CompletionAnswer,
    CompletionChunks,
    completion_id,
    completion_to_chat,
)
from gw._fast.events import Converter
from gw._fast.openai import ChatDecoder, read_answer
from gw._fast.rules import InvalidInput, make_usage
from tests.fast.wire import chunk_event, usage_event


def test_prompt_becomes_one_user_message_and_shared_fields_are_kept():
    body = {
        "model": "m", "prompt": "Say hi", "max_tokens": 5, "temperature": 0.2, "top_p": 0.9, "n": 2,
        "stop": ["\n"], "seed": 7, "user": "u1", "stream": True, "stream_options": {"include_usage": True},
        "presence_penalty": 0.1, "frequency_penalty": 0.2, "logit_bias": {"50256": -100},
    }  # fmt: skip
    chat = completion_to_chat(body)
    assert chat["messages"] == [{"role": "user", "content": "Say hi"}]
    assert {k: v for k, v in chat.items() if k != "messages"} == {k: v for k, v in body.items() if k != "prompt"}


def test_a_list_of_one_prompt_is_that_prompt():
    assert completion_to_chat({"model": "m", "prompt": ["one"]})["messages"][0]["content"] == "one"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [1, 2]}, "prompt"),
        ({"prompt": 3}, "prompt"),
        ({"suffix": "tail"}, "suffix"),
        ({"echo": True}, "echo"),
        ({"best_of": 2}, "best_of"),
        ({"logprobs": 0}, "logprobs"),
    ],
)
def test_what_chat_cannot_express_is_invalid_input(extra, param):
    with pytest.raises(InvalidInput) as info:
        completion_to_chat({"model": "m", "prompt": "x", **extra})
    assert info.value.param == param


@pytest.mark.parametrize("extra", [{"suffix": ""}, {"echo": False}, {"best_of": 1}, {"logprobs": None}])
def test_neutral_values_of_those_fields_are_accepted(extra):
    assert completion_to_chat({"model": "m", "prompt": "x", **extra})["messages"][0]["content"] == "x"


def completion_stream(include_usage: bool) -> Converter:
    """What gw runs for a completions client on a backend that answers in chat chunks."""
    encoder = CompletionChunks(1, "m", include_usage)
    return Converter(ChatDecoder(encoder), encoder)


def test_a_chat_answer_read_into_the_completion_encoder_is_a_text_completion():
    answer = {
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 5, "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "length"},
            {"index": 1, "message": {"role": "assistant", "content": None}, "finish_reason": "stop"},
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip
    encoder = CompletionAnswer(5, "m")
    read_answer(answer, encoder)
    assert encoder.answer() == {
        "id": "cmpl-abc", "object": "text_completion", "created": 5, "model": "m",
        "choices": [
            {"text": "hi", "index": 0, "logprobs": None, "finish_reason": "length"},
            {"text": "", "index": 1, "logprobs": None, "finish_reason": "stop"},
        ],
        "usage": make_usage(1, 1),
    }  # fmt: skip


def _chat_stream(words: list[str], with_usage: bool) -> bytes:
    out = [chunk_event("chatcmpl-1", 1, "m", {"role": "assistant", "content": ""})]
    out += [chunk_event("chatcmpl-1", 1, "m", {"content": w}) for w in words]
    out.append(chunk_event("chatcmpl-1", 1, "m", {}, "stop"))
    if with_usage:
        out.append(usage_event("chatcmpl-1", 1, "m", {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def _events(raw: bytes) -> list[bytes]:
    return [e[len(b"data: ") :] for e in raw.split(b"\n\n") if e]


def test_stream_drops_the_role_chunk_and_maps_text_finish_usage_and_done():
    out = _events(completion_stream(True).feed(_chat_stream(["héllo ", "wörld"], True)))
    assert out[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in out[:-1]]
    assert [c["choices"] for c in chunks] == [
        [{"text": "héllo ", "index": 0, "logprobs": None, "finish_reason": None}],
        [{"text": "wörld", "index": 0, "logprobs": None, "finish_reason": None}],
        [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        [],
    ]
    assert all(c["object"] == "text_completion" and c["id"] == "cmpl-1" for c in chunks)
    assert chunks[-1]["usage"]["total_tokens"] == 3


@given(st.lists(st.integers(min_value=1, max_value=9), max_size=40))
def test_any_split_of_the_chat_stream_gives_the_same_completion_events(cuts):
    raw = _chat_stream(["héllo ", "wörld ", "€"], True)
    whole = completion_stream(True).feed(raw)
    conv = completion_stream(True)
    pieces, pos = [], 0
    for cut in cuts:
        pieces.append(conv.feed(raw[pos : pos + cut]))
        pos += cut
    pieces.append(conv.feed(raw[pos:]))
    assert b"".join(pieces) == whole


# ------------------------------------------------------------------ the encoders

CREATED = 1700000000


def strict(obj: dict) -> Completion:
    completion = Completion.model_validate(obj, strict=True)
    assert not completion.model_extra
    for choice in completion.choices:
        assert not choice.model_extra
    return completion


def strict_chunk(obj: dict) -> None:
    """``strict`` for a stream chunk. The SDK's ``CompletionChoice`` has no null
    ``finish_reason``, yet OpenAI's own stream chunks carry null until the last
    (the SDK builds them without validation): a null is checked to be the only
    error."""
    with_reasons = {**obj, "choices": [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in obj["choices"]]}
    strict(with_reasons)
    if with_reasons != obj:
        with pytest.raises(ValidationError) as info:
            strict(obj)
        errors = info.value.errors()
        assert {(e["loc"][2], e["input"]) for e in errors} == {("finish_reason", None)}


def chunks(out: bytes) -> list[Any]:
    """Each event's data ("[DONE]" as the string), each chunk validated strictly."""
    result: list[Any] = []
    for body in _events(out):
        if body == b"[DONE]":
            result.append("[DONE]")
        else:
            obj = orjson.loads(body)
            strict_chunk(obj)
            result.append(obj)
    return result


def drive(enc: Any, evs: list[tuple]) -> Any:
    for name, *args in evs:
        getattr(enc, name)(*args)
    return enc


@pytest.mark.parametrize(
    ("given", "expected"),
    [("chatcmpl-abc", "cmpl-abc"), ("cmpl-abc", "cmpl-abc"), ("msg_1", "cmpl-msg_1"), ("chatcmpl-", "cmpl-chatcmpl-")],
)
def test_completion_ids(given, expected):
    assert completion_id(given) == expected


def test_no_id_gets_a_new_one():
    assert completion_id(None).startswith("cmpl-") and len(completion_id(None)) == len("cmpl-") + 24


def test_nothing_goes_out_before_the_first_text_and_reasoning_and_tool_calls_are_dropped():
    enc = CompletionChunks(CREATED, "m", True)
    drive(enc, [("start", "chatcmpl-1"), ("usage", 1, 0, 0, 0, 0), ("reasoning", 0, "hmm"),
                ("tool_start", 0, 0, "c", "f", None), ("tool_args", 0, 0, "{}")])  # fmt: skip
    assert enc.take() == b""
    enc.text(0, "Hi")
    assert chunks(enc.take()) == [{
        "id": "cmpl-1", "object": "text_completion", "created": CREATED, "model": "m",
        "choices": [{"text": "Hi", "index": 0, "logprobs": None, "finish_reason": None}],
    }]  # fmt: skip


def test_the_finish_chunk_has_empty_text_and_a_chat_only_reason_is_stop():
    for reason, sent in (("stop", "stop"), ("length", "length"), ("content_filter", "content_filter"),
                         ("tool_calls", "stop")):  # fmt: skip
        enc = drive(CompletionChunks(CREATED, "m", False), [("start", "x"), ("finish", 0, reason, None), ("end",)])
        out = chunks(enc.take())
        assert out[0]["choices"] == [{"text": "", "index": 0, "logprobs": None, "finish_reason": sent}]
        assert out[1:] == ["[DONE]"]


def test_the_usage_chunk_comes_only_when_asked():
    evs = [("start", "chatcmpl-1"), ("text", 0, "a"), ("usage", 4, 2, 1, 0, 0), ("finish", 0, "stop", None), ("end",)]
    quiet = chunks(drive(CompletionChunks(CREATED, "m", False), evs).take())
    assert all("usage" not in c for c in quiet[:-1]) and quiet[-1] == "[DONE]"
    loud = chunks(drive(CompletionChunks(CREATED, "m", True), evs).take())
    assert loud[-2]["choices"] == [] and loud[-2]["usage"] == make_usage(4, 2, 1) and loud[-1] == "[DONE]"


def test_two_choices_carry_their_index_and_finish_once_each():
    enc = drive(CompletionChunks(CREATED, "m", False), [
        ("start", "x"), ("text", 0, "a"), ("text", 1, "b"), ("finish", 1, "length", None), ("text", 1, "late"),
        ("finish", 0, "stop", None), ("finish", 0, "stop", None), ("end",), ("end",)])  # fmt: skip
    got = [(c["index"], c["text"], c["finish_reason"]) for e in chunks(enc.take()) if e != "[DONE]" for c in e["choices"]]
    assert got == [(0, "a", None), (1, "b", None), (1, "", "length"), (0, "", "stop")]


def test_the_whole_answer_is_todays_text_completion():
    evs = [("start", "chatcmpl-abc"), ("text", 0, "hi"), ("text", 0, " there"), ("reasoning", 0, "x"),
           ("finish", 0, "length", None), ("finish", 1, "stop", None), ("usage", 1, 1, 0, 0, 0), ("end",)]  # fmt: skip
    out = drive(CompletionAnswer(5, "m"), evs).answer()
    strict(out)
    assert out == {
        "id": "cmpl-abc", "object": "text_completion", "created": 5, "model": "m",
        "choices": [
            {"text": "hi there", "index": 0, "logprobs": None, "finish_reason": "length"},
            {"text": "", "index": 1, "logprobs": None, "finish_reason": "stop"},
        ],
        "usage": make_usage(1, 1),
    }  # fmt: skip


def test_an_answer_without_usage_or_finish_counts_zero_and_stops():
    out = drive(CompletionAnswer(5, "m"), [("start", None), ("text", 0, "a")]).answer()
    strict(out)
    assert out["usage"] == make_usage(0, 0) and out["choices"][0]["finish_reason"] == "stop"


_words = st.text(min_size=1, max_size=6)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["text", "reasoning", "tool"]), _words), max_size=12),
    st.sampled_from(["stop", "length", "content_filter"]),
    st.booleans(),
)
def test_the_encoder_writes_the_same_from_the_events_as_from_their_chat_chunks(ops, reason, include_usage):
    evs: list[tuple] = [("start", "chatcmpl-7")]
    calls = [0, 0]
    for choice, kind, value in ops:
        if kind == "tool":
            evs.append(("tool_start", choice, calls[choice], f"call_{calls[choice]}", value, None))
            calls[choice] += 1
        else:
            evs.append((kind, choice, value))
    evs += [("usage", 5, 3, 2, 1, 0), ("finish", 0, reason, None), ("finish", 1, reason, None), ("end",)]
    direct = drive(CompletionChunks(CREATED, "m", include_usage), evs).take()
    encoder = CompletionChunks(CREATED, "m", include_usage)
    via_chat = Converter(ChatDecoder(encoder), encoder).feed(drive(ChatChunks(CREATED, "m", include_usage), evs).take())
    assert direct == via_chat
    chunks(direct)
