import pytest
from hypothesis import given
from hypothesis import strategies as st

from gw._fast.sse import Event, NDJSONDecoder, SSEDecoder, SSEError
from tests.strategies import (
    Expected,
    NDJSONStream,
    SSEStream,
    bytewise,
    ndjson_streams,
    splits,
    sse_streams,
)


def feed_all(chunks: list[bytes], **kwargs: int) -> list[Event]:
    decoder = SSEDecoder(**kwargs)
    events = [ev for chunk in chunks for ev in decoder.feed(chunk)]
    decoder.close()
    return events


def meaning(events: list[Event]) -> list[Expected]:
    return [Expected(ev.event, ev.data, ev.id) for ev in events]


def one(stream: bytes) -> Event:
    events = feed_all([stream])
    assert len(events) == 1
    return events[0]


# Properties


def check_raw(stream: SSEStream, events: list[Event]) -> None:
    joined = b"".join(ev.raw for ev in events)
    assert stream.raw.startswith(joined)
    # A CR ending the last event may be dispatched before its LF arrives.
    end = stream.dispatched_end
    assert len(joined) == end or (len(joined) == end - 1 and stream.raw[end - 2 : end] == b"\r\n")


@given(sse_streams())
def test_a_whole_stream_gives_its_events_and_their_raw_bytes(stream: SSEStream) -> None:
    events = feed_all([stream.raw])
    assert meaning(events) == list(stream.events)
    assert b"".join(ev.raw for ev in events) == stream.raw[: stream.dispatched_end]


@given(sse_streams(), st.data())
def test_a_stream_split_anywhere_gives_the_same_events(stream: SSEStream, data: st.DataObject) -> None:
    events = feed_all(data.draw(splits(stream.raw)))
    assert meaning(events) == list(stream.events)
    check_raw(stream, events)


@given(sse_streams())
def test_a_stream_fed_byte_by_byte_gives_the_same_events(stream: SSEStream) -> None:
    events = feed_all(bytewise(stream.raw))
    assert meaning(events) == list(stream.events)
    check_raw(stream, events)


# Line ends


