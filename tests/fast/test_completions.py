"""Legacy completions on chat-only backends: gw._fast.convert's completion helpers."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gw._fast.convert import (
    CompletionStream,
    InvalidInput,
    chat_to_completion,
    chunk_event,
    completion_to_chat,
    usage_event,
)


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


def test_chat_answer_becomes_text_completion():
    answer = {
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 5, "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "length"},
            {"index": 1, "message": {"role": "assistant", "content": None}, "finish_reason": "stop"},
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip
    assert chat_to_completion(answer) == {
        "id": "cmpl-abc", "object": "text_completion", "created": 5, "model": "m",
        "choices": [
            {"text": "hi", "index": 0, "logprobs": None, "finish_reason": "length"},
            {"text": "", "index": 1, "logprobs": None, "finish_reason": "stop"},
        ],
        "usage": answer["usage"],
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
    out = _events(CompletionStream().feed(_chat_stream(["héllo ", "wörld"], True)))
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
    whole = CompletionStream().feed(raw)
    conv = CompletionStream()
    pieces, pos = [], 0
    for cut in cuts:
        pieces.append(conv.feed(raw[pos : pos + cut]))
        pos += cut
    pieces.append(conv.feed(raw[pos:]))
    assert b"".join(pieces) == whole
