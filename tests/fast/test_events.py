"""gw/_fast/events.pyx: the Converter drives gw's decoders and any object that decodes."""

from __future__ import annotations

from gw._fast.chat import ChatChunks
from gw._fast.events import Converter, Decoder, Sink
from gw._fast.openai import ChatDecoder


class LinesDecoder:
    """A decoder written in Python: each line of the bytes is one text event."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.error = None
        self.invalid = None

    def feed(self, chunk: bytes) -> None:
        for line in chunk.decode().splitlines():
            self.sink.text(0, line)

    def close(self) -> None:
        self.sink.finish(0, "stop", None)
        self.sink.end()


def test_a_decoder_written_in_python_drives_an_encoder() -> None:
    encoder = ChatChunks(1, "m", False)
    converter = Converter(LinesDecoder(encoder), encoder)
    assert b'"content":"hi"' in converter.feed(b"hi\n")
    assert converter.close().endswith(b"data: [DONE]\n\n")
    assert converter.done
    assert converter.error is None and converter.invalid is None


def test_gws_decoders_are_decoders() -> None:
    encoder = ChatChunks(1, "m", False)
    converter = Converter(ChatDecoder(encoder), encoder)
    assert isinstance(converter.decoder, Decoder)
    out = converter.feed(
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    assert out.endswith(b"data: [DONE]\n\n")
    assert converter.done
