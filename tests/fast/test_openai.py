"""OpenAI Chat Completions answers decoded into events: gw._fast.openai, stream and whole."""

from __future__ import annotations

import importlib.machinery
import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gw._fast.openai as openai_module
from gw._fast.convert import DONE_EVENT, sse_data
from gw._fast.events import Recorder
from gw._fast.openai import ChatDecoder, InvalidAnswer, read_answer
from tests.fast.wire import chunk_event, usage_event
from tests.strategies import ChatStream, bytewise, chat_streams, splits


def test_the_module_is_a_compiled_extension():
    assert openai_module.__file__ is not None
    assert openai_module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def chunk(delta: dict, finish: str | None = None, index: int = 0, **extra: object) -> bytes:
    event = chunk_event("chatcmpl-1", 1, "upstream-model", delta, finish, index)
    if not extra:
        return event
    obj = orjson.loads(event[6:])
    obj["choices"][0].update(extra)
    return sse_data(orjson.dumps(obj))


def usage(u: dict) -> bytes:
    return usage_event("chatcmpl-1", 1, "upstream-model", u)


def decode(*pieces: bytes, close: bool = True) -> tuple[list[tuple], ChatDecoder]:
    rec = Recorder()
    decoder = ChatDecoder(rec)
    for piece in pieces:
        decoder.feed(piece)
    if close:
        decoder.close()
    return rec.events, decoder


def call(index: int | None, call_id: str | None, name: str | None, arguments: str = "") -> dict:
    c: dict = {"type": "function", "function": {"arguments": arguments}}
    if index is not None:
        c["index"] = index
    if call_id is not None:
        c["id"] = call_id
    if name is not None:
        c["function"]["name"] = name
    return {"tool_calls": [c]}


# ---------------------------------------------------------------- stream: properties


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_stream_cut_anywhere_gives_its_events_in_order(data):
    stream: ChatStream = data.draw(chat_streams())
    events, decoder = decode(*data.draw(splits(stream.raw)))
    assert events == list(stream.events)
    assert decoder.done and decoder.error is None and decoder.invalid is None


@settings(max_examples=50, deadline=None)
@given(chat_streams())
def test_one_byte_writes_give_the_same_events(stream):
    events, decoder = decode(*bytewise(stream.raw))
    assert events == list(stream.events) and decoder.done


def _joined(events: list[tuple]) -> dict:
    """What the events say, whatever the pieces: text, reasoning, calls, finish, usage."""
    out: dict = {"text": "", "reasoning": "", "calls": {}, "finish": [], "usage": None, "start": [], "end": 0}
    for event in events:
        kind = event[0]
        if kind in ("text", "reasoning"):
            out[kind] += event[2]
        elif kind == "tool_start":
            out["calls"][event[2]] = [event[3], event[4], ""]
        elif kind == "tool_args":
            out["calls"][event[2]][2] += event[3]
        elif kind == "finish":
            out["finish"].append(event[1:])
        elif kind == "usage":
            out["usage"] = event[1:]
        elif kind == "start":
            out["start"].append(event[1])
        else:
            out["end"] += 1
    return out


@settings(max_examples=200, deadline=None)
@given(chat_streams())
def test_the_joined_stream_events_are_the_whole_answers_events(stream):
    rec = Recorder()
    read_answer(stream.answer, rec)
    assert rec.events[0] == ("start", stream.answer["id"]) and rec.events[-1] == ("end",)
    assert _joined(rec.events) == _joined(list(stream.events))


# ---------------------------------------------------------------- stream: events


def test_content_refusal_and_reasoning_become_text_and_reasoning_events():
    events, decoder = decode(
        chunk({"role": "assistant", "content": ""})
        + chunk({"reasoning_content": "think"})
        + chunk({"reasoning": "more"})  # vLLM's newer name
        + chunk({"reasoning_content": "", "reasoning": "both", "content": "Hi"})
        + chunk({"refusal": "no"})
        + chunk({}, "stop")
        + DONE_EVENT
    )
    assert events == [
        ("start", "chatcmpl-1"),
        ("reasoning", 0, "think"),
        ("reasoning", 0, "more"),
        ("reasoning", 0, "both"),
        ("text", 0, "Hi"),
        ("text", 0, "no"),
        ("finish", 0, "stop", None),
        ("end",),
    ]
    assert decoder.done


