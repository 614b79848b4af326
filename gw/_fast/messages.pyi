"""The Anthropic Messages API as a client protocol, on any backend.

    chat = to_openai({"model": "m", "max_tokens": 100, "system": "Be brief.",
                      "messages": [{"role": "user", "content": "Hi"}]})
    # {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
    #                             {"role": "user", "content": "Hi"}], "max_tokens": 100}

    encoder = MessagesEvents(message_id(), "claude-x", None)    # events -> Anthropic SSE
    converter = Converter(ChatDecoder(encoder), encoder)        # any decoder works
    out = converter.feed(upstream_bytes)                        # Anthropic events, maybe b""

    whole = MessageAnswer(message_id(), "claude-x", None)       # events -> one message
    openai.read_answer(orjson.loads(answer), whole)             # any decoder's read_answer
    message = whole.answer()
"""

from typing import Any

from typing_extensions import disjoint_base

from .events import Encoder
from .openai import InvalidAnswer as InvalidAnswer

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
    ``top_p``, ``top_k`` are kept (``max_tokens`` by ``rules.max_tokens``: a
    positive integer), ``stop_sequences`` (``rules.stop_list``: a string is
    one) -> ``stop``, a ``tool_use`` ``input`` sent as JSON text is read
    (``rules.tool_arguments``), ``metadata.user_id`` -> ``user``, custom tools
    -> function tools,
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

@disjoint_base
class AnthropicEncoder(Encoder):
    """What both Messages encoders share: only choice 0 is written (the others
    are not Anthropic's); runs of text and of reasoning are blocks; the finish
    gives the stop reason."""

    def __init__(self, id: str, model: str, stop_sequences: list[str] | None = None) -> None: ...

@disjoint_base
class MessageAnswer(AnthropicEncoder):
    """Events in, an Anthropic ``message`` out (choice 0).

        encoder = MessageAnswer("msg_1", "claude-x", stop_sequences=None)
        read_answer(chat_completion, encoder)
        encoder.answer()
        # {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        #  "content": [{"type": "thinking", "thinking": "...", "signature": ""},
        #              {"type": "text", "text": "Hi"}], "stop_reason": "end_turn", ...}

    Each run of reasoning is a ``thinking`` block (empty signature: only
    Anthropic signs), each run of text a ``text`` block, each tool call a
    ``tool_use`` block, in the order they came. stop -> end_turn (stop_sequence
    when ``matched`` is one of ``stop_sequences``), length -> max_tokens,
    tool_calls -> tool_use (also a stop with tool calls), content_filter ->
    refusal. ``input_tokens`` is the uncached input; the cache reads and
    writes are ``cache_read_input_tokens`` and ``cache_creation_input_tokens``.
    """

    def __init__(self, id: str, model: str, stop_sequences: list[str] | None = None) -> None: ...
    def answer(self) -> dict[str, Any]:
        """The message. Raises ``InvalidAnswer`` for a tool call whose arguments
        are not a JSON object (blank or ``null`` arguments are ``{}``)."""

@disjoint_base
class MessagesEvents(AnthropicEncoder):
    """Events in, the Anthropic Messages SSE events out (choice 0).

        encoder = MessagesEvents("msg_1", "claude-x", stop_sequences=None)
        encoder.start("chatcmpl-1"); encoder.text(0, "Hi"); encoder.finish(0, "stop", None)
        encoder.usage(5, 1, 0, 0, 0); encoder.end()
        encoder.take()
        # event: message_start       (input_tokens: the usage seen so far)
        # event: content_block_start {"type":"text","text":""}
        # event: content_block_delta {"type":"text_delta","text":"Hi"}
        # event: content_block_stop
        # event: message_delta       {"stop_reason":"end_turn",...}, usage
        # event: message_stop

    Nothing is written at ``start``: ``message_start`` comes with the first
    content or the finish, so a backend error right after its start leaves
    nothing sent. Each run of reasoning is a ``thinking`` block
    (``{"type":"thinking","thinking":"","signature":""}``, ``thinking_delta``),
    each run of text a ``text`` block, each tool call a ``tool_use`` block
    (``input_json_delta`` with the backend's fragments). At ``end``: tool
    arguments that are not a JSON object set ``invalid`` and nothing more is
    written; else ``message_delta`` (stop reason as ``MessageAnswer``, usage;
    ``{"output_tokens": 0}`` when none came) and ``message_stop``.
    """

    invalid: str | None
    """"tool call arguments are not a JSON object", or None."""

    def __init__(self, id: str, model: str, stop_sequences: list[str] | None = None) -> None: ...