def test_crlf_split_across_reads_is_one_event() -> None:
    events = feed_all([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"])
    assert [ev.data for ev in events] == [b"a", b"b"]


def test_crlf_line_ends_are_accepted() -> None:
    ev = one(b"event: x\r\ndata: a\r\ndata: b\r\n\r\n")
    assert (ev.event, ev.data) == ("x", b"a\nb")


def test_cr_alone_ends_a_line() -> None:
    ev = one(b"event: x\rdata: a\rdata: b\r\r")
    assert (ev.event, ev.data, ev.raw) == ("x", b"a\nb", b"event: x\rdata: a\rdata: b\r\r")


def test_cr_at_the_end_of_a_read_dispatches_at_once() -> None:
    decoder = SSEDecoder()
    assert [ev.data for ev in decoder.feed(b"data: a\r\r")] == [b"a"]
    assert [ev.raw for ev in decoder.feed(b"\ndata: b\n\n")] == [b"\ndata: b\n\n"]


def test_mixed_line_ends_in_one_stream() -> None:
    events = feed_all([b"data: a\n\r\ndata: b\r\rdata: c\r\n\n"])
    assert [ev.data for ev in events] == [b"a", b"b", b"c"]


# Fields


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert one(b"data: {\ndata: \"a\": 1\ndata: }\n\n").data == b'{\n"a": 1\n}'


def test_one_space_after_the_colon_is_stripped_and_no_more() -> None:
    assert one(b"data:  two\n\n").data == b" two"
    assert one(b"data:none\n\n").data == b"none"


def test_a_line_without_colon_is_a_field_with_an_empty_value() -> None:
    assert one(b"data\ndata\n\n").data == b"\n"
    ev = one(b"event\ndata: x\n\n")
    assert (ev.event, ev.data) == ("", b"x")


def test_event_and_id_are_set_and_do_not_carry_over() -> None:
    a, b = feed_all([b"event: first\nid: 1\ndata: a\n\ndata: b\n\n"])
    assert (a.event, a.id, a.data) == ("first", "1", b"a")
    assert (b.event, b.id, b.data) == (None, None, b"b")


def test_an_event_without_data_lines_is_dispatched_with_empty_data() -> None:
    ev = one(b"event: ping\n\n")
    assert (ev.event, ev.data) == ("ping", b"")


def test_retry_and_unknown_fields_are_ignored() -> None:
    assert feed_all([b"retry: 3000\n\nfoo: bar\n\n"]) == []
    ev = one(b"retry: 10\nfoo: bar\ndata: x\n\n")
    assert (ev.event, ev.data, ev.id) == (None, b"x", None)


def test_field_values_are_utf8_even_when_split_inside_a_character() -> None:
    stream = "event: héllo 你好 🎉\ndata: 🎉\n\n".encode()
    for i in range(1, len(stream)):
        (ev,) = feed_all([stream[:i], stream[i:]])
        assert (ev.event, ev.data) == ("héllo 你好 🎉", "🎉".encode())


def test_invalid_utf8_in_a_field_value_is_replaced_not_raised() -> None:
    assert one(b"event: \xff\ndata: \xff\n\n").event == "\ufffd"


def test_a_leading_bom_is_ignored_but_kept_in_raw() -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    events = feed_all([stream[:1], stream[1:2], stream[2:]])
    assert [(ev.data, ev.raw) for ev in events] == [(b"x", stream)]


def test_a_bom_after_the_start_is_not_skipped() -> None:
    events = feed_all([b"data: a\n\n\xef\xbb\xbfdata: b\n\n"])
    assert [ev.data for ev in events] == [b"a"]


def test_a_blank_line_with_nothing_pending_dispatches_nothing() -> None:
    assert feed_all([b"\n\n\r\n\r"]) == []


# Comments


def test_comments_dispatch_nothing_and_fold_into_the_next_raw() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": ping\n\n: ping\n\n") == []
    (ev,) = decoder.feed(b"data: x\n: inside\n\n")
    assert ev.data == b"x"
    assert ev.raw == b": ping\n\n: ping\n\ndata: x\n: inside\n\n"


# close()


@pytest.mark.parametrize(
    "tail",
    [b"data: x", b"data: x\n", b"event: y\n", b"id: 1\n", b"data: x\r", b"da"],
)
def test_close_raises_on_a_cut_event(tail: bytes) -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: done\n\n" + tail)
    with pytest.raises(SSEError, match="ended inside an event"):
        decoder.close()


def test_close_raises_on_a_stream_cut_inside_its_bom() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb") == []
    with pytest.raises(SSEError):
        decoder.close()


@pytest.mark.parametrize("tail", [b"", b": ping", b": ping\n", b"\n\n", b"  ", b"\r", b"retry: 5\n"])
def test_close_accepts_trailing_comments_and_blank_lines(tail: bytes) -> None:
    decoder = SSEDecoder()
    assert [ev.data for ev in decoder.feed(b"data: done\n\n" + tail)] == [b"done"]
    assert decoder.close() is None


def test_sse_error_is_a_value_error() -> None:
    assert issubclass(SSEError, ValueError)


# Size cap


def test_an_event_over_the_size_cap_raises_even_when_it_arrives_whole() -> None:
    with pytest.raises(SSEError, match="larger than 100 bytes"):
        SSEDecoder(max_event_bytes=100).feed(b"data: " + b"x" * 200 + b"\n\n")


def test_pending_bytes_over_the_size_cap_raise_before_the_event_ends() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"x" * 90)
    with pytest.raises(SSEError, match="larger than 100 bytes"):
        decoder.feed(b"x" * 20)


def test_many_small_events_in_one_read_do_not_trip_the_size_cap() -> None:
    events = SSEDecoder(max_event_bytes=100).feed(b"data: 0123456789\n\n" * 1000)
    assert len(events) == 1000


# Performance: quadratic behaviour would hit pytest's 120 s timeout.


