"""Per-chunk and per-answer conversion cost of each backend type, in-process (no network).

    python -m loadtests.convert_bench [--repeat 2000]

Each backend's fake (tests/fakes) is asked once for a streamed and a whole
answer of 20 words; the bytes it sent are then converted again and again by
gw's own code, as a worker would:

- stream: the converter gw uses fed one upstream event per call; ns per event.
  The pass-through is ``OpenAIStream``; every other row is the backend's
  decoder driving the client's encoder (``events.Converter``).
- whole: the request conversion (client body -> backend body, ``orjson.dumps``)
  plus the answer conversion (``orjson.loads`` of the backend's bytes, its
  ``read_answer`` into the client's whole-answer encoder, ``orjson.dumps``);
  ns per request.

Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import httpx
import orjson

from gw._fast import anthropic, gemini, messages, ollama, openai
from gw._fast.chat import ChatAnswer, ChatChunks
from gw._fast.convert import OpenAIStream
from gw._fast.events import Converter, Encoder, Sink
from tests.fakes.runner import FakeUpstream

WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
    " seventeen eighteen nineteen"
)
CHAT = {
    "model": "bench",
    "messages": [{"role": "system", "content": "Repeat after me."}, {"role": "user", "content": WORDS}],
    "max_tokens": 64,
}
# What gw sends every backend that needs it (the fakes run without a key check).
HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "bench-key"}
EVENT_END = re.compile(rb"(?:\r\n\r\n|\n\n|\r\r)")


class Backend:
    """How to ask one fake for the two answers, and how gw converts them."""

    def __init__(
        self,
        name: str,
        module: str,
        whole_url: str,
        stream_url: str,
        request: Callable[[dict[str, Any]], dict[str, Any]],
        stream_request: Callable[[dict[str, Any]], dict[str, Any]],
        converter: Callable[[], Any],
        answer: Callable[[bytes], bytes],
        split: Callable[[bytes], list[bytes]],
    ) -> None:
        self.name, self.module = name, module
        self.whole_url, self.stream_url = whole_url, stream_url
        self.request, self.stream_request = request, stream_request
        self.converter, self.answer, self.split = converter, answer, split


def sse_events(raw: bytes) -> list[bytes]:
    """The raw bytes of each SSE event, terminator included."""
    out, pos = [], 0
    for m in EVENT_END.finditer(raw):
        out.append(raw[pos : m.end()])
        pos = m.end()
    return out


def ndjson_lines(raw: bytes) -> list[bytes]:
    return [line + b"\n" for line in raw.split(b"\n") if line]


def openai_answer(data: bytes) -> bytes:
    orjson.loads(data)  # the adapter checks the answer; the bytes go out unchanged
    return data


def converter(decoder: Callable[[Encoder], Any], encoder: Callable[[], Encoder]) -> Callable[[], Converter]:
    """A new stream converter per stream: ``decoder`` driving ``encoder``, as gw runs them."""

    def make() -> Converter:
        enc = encoder()
        return Converter(decoder(enc), enc)

    return make


def chat_chunks() -> Encoder:
    return ChatChunks(1, "m", True)


WholeEncoder = ChatAnswer | messages.MessageAnswer


def whole(
    read: Callable[[dict[str, Any], Sink], None], encoder: Callable[[], WholeEncoder]
) -> Callable[[bytes], bytes]:
    """A whole answer: the backend's bytes read into the client's encoder, its answer's bytes."""

    def answer(data: bytes) -> bytes:
        enc = encoder()
        read(orjson.loads(data), enc)
        return orjson.dumps(enc.answer())

    return answer


def chat_answer() -> ChatAnswer:
    return ChatAnswer(1, "m")


ANTHROPIC_IN = {"model": "m", "max_tokens": 64, "system": "Repeat after me.",
                "messages": [{"role": "user", "content": WORDS}]}


BACKENDS = [
    Backend(
        "openai (pass-through)", "tests.fakes.openai_server", "/v1/chat/completions", "/v1/chat/completions",
        lambda body: {**body, "model": "m"},
        lambda body: {**body, "model": "m", "stream": True, "stream_options": {"include_usage": True}},
        lambda: OpenAIStream(True), openai_answer, sse_events,
    ),
    Backend(
        "anthropic", "tests.fakes.anthropic_server", "/v1/messages", "/v1/messages",
        lambda body: anthropic.chat_request(body, "m", 4096),
        lambda body: anthropic.chat_request(body, "m", 4096, True),
        converter(anthropic.AnthropicDecoder, chat_chunks),
        whole(anthropic.read_answer, chat_answer),
        sse_events,
    ),
    Backend(
        "/v1/messages in, openai backend out", "tests.fakes.openai_server", "/v1/chat/completions",
        "/v1/chat/completions",
        lambda body: {**messages.to_openai(ANTHROPIC_IN), "model": "m"},
        lambda body: {**messages.to_openai({**ANTHROPIC_IN, "stream": True}), "model": "m"},
        converter(openai.ChatDecoder, lambda: messages.MessagesEvents("msg_1", "m")),
        whole(openai.read_answer, lambda: messages.MessageAnswer("msg_1", "m")),
        sse_events,
    ),
    Backend(
        "gemini", "tests.fakes.gemini_server", "/v1beta/models/m:generateContent",
        "/v1beta/models/m:streamGenerateContent?alt=sse",
        gemini.chat_request, gemini.chat_request,
        converter(lambda enc: gemini.GeminiDecoder(enc, "chatcmpl-1"), chat_chunks),
        whole(lambda answer, sink: gemini.read_answer(answer, sink, "chatcmpl-1"), chat_answer),
        sse_events,
    ),
    Backend(
        "ollama", "tests.fakes.ollama_server", "/api/chat", "/api/chat",
        lambda body: ollama.chat_request(body, "bench-m", False),
        lambda body: ollama.chat_request(body, "bench-m", True),
        converter(lambda enc: ollama.OllamaDecoder(enc, "chatcmpl-1"), chat_chunks),
        whole(lambda answer, sink: ollama.read_answer(answer, sink, "chatcmpl-1"), chat_answer),
        ndjson_lines,
    ),
]


def per_call_ns(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / repeat)
    return best


def measure(backend: Backend, fake: FakeUpstream, repeat: int) -> dict[str, float]:
    body = dict(CHAT)
    whole = httpx.post(fake.url + backend.whole_url, json=backend.request(body), headers=HEADERS, timeout=5)
    whole.raise_for_status()
    streamed = httpx.post(
        fake.url + backend.stream_url, json=backend.stream_request(body), headers=HEADERS, timeout=5
    )
    streamed.raise_for_status()
    events = backend.split(streamed.content)

    def run_stream() -> None:
        conv = backend.converter()
        for event in events:
            conv.feed(event)
        conv.close()

    def run_whole() -> None:
        orjson.dumps(backend.request(dict(CHAT)))
        backend.answer(whole.content)

    return {
        "events": len(events),
        "ns_per_event": per_call_ns(run_stream, repeat) / len(events),
        "ns_per_whole": per_call_ns(run_whole, repeat),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=2000, help="calls per timing (best of 5)")
    args = p.parse_args(argv)
    rows = {}
    with ExitStack() as stack:
        for backend in BACKENDS:
            fake = FakeUpstream()
            fake.module = backend.module
            stack.enter_context(fake)
            rows[backend.name] = measure(backend, fake, args.repeat)
    print(
        "| backend | upstream events per stream | ns per event (stream)"
        " | ns per whole answer (request + answer) |"
    )
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['events']} | {r['ns_per_event']:,.0f} | {r['ns_per_whole']:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
