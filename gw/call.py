"""What an endpoint asks of a backend: the operation, the request forms, the client's encoders.

Endpoints build a ``Call``; adapters read it (neither imports the other)::

    call = Call(info, Operation.MESSAGES, body, lambda: to_openai(body), MESSAGES_ENCODERS(...))
    # a pass-through adapter (Anthropic) sends `call.body` and forwards the bytes;
    # a converting one sends `call.chat()` (the OpenAI chat form) and writes its
    # decoder's events into `call.encoders.stream(model)` or `call.encoders.whole(model)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ._fast.chat import ChatAnswer
from ._fast.completions import CompletionAnswer
from ._fast.events import Encoder
from ._fast.messages import MessageAnswer
from ._fast.responses import ResponseAnswer
from ._fast.rules import InvalidInput
from .context import RequestInfo
from .errors import BadRequest


class Operation(StrEnum):
    """What a request asks; an adapter lists those it serves in ``operations``."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    MESSAGES = "messages"
    RESPONSES = "responses"
    RESPONSES_COMPACT = "responses/compact"  # native Responses backends only, like the two below
    RESPONSES_INPUT_TOKENS = "responses/input_tokens"
    EMBEDDINGS = "embeddings"
    COUNT_TOKENS = "count_tokens"  # the input's token count (Anthropic's /v1/messages/count_tokens)


# What a backend that takes the OpenAI chat form serves, converted where it must be:
# every adapter lists these, and what it serves besides (``operations``).
CHAT_FORMS = frozenset({Operation.CHAT, Operation.COMPLETIONS, Operation.MESSAGES, Operation.RESPONSES})

# A whole answer's encoder: events in, the client's answer object out (``answer()``).
WholeEncoder = ChatAnswer | CompletionAnswer | MessageAnswer | ResponseAnswer


@dataclass(frozen=True, slots=True)
class Encoders:
    """The client protocol's writers, given the name of the model that answers."""

    whole: Callable[[str], WholeEncoder]
    stream: Callable[[str], Encoder]


class Call:
    """One request as every target sees it (the same object across retries: never changed)."""

    __slots__ = (
        "info",
        "operation",
        "body",
        "encoders",
        "include_usage",
        "headers",
        "estimate",
        "_to_chat",
        "_chat",
    )

    def __init__(
        self,
        info: RequestInfo,
        operation: Operation,
        body: dict[str, Any],
        encoders: Encoders | None = None,
        to_chat: Callable[[], dict[str, Any]] | None = None,
        include_usage: bool = False,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        estimate: Callable[[], bytes] | None = None,
    ) -> None:
        self.info = info
        self.operation = operation
        self.body = body  # the client's own request (pass-through sends a copy of it)
        self.encoders = encoders
        self.include_usage = include_usage  # stream_options.include_usage: the client wants the usage chunk
        # The client's headers that a backend of its own protocol gets on pass-through
        # (anthropic-beta, anthropic-version), over the provider's; converting backends ignore them.
        self.headers = headers
        # gw's own answer for a target whose adapter lacks the operation (count_tokens:
        # an estimate), made without calling that backend; None: such a target is a 400.
        self.estimate = estimate
        self._to_chat = to_chat
        self._chat: dict[str, Any] | None = None if to_chat is not None else body

    def chat(self) -> dict[str, Any]:
        """The OpenAI chat form of the request, for converting backends.

        Read on the first target that needs it, then kept: a request an
        Anthropic backend takes as it is may hold what chat cannot express.
        """
        chat = self._chat
        if chat is None:
            assert self._to_chat is not None
            try:
                chat = self._chat = self._to_chat()
            except InvalidInput as exc:
                raise BadRequest(exc.message, param=exc.param) from None
        return chat

    def whole_encoder(self, model: str) -> WholeEncoder:
        assert self.encoders is not None, f"{self.operation} has no answer encoder"
        return self.encoders.whole(model)

    def stream_encoder(self, model: str) -> Encoder:
        assert self.encoders is not None, f"{self.operation} has no stream encoder"
        return self.encoders.stream(model)


def openai_encoders(
    whole: Callable[[int, str], WholeEncoder], stream: Callable[[int, str, bool], Encoder]
) -> tuple[Encoders, Encoders]:
    """An OpenAI-shaped protocol's encoders without and with the usage chunk
    (``ENCODERS[include_usage]``); ``created`` is when the answer is written."""

    def pair(include_usage: bool) -> Encoders:
        return Encoders(
            lambda model: whole(int(time.time()), model),
            lambda model: stream(int(time.time()), model, include_usage),
        )

    return pair(False), pair(True)


def wants_usage(body: dict[str, Any]) -> bool:
    """``stream_options.include_usage`` is true."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True
