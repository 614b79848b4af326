"""Google Gemini <-> OpenAI conversion: chat requests, answers, the ``alt=sse`` stream, embeddings.

    payload = chat_request({"model": "g", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5})
    # {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
    #  "generationConfig": {"maxOutputTokens": 5}}
    answer = chat_answer(gemini_json, "chatcmpl-1", 1700000000, "gemini-2.5-flash")
    conv = GeminiStream("chatcmpl-1", 1700000000, "gemini-2.5-flash", include_usage=True)
    out = conv.feed(b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}]}\\r\\n\\r\\n')
    out += conv.close()   # usage chunk, data: [DONE]; conv.done is True

Every ``InvalidInput`` names the offending field (``messages[2].tool_calls[0].function.arguments``).
"""

from typing import Any

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
        #    {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 21}}}]}],
        #  "systemInstruction": {"parts": [{"text": "Be brief"}]}}

    Consecutive turns of one role are merged (Gemini wants them to alternate).
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
    answer without candidates, else None: block_reason({"promptFeedback": {"blockReason": "SAFETY"}}) == "SAFETY"."""

def chat_answer(answer: dict[str, Any], id: str, created: int, model: str) -> dict[str, Any]:
    """A ``GenerateContentResponse`` as a ``chat.completion``: one choice per candidate
    (``index`` from the candidate, else its position), text parts joined, ``thought``
    parts dropped, ``functionCall`` parts as ``tool_calls`` (Gemini's ``id`` or a new
    ``call_<hex>``; ``arguments`` JSON, ``"{}"`` when none; a ``thoughtSignature``
    as ``extra_content.google.thought_signature``), finishReason mapped
    (STOP -> stop or tool_calls, MAX_TOKENS -> length, SAFETY and kin -> content_filter,
    else stop), usage from ``usageMetadata``.
    """

class GeminiStream:
    """``streamGenerateContent?alt=sse`` bytes in, OpenAI ``chat.completion.chunk`` events out.

        conv = GeminiStream(id, created, model, include_usage)
        async for out in pump(resp, conv, provider, ctx): yield out

    Per choice: a role chunk first, content deltas, one delta per function call
    (``index`` counting per choice, ``id``, ``type``, ``function`` with the whole
    ``arguments``), then exactly one finish chunk (repeats dropped). At EOF
    ``close()`` gives the usage chunk (only with ``include_usage``) and
    ``[DONE]`` and sets ``done`` -- if every choice finished. An ``{"error": ...}``
    event sets ``error``; bytes that are not SSE of JSON objects set ``invalid``;
    a ``promptFeedback.blockReason`` with no candidate sets ``blocked`` and ``error``.
    """

    done: bool
    error: Any
    invalid: str | None
    blocked: str | None
    @property
    def usage(self) -> dict[str, Any] | None:
        """OpenAI usage from the last ``usageMetadata`` seen, None before any."""
    def __init__(self, id: str, created: int, model: str, include_usage: bool) -> None: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def close(self) -> bytes: ...

def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """embedding_inputs({"input": "a"}) == ["a"]; token arrays raise ``InvalidInput`` (param ``input``)."""

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
