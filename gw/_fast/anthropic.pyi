"""Anthropic Messages <-> OpenAI Chat Completions: requests, answers, streams.

    dec = AnthropicDecoder(sink)              # sink: an events.Sink (an encoder, or events.Recorder)
    dec.feed(anthropic_sse_bytes)             # sink.start("msg_1"), sink.usage(...), sink.text(0, "Hi"), ...
    read_answer(orjson.loads(data), sink)     # the same events for a whole message

    body = chat_request({"model": "claude", "messages": [{"role": "system", "content": "Be brief."},
                                                        {"role": "user", "content": "Hi"}]},
                        "claude-sonnet-4-5", 4096)
    # {"model": "claude-sonnet-4-5", "system": "Be brief.", "max_tokens": 4096,
    #  "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}

    enc = ChatChunks(int(time.time()), "claude-sonnet-4-5", include_usage=True)  # any events.Encoder
    conv = Converter(AnthropicDecoder(enc), enc)
    out = conv.feed(anthropic_sse_bytes)      # OpenAI chunk events, maybe b""
"""

from typing import Any

from typing_extensions import disjoint_base

from .events import Decoder, Sink
from .sse import Watch

def chat_request(
    body: dict[str, Any], model: str, default_max_tokens: int, stream: bool = False
) -> dict[str, Any]:
    """An OpenAI Chat Completions body as an Anthropic Messages body.

    System and developer messages become ``system`` (a string, or text blocks
    when there are several); consecutive same-role messages merge into one
    turn; ``tool`` messages become ``tool_result`` blocks of a user turn;
    assistant ``tool_calls`` become ``tool_use`` blocks (``input`` = the
    parsed arguments, ``{}`` when empty); ``image_url`` parts become base64 or
    url image blocks, ``file`` parts (base64 PDF) document blocks.
    ``max_tokens`` is ``max_completion_tokens``, else ``max_tokens``, else
    ``max_output_tokens``, else ``default_max_tokens`` (``rules.max_tokens``);
    ``temperature`` is clipped to [0, 1]; ``stop`` ->
    ``stop_sequences``; ``user`` -> ``metadata.user_id``; function tools ->
    ``tools`` with ``input_schema``; ``tool_choice`` auto/required/none/named
    -> auto/any/none/tool; ``parallel_tool_calls: false`` ->
    ``disable_parallel_tool_use``. Penalties, seed, logprobs, logit_bias,
    response_format, ... are dropped.

        chat_request({"messages": [{"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}]}]},
            "claude", 4096)["messages"]
        # [{"role": "assistant",
        #   "content": [{"type": "tool_use", "id": "call_1", "name": "now", "input": {}}]}]

    Raises ``InvalidInput`` (gw: 400) for what Anthropic cannot express:
    ``n`` > 1, arguments that are not a JSON object, images that are neither a
    base64 data URL nor http(s), audio, non-function tools, legacy functions.
    """

def usage_from(usage: Any) -> dict[str, Any]:
    """Anthropic usage as OpenAI usage:

        usage_from({"input_tokens": 10, "output_tokens": 5,
                    "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20})
        # {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
        #  "prompt_tokens_details": {"cached_tokens": 100}}
    """

def read_answer(message: dict[str, Any], sink: Sink) -> None:
    """The events of a whole Anthropic ``message`` on ``sink``:

        read_answer({"id": "msg_1", "content": [{"type": "thinking", "thinking": "hmm"},
                     {"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
                     "usage": {"input_tokens": 5, "output_tokens": 3}}, rec)
        # rec.events == [("start", "msg_1"), ("reasoning", 0, "hmm"), ("text", 0, "Hi"),
        #                ("usage", 5, 3, 0, 0, 0), ("finish", 0, "stop", None), ("end",)]

    ``tool_use`` blocks: tool_start (0, 1, 2...; a block without id gets
    ``call_<hex>``) and their ``input`` as one tool_args (none when empty);
    redacted thinking and server-tool blocks are dropped; usage is always
    sent (zeros without one); the finish is ``rules.finish_reason`` of
    ``stop_reason`` with ``stop_sequence`` as the match.
    """

@disjoint_base
class AnthropicDecoder(Decoder):
    """Anthropic Messages SSE bytes in, ``events.Sink`` calls out (the backend decoder):

        dec = AnthropicDecoder(rec)
        dec.feed(b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",...}}\n\n'
                 b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                 b'"delta":{"type":"text_delta","text":"Hi"}}\n\n')
        # rec.events == [("start", "msg_1"), ("usage", 12, 1, 0, 0, 0), ("text", 0, "Hi")]

    ``message_start``: start (the message id, or None) and usage. Text
    blocks and ``text_delta``: text. Thinking blocks and ``thinking_delta``:
    reasoning (signatures are dropped). ``tool_use`` blocks: tool_start
    (index 0, 1, 2... in order, whatever their block index) and their
    ``input_json_delta``: tool_args (a block that brings a non-empty
    ``input`` whole: one tool_args). ``message_delta``: usage (each count it
    has replaces the one kept) and, at its first ``stop_reason``, finish
    (``rules.finish_reason``; ``stop_sequence`` as the match).
    ``message_stop``: end, then nothing more is read. Pings, redacted
    thinking, server-tool blocks, citation deltas and unknown events are
    ignored. ``error`` is the object of an ``error`` event and ``invalid``
    why the bytes are not the protocol (content or ``message_delta`` before
    ``message_start``, ``message_stop`` without a stop_reason, an event that
    is not a JSON object, a cut event at ``close()``); either stops the
    decoding and end is never called.
    """

    id: str | None
    usage: dict[str, Any] | None
    error: Any
    invalid: str | None
    done: bool

    def __init__(self, sink: Sink) -> None: ...
    def feed(self, chunk: bytes) -> None: ...
    def close(self) -> None:
        """At EOF: notes a stream cut inside an event in ``invalid``."""

@disjoint_base
class MessagesWatch(Watch):
    """Watches an Anthropic stream forwarded unchanged (``/v1/messages`` to an Anthropic backend):

        watch = MessagesWatch()
        out = watch.feed(chunk)     # the upstream's own event bytes, maybe b""

    Parses only ``message_start`` and ``message_delta`` (for ``usage``) and
    ``error`` (kept back, into ``error``: gw sends its own error event);
    ``message_stop`` sets ``done``. Other events are only checked to look
    like JSON objects. ``message_start`` and pings go out with the first
    block (an error right after them leaves nothing sent: gw can retry).
    """

    usage: dict[str, Any] | None
    error: Any
    invalid: str | None
    done: bool

    def __init__(self) -> None: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def close(self) -> bytes: ...
