"""Google Gemini: chat requests, the answer decoder (``alt=sse`` stream and whole answers), embeddings.

    payload = chat_request({"model": "g", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5})
    # {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
    #  "generationConfig": {"maxOutputTokens": 5}}
    dec = GeminiDecoder(sink)          # any events.Sink: an encoder, or events.Recorder
    dec.feed(b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]},'
             b'"finishReason":"STOP"}]}\\r\\n\\r\\n')
    dec.close()                        # sink: start(None), text(0, "Hi"), finish(0, "stop", None), end()
    read_answer(gemini_json, sink)     # a whole answer: the same events at once

    # Driving a client encoder (chat.ChatChunks here; any events.Encoder):
    enc = ChatChunks(1700000000, "gemini-2.5-flash", include_usage=True)
    conv = Converter(GeminiDecoder(enc, "chatcmpl-1"), enc)
    out = conv.feed(upstream_bytes)    # OpenAI chunk events (SSE bytes), maybe b""
    out += conv.close()                # usage chunk, data: [DONE]; conv.done is True

Every ``InvalidInput`` names the offending field (``messages[2].tool_calls[0].function.arguments``).
"""

from typing import Any

from typing_extensions import disjoint_base

from .events import Decoder, Sink

def model_path(model: str) -> str:
    """model_path("gemini-2.5-flash") == model_path("models/gemini-2.5-flash") == "models/gemini-2.5-flash";
    a name with a "/" (``tunedModels/x``) stays as it is."""

def gemini_schema(schema: Any) -> dict[str, Any]:
    """A JSON Schema as Gemini's OpenAPI-subset ``Schema``:

        gemini_schema({"type": "object", "additionalProperties": False, "$schema": "...",
                       "properties": {"a": {"type": ["string", "null"], "format": "email"}}})
        # {"type": "object", "properties": {"a": {"type": "string", "nullable": True}}}

    Local ``$ref`` (``#/$defs/X``, ``#/definitions/X``) are inlined (a recursive
    one is ``InvalidInput``); ``allOf`` is merged; ``oneOf`` becomes ``anyOf``;
    a ``{"type": "null"}`` option becomes ``nullable``; a string ``const`` becomes
    a one-value ``enum``; formats other than enum, date-time, int32, int64,
    float, double are dropped; so is every key Gemini's Schema lacks
    (``additionalProperties``, ``$schema``, ``$id``, ``examples``, ``strict``, ...).
    """

def chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI Chat Completions body as a ``generateContent`` body (the model is in the URL).

        chat_request({"messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "weather", "arguments": "{\\"city\\": \\"Paris\\"}"},
                "extra_content": {"google": {"thought_signature": "c2ln"}}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\\"temp\\": 21}"}]})
        # {"contents": [
        #    {"role": "user", "parts": [{"text": "Weather?"}]},
        #    {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}},
        #                                 "thoughtSignature": "c2ln"}]},
        #    {"role": "user",
        #     "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 21}}}]}],
        #  "systemInstruction": {"parts": [{"text": "Be brief"}]}}

    Consecutive turns of one role are merged (Gemini wants them to alternate).
    The shared ``rules`` apply: ``tool_arguments`` (empty, blank or ``"null"``
    is ``{}``), ``stop_list`` (a string or strings, else 400), ``max_tokens``
    (``max_completion_tokens`` > ``max_tokens`` > ``max_output_tokens``, a
    positive integer, else 400), ``data_url``.
    Raises ``InvalidInput`` for bad tool-call arguments, a tool result whose
    ``tool_call_id`` no earlier tool call has, non-function tools, unknown
    content part types and roles, image URLs that are neither http(s) nor
    base64 data URLs, and the like.
    """

def usage_from(meta: Any) -> dict[str, Any]:
    """usageMetadata -> OpenAI usage (``make_usage``); zeros when ``meta`` is not a dict:

        usage_from({"promptTokenCount": 110, "cachedContentTokenCount": 100,
                    "candidatesTokenCount": 5, "thoughtsTokenCount": 7})
        # {"prompt_tokens": 110, "completion_tokens": 12, "total_tokens": 122,
        #  "prompt_tokens_details": {"cached_tokens": 100},
        #  "completion_tokens_details": {"reasoning_tokens": 7}}
    """

def block_reason(answer: dict[str, Any]) -> str | None:
    """``promptFeedback.blockReason`` (with ``blockReasonMessage`` if any) of an
    answer without candidates, else None:
    block_reason({"promptFeedback": {"blockReason": "SAFETY"}}) == "SAFETY"."""

@disjoint_base
class GeminiDecoder(Decoder):
    """Gemini's ``streamGenerateContent?alt=sse`` stream in, ``events.Sink`` events out.

        rec = Recorder(); dec = GeminiDecoder(rec)
        dec.feed(b'data: {"candidates":[{"content":{"parts":[{"text":"hmm","thought":true},{"text":"Hi"},'
                 b'{"functionCall":{"name":"now"}}]},"finishReason":"STOP"}],'
                 b'"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1},"responseId":"r1"}\\r\\n\\r\\n')
        dec.close()
        rec.events == [("start", "r1"), ("usage", 3, 1, 0, 0, 0), ("reasoning", 0, "hmm"), ("text", 0, "Hi"),
                       ("tool_start", 0, 0, "call_<24 hex>", "now", None),
                       ("finish", 0, "tool_calls", None), ("end",)]

    The first event gives ``start`` (``id`` if given, else Gemini's
    ``responseId``, else None). Per event: ``usageMetadata`` -> usage (input =
    prompt + toolUsePrompt - cached, output = candidates + thoughts,
    cache_read = cached, reasoning = thoughts; what is not an integer is 0),
    then per candidate (choice = its ``index``, else its position): its parts
    in order -- neighbouring text parts are one text event, neighbouring
    ``thought: true`` parts one reasoning event, each ``functionCall`` a
    tool_start (Gemini's ``id`` or a new ``call_<hex>``; extra
    ``{"extra_content": {"google": {"thought_signature": s}}}`` when the part
    has a ``thoughtSignature``) and one tool_args fragment, the JSON of its
    ``args`` (none when empty) -- then its ``finishReason`` as the choice's one
    finish (STOP -> stop or tool_calls, MAX_TOKENS -> length, SAFETY and kin ->
    content_filter, else stop); what a finished choice sends later is dropped.
    Gemini has no end marker: ``close()`` calls end() and sets ``done`` when
    every choice that came finished (choice 0 among them). An ``{"error": ...}``
    event sets ``error``; ``promptFeedback.blockReason`` with no candidate sets
    ``blocked`` and ``error`` (code ``content_filter``: the adapter's 400);
    bytes that are not SSE of JSON objects set ``invalid``. Each stops decoding.
    """

    done: bool
    error: Any
    invalid: str | None
    blocked: str | None
    def __init__(self, sink: Sink, id: str | None = None) -> None: ...
    def feed(self, chunk: bytes) -> None: ...
    def close(self) -> None: ...

def read_answer(answer: dict[str, Any], sink: Sink, id: str | None = None) -> None:
    """A whole ``GenerateContentResponse`` as the events of one answer: start (``id``,
    else ``responseId``), usage (zeros without ``usageMetadata``), each candidate's
    parts as ``GeminiDecoder`` gives them and its finish (stop when it has no
    ``finishReason``; a repeated candidate index is dropped), end. No candidate but a
    ``promptFeedback.blockReason``: a content_filter finish of choice 0; no candidate
    and no block: no finish and no end."""

def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """embedding_inputs({"input": "a"}) == ["a"]; token arrays raise ``InvalidInput`` (param ``input``):
    ``rules.embedding_inputs`` naming Gemini."""

def embed_request(texts: list[str], model: str, dimensions: int | None) -> dict[str, Any]:
    """embed_request(["a"], "models/gemini-embedding-001", 8)
    # {"requests": [{"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]},
    #                "outputDimensionality": 8}]}
    """

def estimate_tokens(texts: list[str]) -> int:
    """Gemini's batch answer counts no tokens: ceil(characters / 4), at least 1 per text."""

def embed_answer(
    answer: dict[str, Any], count: int, model: str, as_base64: bool, tokens: int
) -> dict[str, Any] | None:
    """``{"embeddings": [{"values": [...]}]}`` as an OpenAI ``list`` of ``embedding``
    objects (base64: little-endian float32, as OpenAI encodes), or None when the
    answer does not hold ``count`` embeddings."""
