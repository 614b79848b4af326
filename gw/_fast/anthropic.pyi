"""Anthropic Messages <-> OpenAI Chat Completions: requests, answers, streams.

    body = chat_request({"model": "claude", "messages": [{"role": "system", "content": "Be brief."},
                                                        {"role": "user", "content": "Hi"}]},
                        "claude-sonnet-4-5", 4096)
    # {"model": "claude-sonnet-4-5", "system": "Be brief.", "max_tokens": 4096,
    #  "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    answer = chat_answer(orjson.loads(data), int(time.time()), "claude-sonnet-4-5")  # a chat.completion
    conv = AnthropicStream(int(time.time()), "claude-sonnet-4-5", include_usage=True)
    out = conv.feed(anthropic_sse_bytes)      # OpenAI chunk events, maybe b""
"""

from typing import Any

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
    ``default_max_tokens``; ``temperature`` is clipped to [0, 1]; ``stop`` ->
    ``stop_sequences``; ``user`` -> ``metadata.user_id``; function tools ->
    ``tools`` with ``input_schema``; ``tool_choice`` auto/required/none/named
    -> auto/any/none/tool; ``parallel_tool_calls: false`` ->
    ``disable_parallel_tool_use``. Penalties, seed, logprobs, logit_bias,
    response_format, ... are dropped.

        chat_request({"messages": [{"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}]}]},
            "claude", 4096)["messages"]
        # [{"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "now", "input": {}}]}]

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

def chat_id(message_id: Any) -> str:
    """chat_id("msg_01XFD") == "chatcmpl-msg_01XFD" (a random id when there is none)."""

def chat_answer(message: dict[str, Any], created: int, model: str) -> dict[str, Any]:
    """An Anthropic ``message`` as an OpenAI ``chat.completion``.

        chat_answer({"id": "msg_1", "content": [{"type": "tool_use", "id": "toolu_1",
                     "name": "now", "input": {}}], "stop_reason": "tool_use",
                     "usage": {"input_tokens": 5, "output_tokens": 3}}, 1700000000, "claude")
        # {"id": "chatcmpl-msg_1", "object": "chat.completion", ..., "choices": [{"index": 0,
        #   "message": {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
        #     {"id": "toolu_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
        #   "logprobs": None, "finish_reason": "tool_calls"}], "usage": {...}}

    stop_reason end_turn/stop_sequence/pause_turn -> stop, max_tokens ->
    length, tool_use -> tool_calls, refusal -> content_filter. Thinking and
    server-tool blocks are dropped.
    """

class AnthropicStream:
    """Anthropic Messages SSE bytes in, OpenAI chunk events out (for ``pump``):

        conv = AnthropicStream(created=1700000000, model="claude", include_usage=False)
        conv.feed(b'event: message_start\\ndata: {"type":"message_start","message":{"id":"msg_1",...}}\\n\\n'
                  b'event: content_block_start\\ndata: {"type":"content_block_start","index":0,...}\\n\\n')
        # b'data: {"id":"chatcmpl-msg_1",...,"delta":{"role":"assistant","content":""},...}\\n\\n'

    One role chunk (at the first content block: an ``error`` event right after
    ``message_start`` finds nothing sent, so gw can still retry), content and tool call chunks (tool
    call ``index`` 0, 1, 2... in order of the calls; a call whose input never
    came gets ``"arguments": "{}"``), exactly one finish chunk (from
    ``message_delta``), then at ``message_stop`` the usage chunk (only if
    ``include_usage``) and ``[DONE]``. ``error`` is Anthropic's error object
    when it sent an ``error`` event; ``invalid`` says why the bytes are not
    the protocol; ``usage`` is always kept (gw counts tokens).
    """

    id: str | None
    usage: dict[str, Any] | None
    error: Any
    invalid: str | None
    done: bool

    def __init__(self, created: int, model: str, include_usage: bool) -> None: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def close(self) -> bytes:
        """At EOF: b"" (notes a stream cut inside an event in ``invalid``)."""

class MessagesWatch:
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