def test_tool_call_fragments_are_tool_start_then_tool_args():
    events, _ = decode(
        chunk(call(0, "call_a", "get_weather", '{"ci'))
        + chunk(call(0, None, None, 'ty": "Paris"}'))
        + chunk(call(1, "call_b", "now"))
        + chunk({}, "tool_calls")
        + DONE_EVENT
    )
    assert events[1:-2] == [
        ("tool_start", 0, 0, "call_a", "get_weather", None),
        ("tool_args", 0, 0, '{"ci'),
        ("tool_args", 0, 0, 'ty": "Paris"}'),
        ("tool_start", 0, 1, "call_b", "now", None),
    ]
    assert events[-2] == ("finish", 0, "tool_calls", None)


def test_tool_calls_are_indexed_in_start_order_whatever_the_servers_index():
    events, _ = decode(chunk(call(5, "a", "f", "{}")) + chunk(call(2, "b", "g", "{}")) + chunk({}, "stop") + DONE_EVENT)
    assert [e[:5] for e in events if e[0] == "tool_start"] == [("tool_start", 0, 0, "a", "f"), ("tool_start", 0, 1, "b", "g")]
    assert events[-2] == ("finish", 0, "tool_calls", None)  # a stop with tool calls


def test_tool_calls_without_an_index_are_told_apart_by_their_id():
    calls = [{"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":'}},
             {"id": "b", "type": "function", "function": {"name": "g", "arguments": '{"y":2}'}}]  # fmt: skip
    events, _ = decode(
        chunk({"tool_calls": calls}) + chunk({"tool_calls": [{"function": {"arguments": "1}"}}]})
        + chunk({}, "stop") + DONE_EVENT
    )  # fmt: skip
    assert events[1:-2] == [
        ("tool_start", 0, 0, "a", "f", None),
        ("tool_args", 0, 0, '{"x":'),
        ("tool_start", 0, 1, "b", "g", None),
        ("tool_args", 0, 1, '{"y":2}'),
        ("tool_args", 0, 1, "1}"),  # no index, no id: the last call's
    ]


def test_a_tool_call_without_an_id_gets_a_new_call_id_and_gemini_extra_content_is_kept():
    extra = {"google": {"thought_signature": "sig"}}
    delta = {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"a": 1}}, "extra_content": extra}]}
    events, _ = decode(chunk(delta) + chunk({}, "tool_calls") + DONE_EVENT)
    start = events[1]
    assert start[:3] == ("tool_start", 0, 0) and re.fullmatch(r"call_[0-9a-f]{24}", start[3])
    assert start[4:] == ("f", {"extra_content": extra})
    assert events[2] == ("tool_args", 0, 0, '{"a":1}')  # arguments sent as an object


def test_a_tool_call_that_starts_without_a_name_is_invalid():
    events, decoder = decode(chunk({"content": "x"}) + chunk(call(0, "c", None, "{}")) + chunk({}, "stop") + DONE_EVENT)
    assert decoder.invalid == "a tool call started without a function name"
    assert not decoder.done and ("end",) not in events


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("content_filter", "content_filter"),
     ("function_call", "tool_calls"), ("eos", "stop")],
)  # fmt: skip
def test_finish_reasons_are_normalised(raw, reason):
    events, _ = decode(chunk({"content": "x"}) + chunk({}, raw) + DONE_EVENT)
    assert events[-2] == ("finish", 0, reason, None)


def test_vllms_stop_reason_string_is_the_matched_stop_sequence_and_a_token_id_is_not():
    events, _ = decode(chunk({"content": "x"}) + chunk({}, "stop", stop_reason="###") + DONE_EVENT)
    assert events[-2] == ("finish", 0, "stop", "###")
    events, _ = decode(chunk({"content": "x"}) + chunk({}, "stop", stop_reason=128009) + DONE_EVENT)
    assert events[-2] == ("finish", 0, "stop", None)