def test_a_large_stream_fed_byte_by_byte_is_decoded_in_linear_time() -> None:
    event = b'data: {"choices":[{"delta":{"content":"h\xc3\xa9llo"}}]}\r\n\r\n'
    stream = b": keep-alive\n\n" + event * (200_000 // len(event))
    decoder = SSEDecoder()
    count = 0
    for i in range(len(stream)):
        count += len(decoder.feed(stream[i : i + 1]))
    decoder.close()
    assert count == 200_000 // len(event)


def test_one_large_event_fed_byte_by_byte_is_decoded_in_linear_time() -> None:
    data = b"x" * 200_000
    stream = b"data: " + data + b"\r\r"
    decoder = SSEDecoder()
    events = [ev for i in range(len(stream)) for ev in decoder.feed(stream[i : i + 1])]
    assert [ev.data for ev in events] == [data]


def test_many_cr_only_lines_in_one_read_are_decoded_in_linear_time() -> None:
    events = SSEDecoder(max_event_bytes=1 << 30).feed(b"data: x\r" * 500_000 + b"\r")
    assert len(events) == 1 and len(events[0].data) == 500_000 * 2 - 1


# NDJSON


def ndjson_all(chunks: list[bytes], **kwargs: int) -> list[bytes]:
    decoder = NDJSONDecoder(**kwargs)
    lines = [line for chunk in chunks for line in decoder.feed(chunk)]
    return lines + decoder.close()


@given(ndjson_streams(), st.data())
def test_ndjson_split_anywhere_gives_the_same_lines(stream: NDJSONStream, data: st.DataObject) -> None:
    assert ndjson_all([stream.raw]) == list(stream.lines)
    assert ndjson_all(data.draw(splits(stream.raw))) == list(stream.lines)
    assert ndjson_all(bytewise(stream.raw)) == list(stream.lines)


def test_ndjson_drops_a_trailing_cr_and_skips_blank_lines() -> None:
    assert ndjson_all([b'{"a":1}\r\n\r\n  \n\t\r\n{"b":2}\n']) == [b'{"a":1}', b'{"b":2}']


def test_ndjson_crlf_split_across_reads_is_one_line_end() -> None:
    assert ndjson_all([b'{"a":1}\r', b'\n{"b":2}\r', b"\n"]) == [b'{"a":1}', b'{"b":2}']


def test_ndjson_final_line_without_newline_comes_from_close() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a":1}\n{"done":') == [b'{"a":1}']
    assert decoder.feed(b"true}") == []
    assert decoder.close() == [b'{"done":true}']


def test_ndjson_close_after_a_newline_or_whitespace_gives_nothing() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a":1}\n  \r') == [b'{"a":1}']
    assert decoder.close() == []


def test_ndjson_line_over_the_cap_raises() -> None:
    with pytest.raises(SSEError, match="larger than 10 bytes"):
        NDJSONDecoder(max_line_bytes=10).feed(b"x" * 11 + b"\n")
    decoder = NDJSONDecoder(max_line_bytes=10)
    decoder.feed(b"x" * 10)
    with pytest.raises(SSEError):
        decoder.feed(b"x")


def test_ndjson_long_line_fed_byte_by_byte_is_decoded_in_linear_time() -> None:
    line = b"x" * 200_000
    decoder = NDJSONDecoder()
    for i in range(len(line)):
        assert decoder.feed(line[i : i + 1]) == []
    assert decoder.feed(b"\n") == [line]


# Edges


def test_an_empty_read_gives_nothing() -> None:
    assert SSEDecoder().feed(b"") == []
    assert NDJSONDecoder().feed(b"") == []


def test_feed_takes_bytes_only() -> None:
    with pytest.raises(TypeError):
        SSEDecoder().feed("data: x\n\n")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        NDJSONDecoder().feed(None)  # type: ignore[arg-type]


def test_a_non_positive_cap_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        SSEDecoder(0)
    with pytest.raises(ValueError):
        NDJSONDecoder(-1)


def test_events_can_be_built_for_fakes() -> None:
    ev = Event(data=b"x", event="e", id="1", raw=b"data: x\n\n")
    assert (ev.data, ev.event, ev.id, ev.raw) == (b"x", "e", "1", b"data: x\n\n")
    assert "data=b'x'" in repr(ev)
