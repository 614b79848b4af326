"""OpenAI Chat Completions, the client protocol: the event core's events as
``chat.completion.chunk`` SSE events (``ChatChunks``) or one ``chat.completion``
(``ChatAnswer``). Any backend decoder drives them:

    enc = ChatChunks(1700000000, "gpt-4o", include_usage=True)
    enc.start("msg_1")                 # nothing is written yet
    enc.text(0, "Hi")                  # the role chunk, then {"content": "Hi"}
    enc.usage(10, 2, 0, 0, 0)
    enc.finish(0, "stop", None)        # {"delta": {}, "finish_reason": "stop"}
    enc.end()                          # the usage chunk, then data: [DONE]
    out = enc.take()

    whole = ChatAnswer(1700000000, "gpt-4o")
    ...same events...
    whole.answer()                     # {"id": "chatcmpl-msg_1", "object": "chat.completion", ...}
"""

from typing import Any, Final

from typing_extensions import disjoint_base

from .events import Encoder

DONE_EVENT: Final[bytes]  # b"data: [DONE]\n\n"

def chat_id(id: object) -> str:
    """chat_id("chatcmpl-1") == "chatcmpl-1"; chat_id("msg_1") == "chatcmpl-msg_1";
    chat_id(None) (or "", or not a string) -> "chatcmpl-" + 24 hex digits."""

@disjoint_base
class OpenAIEncoder(Encoder):
    """What the encoders of an OpenAI answer share: ``created``, ``model``, the
    object name and the id (``chat_id``, or ``completions.completion_id``, of start's)."""

    def __init__(self, created: int, model: str) -> None: ...
    @property
    def id(self) -> str | None:
        """The answer's id, once ``start`` came (or the first event or ``answer()`` made one)."""

@disjoint_base
class OpenAIChunks(OpenAIEncoder):
    """An OpenAI chunk stream: each chunk's envelope; at ``end()`` the usage chunk
    (``choices: []``, when ``include_usage``) and ``[DONE]``."""

    def __init__(self, created: int, model: str, include_usage: bool) -> None: ...

class OpenAIAnswer(OpenAIEncoder):
    """One whole OpenAI answer: per choice the joined text and the finish;
    ``usage`` always (zeros when none came)."""

    def answer(self) -> dict[str, Any]: ...

class ChatChunks(OpenAIChunks):
    """Events in, ``chat.completion.chunk`` SSE events out (``take()`` them).

    Per choice (its ``index`` is the event's ``choice``): the role chunk with
    its first text, reasoning, tool or finish event; ``content`` and
    ``reasoning_content`` deltas; a tool call's start (index, id, type, name,
    ``arguments: ""``, ``extra`` merged in) and its argument fragments; at its
    finish ``"{}"`` for every call that got no fragment, then the finish chunk.
    Events of a finished choice are dropped. ``end()`` writes the usage chunk
    (``choices: []``, when ``include_usage``) and ``[DONE]``.
    """

    def __init__(self, created: int, model: str, include_usage: bool) -> None: ...

class ChatAnswer(OpenAIAnswer):
    """Events in, one ``chat.completion`` out (``answer()``).

    Each choice's message: ``content`` the joined text (null when there is
    none but tool calls, else ""), ``refusal`` null, ``reasoning_content``
    when reasoning came, ``tool_calls`` with their fragments joined ("{}"
    when none). ``finish_reason`` is the finish event's (stop, or tool_calls
    with tool calls, when none came); ``usage`` is zeros when none came.
    """

    def __init__(self, created: int, model: str) -> None: ...