def test_usage_is_uncached_input_output_cached_and_reasoning_tokens():
    u = {"prompt_tokens": 130, "completion_tokens": 50, "total_tokens": 180,
         "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 20}}  # fmt: skip
    events, _ = decode(chunk({}, "stop") + usage(u) + DONE_EVENT)
    assert events[-2] == ("usage", 30, 50, 100, 0, 20)
    events, _ = decode(chunk({}, "stop") + usage({"prompt_tokens": 7, "completion_tokens": True}) + DONE_EVENT)
    assert events[-2] == ("usage", 7, 0, 0, 0, 0)  # a boolean is no count


def test_usage_in_every_chunk_is_reported_each_time_and_null_usage_is_none():
    first = orjson.loads(chunk({"content": "a"})[6:])
    first["usage"] = {"prompt_tokens": 5, "completion_tokens": 1}
    second = orjson.loads(chunk({}, "stop")[6:])
    second["usage"] = None
    events, _ = decode(sse_data(orjson.dumps(first)) + sse_data(orjson.dumps(second)) + DONE_EVENT)
    assert events == [("start", "chatcmpl-1"), ("usage", 5, 1, 0, 0, 0), ("text", 0, "a"),
                      ("finish", 0, "stop", None), ("end",)]  # fmt: skip


def test_azures_first_chunk_without_id_or_choices_does_not_start_the_answer():
    azure = b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]}\n\n'
    events, decoder = decode(azure, close=False)
    assert events == [] and not decoder.done
    events, _ = decode(azure + chunk({"content": "x"}) + chunk({}, "stop") + DONE_EVENT)
    assert events[0] == ("start", "chatcmpl-1")


def test_a_chunk_without_an_id_starts_the_answer_with_none():
    events, _ = decode(b'data: {"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}\n\n' + DONE_EVENT)
    assert events == [("start", None), ("text", 0, "x"), ("finish", 0, "stop", None), ("end",)]


def test_each_choice_has_its_events_and_only_choice_0_must_finish():
    raw = (chunk({"content": "a"}) + chunk({"content": "b"}, index=1) + chunk(call(0, "c", "f", "{}"), index=1)
           + chunk({}, "stop") + DONE_EVENT)  # fmt: skip
    events, decoder = decode(raw)
    assert events == [
        ("start", "chatcmpl-1"),
        ("text", 0, "a"),
        ("text", 1, "b"),
        ("tool_start", 1, 0, "c", "f", None),
        ("tool_args", 1, 0, "{}"),
        ("finish", 0, "stop", None),
        ("end",),
    ]
    assert decoder.done


def test_a_choice_0_unfinished_at_done_is_invalid_even_if_another_finished():
    events, decoder = decode(chunk({"content": "a"}) + chunk({}, "stop", index=1) + DONE_EVENT)
    assert decoder.invalid == "the stream ended without a finish_reason"
    assert ("finish", 1, "stop", None) in events and ("end",) not in events and not decoder.done


def test_deltas_after_a_choices_finish_and_bytes_after_done_are_ignored():
    events, decoder = decode(chunk({}, "length") + chunk({"content": "late"}) + DONE_EVENT + chunk({"content": "later"}))
    assert events == [("start", "chatcmpl-1"), ("finish", 0, "length", None), ("end",)]
    decoder.feed(chunk({"content": "even later"}))
    assert decoder.done and decoder.invalid is None


def test_an_error_object_stops_decoding_after_what_came_before():
    events, decoder = decode(chunk({"content": "partial"}) + sse_data(b'{"error":{"message":"overloaded"}}')
                             + chunk({}, "stop") + DONE_EVENT)  # fmt: skip
    assert decoder.error == {"message": "overloaded"}
    assert events == [("start", "chatcmpl-1"), ("text", 0, "partial")]
    assert not decoder.done


