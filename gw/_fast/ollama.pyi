"""Ollama's native API <-> OpenAI: chat requests, the answer decoder, embeddings.

    body = chat_request(openai_body, "llama3.2", stream=False)   # POST {base_url}/api/chat

    dec = OllamaDecoder(sink)          # any events.Sink: an encoder, or events.Recorder
    dec.feed(b'{"message":{"role":"assistant","content":"Hi"},"done":false}\\n')
    # sink.start(None), sink.text(0, "Hi")
    read_answer(orjson.loads(data), sink)  # a whole answer: the same events at once

    # Driving a client encoder (chat.ChatChunks here; any events.Encoder):
    enc = ChatChunks(1700000000, "llama3.2", include_usage=True)
    conv = Converter(OllamaDecoder(enc, "chatcmpl-1"), enc)
    out = conv.feed(upstream_bytes)    # OpenAI chunk events (SSE bytes), maybe b""

What maps to what, and what is dropped, is the README's conversion table ("Ollama").
"""

from typing import Any

from typing_extensions import disjoint_base

from .events import Decoder, Sink

def chat_request(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """An OpenAI Chat Completions body as an Ollama ``/api/chat`` body.

        chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                      "max_tokens": 5, "stop": "END"}, "llama3.2", False)
        # {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}],
        #  "stream": False, "options": {"num_predict": 5, "stop": ["END"]}}

    ``stream`` is always sent (Ollama streams when it is absent). Text parts are
    joined with a newline; ``data:`` image URLs go to ``images`` as bare base64;
    assistant tool calls get their ``arguments`` as an object
    (``rules.tool_arguments``: empty, blank or ``"null"`` is ``{}``); tool
    results carry the ``tool_name`` of the call they answer;
    ``max_completion_tokens`` › ``max_tokens`` is ``options.num_predict``
    (``rules.max_tokens``); ``reasoning_effort`` is ``think``: "none" -> false,
    "minimal"/"low"/"medium"/"high" -> true. Raises ``InvalidInput`` for
    http(s) image URLs (Ollama does not fetch them), ``n`` > 1, bad tool-call
    JSON, unknown ``tool_call_id``, unknown parts, a token limit that is not a
    positive integer and an unknown ``reasoning_effort``.
    """

def usage_from(answer: dict[str, Any]) -> dict[str, Any]:
    """``make_usage(prompt_eval_count, eval_count)``; a missing count is 0."""

@disjoint_base
class OllamaDecoder(Decoder):
    """Ollama's ``/api/chat`` NDJSON stream in, ``events.Sink`` events out.

        rec = Recorder(); dec = OllamaDecoder(rec)
        dec.feed(b'{"message":{"content":"","thinking":"hmm"},"done":false}\\n')
        dec.feed(b'{"message":{"content":"","tool_calls":[{"function":{"name":"now","arguments":{}}}]},')
        dec.feed(b'"done":false}\\n{"message":{"content":""},"done":true,"done_reason":"stop",'
                 b'"prompt_eval_count":3,"eval_count":1}\\n')
        rec.events == [("start", None), ("reasoning", 0, "hmm"),
                       ("tool_start", 0, 0, "call_<24 hex>", "now", None),
                       ("usage", 3, 1, 0, 0, 0), ("finish", 0, "tool_calls", None), ("end",)]

    The first line gives ``start(id)`` (Ollama has no answer id: ``id`` is
    the constructor's). Per line: ``message.thinking`` -> reasoning,
    ``message.content`` -> text, each of ``message.tool_calls`` (Ollama sends
    them whole) -> ``tool_start`` with a new ``call_`` id and one ``tool_args``
    fragment, the JSON of its ``arguments`` (none when they are ``{}`` or
    missing). The ``done: true`` line gives usage (``prompt_eval_count``,
    ``eval_count``; missing -> 0), finish (``done_reason`` stop/length, other
    -> stop; stop with tool calls -> tool_calls) and end. Lines may be split
    anywhere, even inside a UTF-8 character. An ``{"error": ...}`` line sets
    ``error``; a line that is not a JSON object (or over 1 MiB) sets
    ``invalid``; either, or the done line, stops decoding. An EOF before the
    done line leaves ``done`` False.
    """

    done: bool
    error: Any
    invalid: str | None

    def __init__(self, sink: Sink, id: str | None = None) -> None: ...
    def feed(self, chunk: bytes) -> None:
        """Decode the lines ``chunk`` completes."""
    def close(self) -> None:
        """At EOF: decode a last line that had no newline (a cut one is invalid)."""

def read_answer(answer: dict[str, Any], sink: Sink, id: str | None = None) -> None:
    """A whole ``/api/chat`` answer (``stream: false``) as the events of one answer:
    start(id), reasoning (``message.thinking``), text, the tool calls, usage,
    finish, end. A missing or odd ``message`` is no content."""

def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """The texts of an OpenAI embeddings body: ``"a"`` -> ``["a"]``.

    Raises ``InvalidInput`` (param ``input``) for token arrays.
    """

def embed_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """embed_request({"input": ["a", "b"], "dimensions": 8}, "nomic-embed-text")
    # {"model": "nomic-embed-text", "input": ["a", "b"], "truncate": True, "dimensions": 8}
    """

def embed_answer(answer: dict[str, Any], count: int, model: str, as_base64: bool) -> dict[str, Any] | None:
    """An ``/api/embed`` answer as an OpenAI embeddings ``list`` (usage from
    ``prompt_eval_count``), or None when it does not hold ``count`` vectors.

    ``as_base64``: each vector as little-endian float32 bytes in base64, as OpenAI sends.
    """
