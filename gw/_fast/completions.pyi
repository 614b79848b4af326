"""Legacy completions (``/v1/completions``) on backends that only chat.

    chat = completion_to_chat({"model": "m", "prompt": "Say hi", "max_tokens": 5})
    # {"model": "m", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 5}

    enc = CompletionChunks(1700000000, "m", include_usage=False)
    enc.start("chatcmpl-1"); enc.text(0, "Hi"); enc.finish(0, "stop", None); enc.end()
    enc.take()
    # data: {"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",
    #        "choices":[{"text":"Hi","index":0,"logprobs":null,"finish_reason":null}]}
    # data: {...,"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]}
    # data: [DONE]
"""

from typing import Any

from typing_extensions import disjoint_base

from .chat import OpenAIAnswer, OpenAIChunks

def completion_id(id: object) -> str:
    """completion_id("chatcmpl-1") == "cmpl-1"; completion_id("cmpl-1") == "cmpl-1";
    completion_id("msg_1") == "cmpl-msg_1"; completion_id(None) -> "cmpl-" + 24 hex digits."""

@disjoint_base
class CompletionChunks(OpenAIChunks):
    """Events in, ``text_completion`` SSE events out (``take()`` them).

    A chunk per text event, one finish chunk per choice (``"text": ""``; a
    finish reason text completions lack, such as tool_calls, is stop), then
    the usage chunk (``choices: []``, when ``include_usage``) and ``[DONE]``.
    Reasoning and tool calls are dropped; nothing goes out before the first
    text or finish.
    """

    def __init__(self, created: int, model: str, include_usage: bool) -> None: ...

class CompletionAnswer(OpenAIAnswer):
    """Events in, one ``text_completion`` out (``answer()``): per choice the
    joined text and the finish reason; ``usage`` always (zeros when none came)."""

    def __init__(self, created: int, model: str) -> None: ...

def completion_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A legacy completions request as a chat request, for chat-only backends:

        completion_to_chat({"model": "m", "prompt": "Say hi", "max_tokens": 5})
        # {"model": "m", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 5}

    Raises ``InvalidInput`` for several prompts, token prompts, ``suffix``,
    ``echo``, ``best_of`` > 1 and ``logprobs``.
    """
