import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gw._fast.convert import (
    DONE_EVENT,
    IS_DONE,
    MAY_HAVE_ERROR,
    MAY_HAVE_FINISH,
    MAY_HAVE_USAGE,
    NOT_OBJECT,
    OpenAIStream,
    classify_chunk,
    error_event,
    sse_data,
)
from gw._fast.sse import SSEDecoder
from tests.fast.wire import chunk_event, usage_event


def payload(event: bytes) -> object:
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    return orjson.loads(event[len(b"data: ") : -2])


def test_flags_are_distinct_bits() -> None:
    assert (IS_DONE, MAY_HAVE_USAGE, MAY_HAVE_ERROR, MAY_HAVE_FINISH) == (1, 2, 4, 8)


def test_sse_data_frames_a_payload() -> None:
    assert sse_data(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert sse_data(b"") == b"data: \n\n"


def test_done_event_is_the_openai_terminator() -> None:
    assert DONE_EVENT == b"data: [DONE]\n\n"


def test_error_event_wraps_the_error_object() -> None:
    error = {"message": "upstream reset", "type": "api_error", "param": None, "code": None}
    assert payload(error_event(error)) == {"error": error}


def test_an_error_event_is_one_sse_event_whatever_its_message() -> None:
    events = SSEDecoder().feed(error_event({"message": "a\n\nb\r"}) + DONE_EVENT)
    assert len(events) == 2
    assert orjson.loads(events[0].data) == {"error": {"message": "a\n\nb\r"}}
    assert events[-1].data == b"[DONE]"


# classify_chunk


def test_done_with_surrounding_whitespace_is_done() -> None:
    assert classify_chunk(b"[DONE]") == IS_DONE
    assert classify_chunk(b" \t[DONE]\r\n ") == IS_DONE


@pytest.mark.parametrize("data", [b"[DONE", b"[done]", b"x[DONE]", b"", b"  ", b'"[DONE]"'])
def test_other_payloads_are_not_done(data: bytes) -> None:
    assert not classify_chunk(data) & IS_DONE


def test_a_content_delta_has_no_flags() -> None:
    data = chunk_event("c", 1, "m", {"content": "Hello"})[6:-2]
    assert classify_chunk(data) == 0


def test_null_usage_is_not_flagged_and_an_object_is() -> None:
    assert classify_chunk(b'{"id":"c","choices":[{"delta":{}}],"usage":null}') == 0
    assert classify_chunk(b'{"choices":[],"usage": {"prompt_tokens":1}}') == MAY_HAVE_USAGE
    assert classify_chunk(b'{"choices":[],"usage" :\n\t{"prompt_tokens":1}}') == MAY_HAVE_USAGE
    assert classify_chunk(usage_event("c", 1, "m", {"total_tokens": 1})[6:-2]) == MAY_HAVE_USAGE


def test_keys_quoted_inside_a_string_are_not_flagged() -> None:
    content = '{"usage":{"x":1},"error":{"m":1},"finish_reason":"stop"}'
    data = chunk_event("c", 1, "m", {"content": content})[6:-2]
    assert b'\\"usage\\":{' in data
    assert classify_chunk(data) == 0


def test_the_word_usage_as_a_string_value_is_not_flagged() -> None:
    assert classify_chunk(b'{"delta":{"content":"usage"},"x":{}}') == 0


def test_finish_reason_null_is_not_flagged_and_a_string_is() -> None:
    assert classify_chunk(chunk_event("c", 1, "m", {}, None)[6:-2]) == 0
    assert classify_chunk(chunk_event("c", 1, "m", {}, "stop")[6:-2]) == MAY_HAVE_FINISH
    assert classify_chunk(b'{"finish_reason" : "length"}') == MAY_HAVE_FINISH


def test_error_objects_and_strings_are_flagged_and_null_is_not() -> None:
    assert classify_chunk(error_event({"message": "boom", "type": "server_error"})[6:-2]) == MAY_HAVE_ERROR
    assert classify_chunk(b'{"error": "overloaded"}') == MAY_HAVE_ERROR
    assert classify_chunk(b'{"error":null}') == 0


def test_all_three_keys_set_all_three_flags() -> None:
    data = b'{"choices":[{"finish_reason":"stop"}],"usage":{"a":1},"error":{"m":1}}'
    assert classify_chunk(data) == MAY_HAVE_USAGE | MAY_HAVE_ERROR | MAY_HAVE_FINISH


@pytest.mark.parametrize(
    "data", [b'{"usage"', b'{"usage":', b'{"usage": ', b'"', b'{"finish_reason"', b'{"error" :  ', b'{"usag']
)
def test_a_payload_cut_short_is_not_an_object(data: bytes) -> None:
    assert classify_chunk(data) == NOT_OBJECT


@pytest.mark.parametrize(
    "data", [b'{"usage"}', b'{"usage":}', b'{"usage": }', b'{"}', b'{"finish_reason"}', b'{"error" :  }', b'{"usag}']
)
def test_keys_without_a_value_before_the_end_are_not_flagged_and_do_not_overrun(data: bytes) -> None:
    assert classify_chunk(data) == 0


@pytest.mark.parametrize("data", [b"{not json", b"<html>", b"", b"  ", b"[1,2]", b'"text"', b"null"])
def test_garbage_and_non_objects_are_flagged_not_object(data: bytes) -> None:
    assert classify_chunk(data) == NOT_OBJECT


_keys = st.sampled_from(["usage", "error", "finish_reason", "content"]) | st.text(max_size=15)
_strings = st.sampled_from(['"usage":{', '\\"error": "x', "finish_reason", "[DONE]"]) | st.text()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _strings,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_keys, children, max_size=3),
    max_leaves=10,
)