def test_an_error_first_starts_nothing():
    events, decoder = decode(sse_data(b'{"error":"upstream said no"}'))
    assert events == [] and decoder.error == "upstream said no"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (chunk({"content": "x"}) + DONE_EVENT, "the stream ended without a finish_reason"),
        (chunk({"content": "x"}) + b"data: {not json\n\n", "an event is not valid JSON"),
        (chunk({"content": "x"}) + b"data: [1, 2]\n\n", "an event is not a JSON object"),
        (chunk({"content": "x"}) + b"data: done\n\n", "an event is not valid JSON"),
    ],
)
def test_bytes_that_are_not_the_protocol_are_invalid_and_never_end(raw, why):
    events, decoder = decode(raw)
    assert decoder.invalid == why
    assert not decoder.done and ("end",) not in events


def test_a_finished_stream_without_done_ends_at_close():
    rec = Recorder()
    decoder = ChatDecoder(rec)
    decoder.feed(chunk({"content": "x"}) + chunk({}, "stop") + usage({"prompt_tokens": 1, "completion_tokens": 1}))
    assert not decoder.done and rec.events[-1][0] == "usage"
    decoder.close()
    assert decoder.done and rec.events[-1] == ("end",)


def test_a_stream_cut_inside_an_event_is_invalid_at_close_and_an_unfinished_one_is_not_done():
    events, decoder = decode(chunk({"content": "x"}) + chunk({}, "stop")[:20])
    assert decoder.invalid is not None and not decoder.done and ("end",) not in events
    events, decoder = decode(chunk({"content": "x"}))
    assert decoder.invalid is None and not decoder.done and ("end",) not in events


# ---------------------------------------------------------------- whole answers


def completion(message: dict, finish: object = "stop", **fields: object) -> dict:
    return {"id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}], **fields}  # fmt: skip


def read(answer: dict) -> list[tuple]:
    rec = Recorder()
    read_answer(answer, rec)
    return rec.events


def test_a_whole_answer_is_the_events_of_its_stream():
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
             {"type": "function", "function": {"name": "g", "arguments": ""}}]  # fmt: skip
    u = {"prompt_tokens": 12, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 2},
         "completion_tokens_details": {"reasoning_tokens": 1}}  # fmt: skip
    events = read(completion({"content": "Hi", "reasoning_content": "hm", "tool_calls": calls}, "stop", usage=u))
    assert events[:6] == [
        ("start", "chatcmpl-9"),
        ("reasoning", 0, "hm"),
        ("text", 0, "Hi"),
        ("tool_start", 0, 0, "c1", "f", None),
        ("tool_args", 0, 0, '{"a":1}'),
        events[5],
    ]
    assert events[5][:3] == ("tool_start", 0, 1) and events[5][3].startswith("call_")
    assert events[6:] == [("finish", 0, "tool_calls", None), ("usage", 10, 3, 2, 0, 1), ("end",)]


def test_content_parts_are_joined_a_refusal_is_text_and_vllm_reasoning_is_reasoning():
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert read(completion({"content": parts}))[1] == ("text", 0, "ab")
    assert read(completion({"content": None, "refusal": "no"}, "content_filter"))[1:3] == [
        ("text", 0, "no"), ("finish", 0, "content_filter", None),
    ]  # fmt: skip
    assert read(completion({"content": "x", "reasoning": "r"}))[1] == ("reasoning", 0, "r")


def test_each_choice_of_a_whole_answer_has_its_events_and_stop_reason():
    answer = completion({"content": "a"})
    answer["choices"].append({"index": 1, "message": {"content": "b"}, "finish_reason": "length"})
    assert read(answer) == [
        ("start", "chatcmpl-9"),
        ("text", 0, "a"),
        ("finish", 0, "stop", None),
        ("text", 1, "b"),
        ("finish", 1, "length", None),
        ("end",),
    ]
    answer["choices"][0]["stop_reason"] = "END"
    assert read(answer)[2] == ("finish", 0, "stop", "END")


@pytest.mark.parametrize(
    "answer",
    [
        {"choices": []},
        {},
        {"choices": [{"finish_reason": "stop"}]},
        {"choices": ["x"]},
        completion({"tool_calls": ["x"]}),
        completion({"tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}),
        completion({"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 5}}]}),
    ],
)
def test_an_answer_that_is_not_a_chat_completion_is_an_invalid_answer(answer):
    with pytest.raises(InvalidAnswer):
        read(answer)
