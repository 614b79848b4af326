"""The OpenAI chat encoders: events in, chat.completion.chunk events or one chat.completion out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel

from gw._fast.chat import DONE_EVENT, ChatAnswer, ChatChunks, chat_id
from gw._fast.rules import make_usage
from tests.fast.wire import chunk_event, usage_event

MODEL = "claude-sonnet-4"
CREATED = 1700000000
# Fields gw adds that the openai SDK's types keep as extras.
EXTRAS = {"reasoning_content", "extra_content"}


def extras(value: Any) -> set[str]:
    """The names of every extra (unknown) field in a validated model, at any depth."""
    found: set[str] = set()
    if isinstance(value, BaseModel):
        found |= set(value.model_extra or ())
        for name in type(value).model_fields:
            found |= extras(getattr(value, name))
    elif isinstance(value, list):
        for item in value:
            found |= extras(item)
    return found


def strict_chunk(obj: dict) -> ChatCompletionChunk:
    chunk = ChatCompletionChunk.model_validate(obj, strict=True)
    assert extras(chunk) <= EXTRAS, extras(chunk)
    return chunk


def strict_answer(obj: dict) -> ChatCompletion:
    answer = ChatCompletion.model_validate(obj, strict=True)
    assert extras(answer) <= EXTRAS, extras(answer)
    return answer


def events(out: bytes) -> list[Any]:
    """Each `data: ...` event of ``out``, parsed ("[DONE]" as the string); each chunk validated."""
    result: list[Any] = []
    assert out.endswith(b"\n\n") or not out
    for block in out.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: "), block
        body = block[6:]
        if body == b"[DONE]":
            result.append("[DONE]")
        else:
            obj = orjson.loads(body)
            strict_chunk(obj)
            result.append(obj)
    return result


def deltas(chunks: list[Any]) -> list[tuple[int, dict, str | None]]:
    return [(c["index"], c["delta"], c["finish_reason"]) for e in chunks if e != "[DONE]" for c in e["choices"]]


def chunks_of(include_usage: bool = False) -> ChatChunks:
    return ChatChunks(CREATED, MODEL, include_usage)


# ------------------------------------------------------------------ ids


@pytest.mark.parametrize(
    ("given", "expected"),
    [("chatcmpl-abc", "chatcmpl-abc"), ("msg_01XYZ", "chatcmpl-msg_01XYZ"), ("c", "chatcmpl-c")],
)
def test_an_id_gets_the_chatcmpl_prefix_once(given, expected):
    assert chat_id(given) == expected


@pytest.mark.parametrize("given", [None, "", 7])
def test_no_id_gets_a_new_one(given):
    made = chat_id(given)
    assert made.startswith("chatcmpl-") and len(made) == len("chatcmpl-") + 24
    assert chat_id(given) != made


def test_every_chunk_has_the_same_id_created_and_model():
    enc = chunks_of(include_usage=True)
    enc.start("msg_1")
    enc.text(0, "a")
    enc.finish(0, "stop", None)
    enc.end()
    chunks = [e for e in events(enc.take()) if e != "[DONE]"]
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks} == {
        ("chatcmpl-msg_1", "chat.completion.chunk", CREATED, MODEL)
    }
    assert enc.id == "chatcmpl-msg_1"


# ------------------------------------------------------------------ stream


def test_start_alone_writes_nothing():
    enc = chunks_of(include_usage=True)
    enc.start("msg_1")
    enc.usage(10, 0, 0, 0, 0)
    assert enc.take() == b""
    assert enc.started and not enc.finished and not enc.ended


def test_the_role_chunk_comes_with_the_first_text_byte_for_byte_the_plain_orjson_chunk():
    enc = ChatChunks(5, 'odd "model" é', False)
    enc.start('msg_"quoted"')
    enc.text(0, 'a "q" \n é')
    enc.text(0, "🎉")
    cid = 'chatcmpl-msg_"quoted"'
    assert enc.take() == (
        chunk_event(cid, 5, 'odd "model" é', {"role": "assistant", "content": ""})
        + chunk_event(cid, 5, 'odd "model" é', {"content": 'a "q" \n é'})
        + chunk_event(cid, 5, 'odd "model" é', {"content": "🎉"})
    )
    enc.finish(0, "length", None)
    assert enc.take() == chunk_event(cid, 5, 'odd "model" é', {}, "length")


def test_a_finish_without_content_gives_the_role_chunk_then_the_finish():
    enc = chunks_of()
    enc.start("m")
    enc.finish(0, "length", None)
    enc.end()
    chunks = events(enc.take())
    assert deltas(chunks) == [(0, {"role": "assistant", "content": ""}, None), (0, {}, "length")]
    assert chunks[-1] == "[DONE]"
    assert enc.finished and enc.ended


def test_reasoning_is_reasoning_content_deltas():
    enc = chunks_of()
    enc.start("m")
    enc.reasoning(0, "Let me think")
    enc.text(0, "Yes.")
    enc.finish(0, "stop", None)
    assert [d for _, d, _ in deltas(events(enc.take()))] == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Let me think"},
        {"content": "Yes."},
        {},
    ]


def test_empty_texts_give_nothing_not_even_the_role_chunk():
    enc = chunks_of()
    enc.start("m")
    enc.text(0, "")
    enc.reasoning(0, "")
    assert enc.take() == b""


def test_a_tool_call_without_arguments_gets_empty_object_arguments_at_the_finish():
    enc = chunks_of()
    enc.start("m")
    enc.tool_start(0, 0, "toolu_1", "now", None)
    first = deltas(events(enc.take()))
    assert first == [
        (0, {"role": "assistant", "content": ""}, None),
        (0, {"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function",
                             "function": {"name": "now", "arguments": ""}}]}, None),
    ]  # fmt: skip
    enc.finish(0, "tool_calls", None)
    assert deltas(events(enc.take())) == [
        (0, {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}, None),
        (0, {}, "tool_calls"),
    ]


def test_two_parallel_tool_calls_keep_their_indexes_and_only_the_one_without_arguments_gets_empty_ones():
    enc = chunks_of()
    enc.start("m")
    enc.text(0, "Checking.")
    enc.tool_start(0, 0, "call_A", "weather", None)
    enc.tool_args(0, 0, '{"city": ')
    enc.tool_start(0, 1, "call_B", "now", None)
    enc.tool_args(0, 0, '"Paris"}')
    enc.tool_args(0, 0, "")
    enc.finish(0, "tool_calls", None)
    calls = [tc for _, d, _ in deltas(events(enc.take())) for tc in d.get("tool_calls", ())]
    assert [(c["index"], c.get("id"), c["function"]) for c in calls] == [
        (0, "call_A", {"name": "weather", "arguments": ""}),
        (0, None, {"arguments": '{"city": '}),
        (1, "call_B", {"name": "now", "arguments": ""}),
        (0, None, {"arguments": '"Paris"}'}),
        (1, None, {"arguments": "{}"}),
    ]
    joined: dict[int, str] = {}
    for c in calls:
        joined[c["index"]] = joined.get(c["index"], "") + c["function"]["arguments"]
    assert {i: orjson.loads(a) for i, a in joined.items()} == {0: {"city": "Paris"}, 1: {}}


def test_extra_is_merged_into_the_tool_call_object():
    enc = chunks_of()
    enc.start("m")
    enc.tool_start(0, 0, "call_1", "f", {"extra_content": {"google": {"thought_signature": "c2ln"}}})
    enc.tool_args(0, 0, '{"a":1}')
    call = deltas(events(enc.take()))[1][1]["tool_calls"][0]
    assert call == {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""},
                    "extra_content": {"google": {"thought_signature": "c2ln"}}}  # fmt: skip


def test_a_fragment_of_a_call_that_never_started_is_dropped():
    enc = chunks_of()
    enc.start("m")
    enc.text(0, "x")
    enc.take()
    enc.tool_args(0, 3, '{"a":1}')
    assert enc.take() == b""


def test_the_usage_chunk_comes_only_when_asked_just_before_done_and_counts_reasoning():
    for include in (False, True):
        enc = chunks_of(include)
        enc.start("msg_1")
        enc.text(0, "x")
        enc.usage(10, 7, 100, 20, 3)
        enc.finish(0, "stop", None)
        enc.end()
        out = enc.take()
        usage = make_usage(10, 7, 100, 20, 3)
        assert usage["completion_tokens_details"] == {"reasoning_tokens": 3}
        chunks = events(out)
        assert chunks[-1] == "[DONE]" and out.endswith(DONE_EVENT)
        if include:
            assert out.endswith(usage_event("chatcmpl-msg_1", CREATED, MODEL, usage) + DONE_EVENT)
            assert sum(1 for c in chunks if c != "[DONE]" and "usage" in c) == 1
        else:
            assert all("usage" not in c for c in chunks if c != "[DONE]")
        assert enc.openai_usage() == usage


def test_the_usage_chunk_counts_zero_when_no_usage_came():
    enc = chunks_of(True)
    enc.start("m")
    enc.finish(0, "stop", None)
    enc.end()
    assert events(enc.take())[-2]["usage"] == make_usage(0, 0)


def test_two_choices_each_get_a_role_chunk_their_own_tool_indexes_and_one_finish():
    enc = chunks_of()
    enc.start("chatcmpl-9")
    enc.text(0, "a")
    enc.text(1, "b")
    enc.tool_start(1, 0, "call_1", "f", None)
    enc.text(0, "!")
    enc.finish(0, "stop", None)
    assert enc.finished
    enc.tool_start(1, 1, "call_2", "g", None)
    enc.tool_args(1, 1, "{}")
    enc.finish(1, "tool_calls", None)
    enc.end()
    got = deltas(events(enc.take()))
    assert [g for g in got if g[0] == 0] == [
        (0, {"role": "assistant", "content": ""}, None), (0, {"content": "a"}, None),
        (0, {"content": "!"}, None), (0, {}, "stop"),
    ]  # fmt: skip
    one = [g for g in got if g[0] == 1]
    assert one[0] == (1, {"role": "assistant", "content": ""}, None)
    assert [tc["index"] for _, d, _ in one for tc in d.get("tool_calls", ())] == [0, 1, 1, 0]
    assert one[-2][1] == {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}
    assert one[-1] == (1, {}, "tool_calls")


def test_a_finished_choice_takes_no_more_events_and_end_is_written_once():
    enc = chunks_of()
    enc.start("m")
    enc.text(0, "a")
    enc.finish(0, "stop", None)
    enc.take()
    enc.text(0, "late")
    enc.tool_start(0, 0, "c", "f", None)
    enc.finish(0, "length", None)
    assert enc.take() == b""
    enc.end()
    enc.end()
    assert enc.take() == DONE_EVENT


def test_events_without_start_still_make_valid_chunks_with_a_new_id():
    enc = chunks_of()
    enc.text(0, "a")
    chunks = events(enc.take())
    assert chunks[0]["id"].startswith("chatcmpl-") and chunks[0]["id"] == chunks[1]["id"] == enc.id


def test_a_reason_outside_openais_four_still_goes_out_as_given():
    enc = chunks_of()
    enc.start("m")
    enc.finish(0, "function_call", None)
    assert deltas(events(enc.take()))[-1] == (0, {}, "function_call")


# ------------------------------------------------------------------ whole answer


def answer_of(*calls: tuple) -> dict:
    enc = ChatAnswer(CREATED, MODEL)
    for name, *args in calls:
        getattr(enc, name)(*args)
    out = enc.answer()
    strict_answer(out)
    return out


def test_a_text_answer_is_todays_chat_completion():
    out = answer_of(("start", "msg_01ABC"), ("text", 0, "Hello "), ("text", 0, "world"),
                    ("usage", 10, 5, 100, 20, 0), ("finish", 0, "stop", None), ("end",))  # fmt: skip
    assert out == {
        "id": "chatcmpl-msg_01ABC",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                  "prompt_tokens_details": {"cached_tokens": 100}},
    }  # fmt: skip


def test_tool_calls_without_text_have_null_content_and_joined_or_empty_object_arguments():
    out = answer_of(
        ("start", "chatcmpl-1"),
        ("tool_start", 0, 0, "toolu_1", "get_weather", None),
        ("tool_args", 0, 0, '{"city":'),
        ("tool_args", 0, 0, '"Paris"}'),
        ("tool_start", 0, 1, "toolu_2", "now", {"extra_content": {"google": {"thought_signature": "s"}}}),
        ("finish", 0, "tool_calls", None),
    )
    message = out["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": "{}"},
         "extra_content": {"google": {"thought_signature": "s"}}},
    ]  # fmt: skip
    assert out["choices"][0]["finish_reason"] == "tool_calls"


def test_text_and_tool_calls_keep_the_text_and_nothing_at_all_is_an_empty_string():
    both = answer_of(("start", "m"), ("text", 0, "On it."), ("tool_start", 0, 0, "c", "f", None),
                     ("finish", 0, "tool_calls", None))  # fmt: skip
    assert both["choices"][0]["message"]["content"] == "On it."
    empty = answer_of(("start", "m"), ("finish", 0, "stop", None))
    assert empty["choices"][0]["message"] == {"role": "assistant", "content": "", "refusal": None}


def test_reasoning_is_the_messages_reasoning_content_and_its_tokens_are_counted():
    out = answer_of(("start", "m"), ("reasoning", 0, "Step 1. "), ("reasoning", 0, "Step 2."), ("text", 0, "42"),
                    ("usage", 3, 9, 0, 0, 6), ("finish", 0, "stop", None))  # fmt: skip
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "42", "refusal": None,
                                            "reasoning_content": "Step 1. Step 2."}  # fmt: skip
    assert out["usage"]["completion_tokens_details"] == {"reasoning_tokens": 6}


def test_no_usage_is_zeros_and_no_finish_is_stop_or_tool_calls():
    out = answer_of(("start", "m"), ("text", 0, "a"))
    assert out["usage"] == make_usage(0, 0)
    assert out["choices"][0]["finish_reason"] == "stop"
    tools = answer_of(("start", "m"), ("tool_start", 0, 0, "c", "f", None))
    assert tools["choices"][0]["finish_reason"] == "tool_calls"


def test_choices_come_in_index_order_and_no_event_no_choice():
    out = answer_of(("start", "m"), ("text", 1, "b"), ("text", 0, "a"), ("finish", 1, "length", None),
                    ("finish", 0, "stop", None))  # fmt: skip
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in out["choices"]] == [
        (0, "a", "stop"), (1, "b", "length"),
    ]  # fmt: skip
    assert answer_of(("start", "m"))["choices"] == []


def test_the_answer_id_follows_chat_id():
    assert answer_of(("start", "chatcmpl-x"))["id"] == "chatcmpl-x"
    assert answer_of(("start", "msg_1"))["id"] == "chatcmpl-msg_1"
    assert answer_of(("start", None))["id"].startswith("chatcmpl-")


# ------------------------------------------------------------------ the stream adds up to the answer

_text = st.text(min_size=1, max_size=8)


@st.composite
def answers(draw: st.DrawFn) -> list[tuple]:
    """The events of one answer of 1 to 3 choices, interleaved, after start and before end."""
    per_choice = []
    for choice in range(draw(st.integers(1, 3))):
        ops: list[tuple] = []
        calls = 0
        for kind, value in draw(st.lists(st.tuples(st.sampled_from(["text", "reasoning", "tool"]), _text), max_size=6)):
            if kind == "tool":
                extra = draw(st.none() | st.just({"extra_content": {"google": {"thought_signature": value}}}))
                ops.append(("tool_start", choice, calls, f"call_{choice}_{calls}", value, extra))
                ops += [("tool_args", choice, calls, f) for f in draw(st.lists(_text, max_size=3))]
                calls += 1
            else:
                ops.append((kind, choice, value))
        ops.append(("finish", choice, draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter"])), None))
        per_choice.append(ops)
    events_: list[tuple] = [("start", draw(st.none() | st.just("msg_1") | st.just("chatcmpl-2")))]
    while any(per_choice):
        i = draw(st.sampled_from([k for k, ops in enumerate(per_choice) if ops]))
        events_.append(per_choice[i].pop(0))
    counts = draw(st.none() | st.tuples(*[st.integers(0, 10**6)] * 5))
    if counts is not None:
        events_.insert(draw(st.integers(1, len(events_))), ("usage", *counts))
    events_.append(("end",))
    return events_


@settings(max_examples=150, deadline=None)
@given(answers())
def test_every_chunk_validates_and_the_chunks_add_up_to_the_whole_answer(evs):
    stream = ChatChunks(CREATED, MODEL, True)
    whole = ChatAnswer(CREATED, MODEL)
    for name, *args in evs:
        getattr(stream, name)(*args)
        getattr(whole, name)(*args)
    chunks = events(stream.take())
    answer = whole.answer()
    strict_answer(answer)
    assert chunks[-1] == "[DONE]" and chunks[-2]["choices"] == [] and chunks[-2]["usage"] == answer["usage"]
    ids = {c["id"] for c in chunks[:-1]}
    assert len(ids) == 1 and (evs[0][1] is None or ids == {answer["id"]})
    got = deltas(chunks)
    for choice in answer["choices"]:
        mine = [(d, f) for i, d, f in got if i == choice["index"]]
        assert mine[0] == ({"role": "assistant", "content": ""}, None)
        assert [f for _, f in mine] == [None] * (len(mine) - 1) + [choice["finish_reason"]]
        message = choice["message"]
        assert "".join(d.get("content", "") for d, _ in mine[1:]) == (message["content"] or "")
        assert "".join(d.get("reasoning_content", "") for d, _ in mine) == message.get("reasoning_content", "")
        calls: dict[int, dict] = {}
        for d, _ in mine:
            for tc in d.get("tool_calls", ()):
                if "id" in tc:
                    calls[tc["index"]] = {k: v for k, v in tc.items() if k != "index"}
                else:
                    calls[tc["index"]]["function"]["arguments"] += tc["function"]["arguments"]
        assert [calls[i] for i in sorted(calls)] == message.get("tool_calls", [])