@given(json_values)
def test_flags_never_miss_what_a_json_parse_finds(value: object) -> None:
    # No false negatives: a key the caller would act on always sets its flag.
    data = orjson.dumps(value)
    flags = classify_chunk(data)
    found = set()

    def walk(v: object) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if k == "usage" and isinstance(x, dict):
                    found.add(MAY_HAVE_USAGE)
                if k == "error" and isinstance(x, (dict, str)):
                    found.add(MAY_HAVE_ERROR)
                if k == "finish_reason" and isinstance(x, str):
                    found.add(MAY_HAVE_FINISH)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    if not isinstance(value, dict):
        assert flags == NOT_OBJECT
        return
    walk(value)
    for flag in found:
        assert flags & flag
    # ...and here, where the bytes come from orjson, none is a false positive.
    assert flags == sum(found)


def test_none_is_a_type_error_not_a_crash() -> None:
    with pytest.raises(TypeError):
        classify_chunk(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sse_data(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        classify_chunk("[DONE]")  # type: ignore[arg-type]


def _openai_stream(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + p + b"\n\n" for p in payloads)


_ROLE = b'{"id":"c","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"usage":null}'
_TEXT = b'{"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}'
_STOP = b'{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}'
_USAGE = b'{"id":"c","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}'


def test_openai_stream_forwards_the_upstream_bytes_unchanged_and_learns_usage() -> None:
    stream = _openai_stream(_ROLE, _TEXT, _STOP, _USAGE, b"[DONE]")
    watch = OpenAIStream(True)
    assert watch.feed(stream) == stream
    assert watch.done and watch.finished
    assert watch.usage == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
    assert watch.error is None and watch.invalid is None


def test_openai_stream_drops_the_usage_chunk_the_client_did_not_ask_for() -> None:
    watch = OpenAIStream(False)
    out = watch.feed(_openai_stream(_ROLE, _STOP, _USAGE, b"[DONE]"))
    assert out == _openai_stream(_ROLE, _STOP, b"[DONE]")
    assert watch.usage is not None and watch.usage["total_tokens"] == 3


@given(st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_openai_stream_split_anywhere_forwards_the_same_bytes(sizes: list[int]) -> None:
    stream = _openai_stream(_ROLE, _TEXT, _TEXT, _STOP, _USAGE, b"[DONE]")
    watch = OpenAIStream(True)
    out, pos, i = [], 0, 0
    while pos < len(stream):
        size = sizes[i % len(sizes)]
        out.append(watch.feed(stream[pos : pos + size]))
        pos += size
        i += 1
    assert b"".join(out) == stream and watch.done


def test_openai_stream_stops_at_an_error_event_after_forwarding_what_came_before() -> None:
    watch = OpenAIStream(False)
    out = watch.feed(_openai_stream(_ROLE, b'{"error":{"message":"overloaded","type":"server_error"}}', _TEXT))
    assert out == _openai_stream(_ROLE)
    assert watch.error == {"message": "overloaded", "type": "server_error"}


@pytest.mark.parametrize("garbage", [b"{not json", b"<html>oops</html>", b'{"a":1,}'])
def test_openai_stream_flags_garbage(garbage: bytes) -> None:
    watch = OpenAIStream(False)
    watch.feed(_openai_stream(_ROLE) + b"data: " + garbage + b"\n\n")
    # `{"a":1,}` is object-shaped with no key gw acts on: it passes unparsed,
    # like every plain content delta (the price of not parsing each event).
    assert (watch.invalid is not None) == (garbage != b'{"a":1,}')


def test_openai_stream_close_notes_a_stream_cut_inside_an_event() -> None:
    watch = OpenAIStream(False)
    watch.feed(_openai_stream(_ROLE) + b'data: {"id":"c","cho')
    assert watch.invalid is None
    watch.close()
    assert watch.invalid is not None and not watch.finished
