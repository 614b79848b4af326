"""OpenAI Chat Completions as a backend protocol: its answers decoded into gw's events.

What OpenAI, Azure, vLLM and every compatible server send, for any client encoder:

    encoder = MessagesEvents("msg_1", "claude-x", None)
    decoder = ChatDecoder(encoder)
    decoder.feed(b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"Hi"}}]}\\n\\n')
    encoder.take()     # b"event: message_start\\n..."

    read_answer(orjson.loads(chat_completion), MessageAnswer("msg_1", "claude-x", None))
"""

from typing import Any

from typing_extensions import disjoint_base

from .events import Decoder, Sink

class InvalidAnswer(ValueError):
    """A ``chat.completion`` gw cannot read as an answer: no first choice with a
    message, or a tool call that is not an object with a function name (or whose
    arguments an encoder finds are not a JSON object). gw answers 502 (retryable)."""

@disjoint_base
class ChatDecoder(Decoder):
    """``chat.completion.chunk`` SSE bytes in, events on ``sink`` out.

        decoder = ChatDecoder(Recorder())
        decoder.feed(b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"},'
                     b'"finish_reason":"stop"}]}\\n\\n'
                     b"data: [DONE]\\n\\n")
        # start("c1"), text(0, "Hi"), finish(0, "stop", None), end()

    ``start`` comes with the first chunk that has an id, choices or usage
    (Azure's first chunk, only ``prompt_filter_results``, is skipped). ``content``
    and ``refusal`` are text; ``reasoning_content`` (or vLLM's ``reasoning``)
    reasoning; ``tool_calls`` fragments ``tool_start`` (the first fragment of a
    call, which must name the function) and ``tool_args``, calls told apart by
    ``index`` (by ``id`` when a server omits it; a new ``call_`` id when it
    has none); ``finish_reason`` ``finish`` (stop, length, tool_calls,
    content_filter, function_call -> tool_calls, others stop; stop with tool
    calls is tool_calls; ``matched`` is vLLM's ``stop_reason`` string);
    ``usage`` ``usage(prompt - cached, completion, cached, 0, reasoning)``;
    ``[DONE]`` ``end`` when choice 0 finished. Each choice's events carry its
    ``index``; deltas after a choice's finish are ignored.
    """

    done: bool
    """``[DONE]`` came after choice 0's finish (or the stream ended there): ``end`` was called."""
    error: Any
    """The error object of an ``{"error": ...}`` event (decoding stops)."""
    invalid: str | None
    """Why the bytes are not a chunk stream: not SSE, not JSON, cut inside an
    event, a tool call without a name, ``[DONE]`` before choice 0 finished."""

    def __init__(self, sink: Sink) -> None: ...
    def feed(self, chunk: bytes) -> None: ...
    def close(self) -> None:
        """At the upstream's EOF: a cut event is invalid; a finished stream
        without ``[DONE]`` (some compatible servers) ends here."""

def read_answer(answer: dict[str, Any], sink: Sink) -> None:
    """A whole ``chat.completion`` as the events of its stream: start (its id),
    for each choice reasoning, text (``content``, parts joined; else ``refusal``),
    tool calls (arguments as one fragment; an object's JSON) and finish; usage; end.

    Raises ``InvalidAnswer`` when there is no first choice with a message or a
    tool call is not an object with a function name and JSON-text arguments.
    """

