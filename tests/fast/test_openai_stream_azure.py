"""OpenAIStream and Azure's content-filter annotations: the one rewrite on the pass-through path.

Azure opens a stream with a chunk whose object/id/model are empty and created
is 0 (only ``prompt_filter_results``); its asynchronous filter adds annotation
chunks whose choices have no ``delta``. They go out in the stream's own names,
every other event as the upstream's bytes.
"""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from gw._fast.convert import OpenAIStream

FILTERS = {"hate": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}
PROMPT = orjson.dumps({
    "choices": [], "created": 0, "id": "", "model": "", "object": "",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTERS}],
})  # fmt: skip
IDENTITY = {
    "created": 1727000000,
    "id": "chatcmpl-AZ1",
    "model": "gpt-4o-2024-08-06",
    "object": "chat.completion.chunk",
}


def chunk(delta: dict | None, finish: str | None = None, **identity: object) -> bytes:
    choice: dict = {"content_filter_results": {}, "finish_reason": finish, "index": 0, "logprobs": None}
    if delta is not None:
        choice["delta"] = delta
    return orjson.dumps({"choices": [choice], **(identity or IDENTITY)})


def annotation(finish: str | None = None) -> bytes:
    return orjson.dumps({
        "choices": [{"content_filter_offsets": {"check_offset": 9, "end_offset": 9, "start_offset": 0},
                     "content_filter_results": FILTERS, "finish_reason": finish, "index": 0}],
        "created": 0, "id": "", "model": "", "object": "",
    })  # fmt: skip


ROLE = chunk({"role": "assistant", "content": ""})
TEXT = chunk({"content": "Hello"})
STOP = chunk({}, "stop")
USAGE = orjson.dumps(
    {"choices": [], **IDENTITY, "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
)


def sse(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + p + b"\n\n" for p in payloads)


def events(out: bytes) -> list:
    assert out.endswith(b"\n\n")
    return [p if p == b"[DONE]" else orjson.loads(p) for p in (e[6:] for e in out[:-2].split(b"\n\n"))]


def test_the_opening_prompt_filter_chunk_waits_for_the_first_answer_chunk_and_takes_its_names():
    watch = OpenAIStream(True)
    assert watch.feed(sse(PROMPT)) == b""
    out = watch.feed(sse(ROLE, TEXT))
    first = events(out)[0]
    assert first == {**orjson.loads(PROMPT), **IDENTITY}
    assert list(first) == list(orjson.loads(PROMPT))  # keys where Azure put them
    assert out.endswith(sse(ROLE, TEXT))  # the answer's own bytes
    assert watch.feed(sse(STOP, USAGE, b"[DONE]")) == sse(STOP, USAGE, b"[DONE]")
    assert watch.done and watch.finished and watch.usage["total_tokens"] == 4


def test_async_filter_annotations_get_the_names_and_an_empty_delta():
    watch = OpenAIStream(False)
    out = watch.feed(sse(PROMPT, ROLE, TEXT, annotation(), STOP, annotation(), b"[DONE]"))
    objs = events(out)
    assert [o if o == b"[DONE]" else o["object"] for o in objs] == ["chat.completion.chunk"] * 6 + [b"[DONE]"]
    for i in (3, 5):
        (choice,) = objs[i]["choices"]
        assert choice["delta"] == {} and choice["content_filter_offsets"]["end_offset"] == 9
        assert {k: objs[i][k] for k in IDENTITY} == IDENTITY
    assert watch.done


def test_an_annotation_that_ends_the_answer_counts_as_its_finish():
    watch = OpenAIStream(False)
    watch.feed(sse(PROMPT, ROLE, annotation("content_filter")))
    assert watch.finished
    assert events(watch.close()) == [b"[DONE]"]


def test_completions_streams_get_text_completion_and_an_empty_text():
    ident = {"created": 5, "id": "cmpl-1", "model": "gpt-35-turbo-instruct", "object": "text_completion"}
    text = orjson.dumps({"choices": [{"text": "Hi", "index": 0, "finish_reason": None, "logprobs": None}], **ident})
    out = OpenAIStream(False).feed(sse(PROMPT, text, annotation(), b"[DONE]"))
    objs = events(out)
    assert objs[0]["object"] == objs[2]["object"] == "text_completion"
    assert objs[2]["choices"][0]["text"] == "" and objs[2]["id"] == "cmpl-1" and objs[2]["created"] == 5


def test_annotations_without_an_answer_chunk_after_them_are_dropped():
    watch = OpenAIStream(False)
    assert watch.feed(sse(PROMPT, b"[DONE]")) == sse(b"[DONE]")
    failed = OpenAIStream(False)
    assert failed.feed(sse(PROMPT, b'{"error":{"message":"overloaded"}}')) == b""
    assert failed.error == {"message": "overloaded"}


def test_a_stream_that_does_not_open_with_an_annotation_is_not_searched_for_one():
    # Azure annotates a stream from its first event or not at all: any other
    # stream pays one byte search, on its first event, and is forwarded as is.
    stream = sse(ROLE, annotation(), STOP, b"[DONE]")
    assert OpenAIStream(False).feed(stream) == stream


def test_plain_openai_streams_are_forwarded_byte_for_byte():
    plain = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    stream = sse(chunk({"role": "assistant"}, **plain), chunk({"content": '"object":""'}, **plain),
                 chunk({}, "stop", **plain), b"[DONE]")  # fmt: skip
    assert OpenAIStream(False).feed(stream) == stream


@given(st.lists(st.integers(1, 60), min_size=1, max_size=20))
def test_split_anywhere_gives_the_same_events(sizes: list[int]) -> None:
    stream = sse(PROMPT, ROLE, TEXT, annotation(), STOP, annotation(), USAGE, b"[DONE]")
    whole = OpenAIStream(True).feed(stream)
    watch = OpenAIStream(True)
    out, pos, i = [], 0, 0
    while pos < len(stream):
        size = sizes[i % len(sizes)]
        out.append(watch.feed(stream[pos : pos + size]))
        pos += size
        i += 1
    assert b"".join(out) == whole and watch.done
