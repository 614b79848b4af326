"""The Anthropic Messages API on top of OpenAI Chat Completions backends.

    chat = to_openai({"model": "m", "max_tokens": 100, "system": "Be brief.",
                      "messages": [{"role": "user", "content": "Hi"}]})
    # {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
    #                             {"role": "user", "content": "Hi"}], "max_tokens": 100}
    message = chat_to_message(orjson.loads(answer), message_id(), "claude-x")   # bytes
    stream = MessageStream(message_id(), "claude-x")
    out = stream.feed(openai_sse_bytes)    # Anthropic events, maybe b""
"""

from typing import Any

class InvalidAnswer(ValueError):
    """A ``chat.completion`` gw cannot turn into a message: no first choice, or a
    tool call whose arguments are not a JSON object. gw answers 502 (retryable)."""

def message_id() -> str:
    """A new Messages id: ``msg_`` and 24 hex digits."""

def error_event(body: bytes) -> bytes:
    """error_event(b'{"type":"error","error":{"type":"api_error","message":"reset"}}')
    # -> b'event: error\\ndata: {"type":"error",...}\\n\\n'
    """

def to_openai(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI Chat Completions request.

    ``system`` becomes the first message (text blocks joined with a blank line),
    and so does each ``system`` message inside ``messages``, in its place;
    text blocks become text parts (one text alone: a string), images
    ``image_url`` parts, plain-text documents text, ``tool_use`` blocks the
    assistant's ``tool_calls``, ``tool_result`` blocks ``tool`` messages placed
    before the rest of their user turn (their images move into that user
    message); thinking blocks are dropped. ``max_tokens``, ``temperature``,
    ``top_p``, ``top_k`` are kept, ``stop_sequences`` -> ``stop``,
    ``metadata.user_id`` -> ``user``, custom tools -> function tools,
    ``tool_choice`` auto/any/tool/none -> auto/required/named/none,
    ``disable_parallel_tool_use`` -> ``parallel_tool_calls: false``,
    ``output_config.format`` (or the beta ``output_format``) -> a ``json_schema``
    ``response_format``, ``stream`` -> ``stream`` + ``stream_options.include_usage``.
    Other fields (``thinking``, ``output_config.effort``, ``service_tier``,
    ``cache_control``, ``speed``, ...) are dropped.

        to_openai({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18°C"},
            {"type": "text", "text": "and tomorrow?"}]}]})["messages"]
        # [{"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        #  {"role": "user", "content": "and tomorrow?"}]

    Raises ``InvalidInput`` (gw: 400) for what Chat Completions cannot express:
    Anthropic-defined tools (server tools, bash, text editor, ...), MCP servers,
    containers, PDF or file documents, file images, other block types.
    """

def chat_to_message(
    answer: dict[str, Any], id: str, model: str, stop_sequences: list[str] | None = None
) -> bytes:
    """An OpenAI ``chat.completion`` as the JSON bytes of an Anthropic ``message``.

        chat_to_message({"choices": [{"message": {"content": "Hi"}, "finish_reason": "length"}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 1}}, "msg_1", "claude-x")
        # {"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
        #  "content":[{"type":"text","text":"Hi"}],"stop_reason":"max_tokens","stop_sequence":null,
        #  "usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}

    finish_reason stop -> end_turn (stop_sequence when vLLM's ``stop_reason``
    names one of ``stop_sequences``), length -> max_tokens, tool_calls ->
    tool_use (also when tool calls came with "stop"), content_filter -> refusal.
    ``input_tokens`` excludes cached tokens, which are ``cache_read_input_tokens``.
    """

class MessageStream:
    """OpenAI ``chat.completion.chunk`` SSE bytes in, Anthropic Messages events out.

        stream = MessageStream("msg_1", "claude-x", stop_sequences=None)
        async for chunk in adapter.chat_stream(chat, target, ctx):
            out = stream.feed(chunk)   # b"event: message_start\\ndata: {...}\\n\\n..."
            if out: yield out
            if stream.error is not None or stream.invalid is not None: raise ...
            if stream.done: break
        stream.close()

    ``message_start`` comes with the first chunk (input tokens 0 unless that
    chunk had usage); each run of text and each tool call is a content block
    (``text_delta``, ``input_json_delta`` with the backend's argument
    fragments); ``message_delta`` (stop reason, usage) and ``message_stop``
    come at ``[DONE]``. A ``[DONE]`` before any finish_reason, or a tool call
    whose arguments are not a JSON object, sets ``invalid`` instead.
    """

    usage: dict[str, Any] | None
    """The OpenAI usage of the stream, once seen."""
    error: Any
    """The error object of an ``{"error": ...}`` event."""
    invalid: str | None
    """Why the stream cannot be converted (not SSE, not JSON, cut, unfinished)."""
    done: bool
    """``message_stop`` was produced."""

    def __init__(self, id: str, model: str, stop_sequences: list[str] | None = None) -> None: ...
    def feed(self, chunk: bytes) -> bytes: ...
    def close(self) -> bytes:
        """At the end of the stream: the last events of a finished stream that had no ``[DONE]``."""

__all__ = [
    "InvalidAnswer",
    "MessageStream",
    "chat_to_message",
    "error_event",
    "message_id",
    "to_openai",
]
