"""POST /v1/responses: OpenAI's Responses API (the Codex CLI's), any backend out;
its side routes, which only a native backend serves.

OpenAI and Azure providers with ``responses: native`` (their default) get the
request as it is (only ``model`` rewritten) and their answer goes back
unchanged. Every other backend gets the request's OpenAI chat form
(``gw._fast.responses.to_chat``, read once, on the first such target), and its
decoder's events are written as a Response object or the Responses stream
events (``ResponseAnswer``, ``ResponseEvents``). gw keeps no responses: on a
converted backend ``previous_response_id`` is a 400 and ``store`` changes
nothing (the answer says ``x-gw-stored: false``).

``POST /v1/responses/compact`` and ``/v1/responses/input_tokens`` route by
their ``model`` to a native backend; a stored response's routes (``GET`` /
``DELETE /v1/responses/{id}``, ``POST .../cancel``, ``GET .../input_items``)
carry no model and go to each native provider in turn (``pipeline.run_stored``).
"""

from __future__ import annotations

import re
import time
from typing import Any

from .._fast.responses import ResponseAnswer, ResponseEvents, response_id, to_chat
from ..call import Encoders, Operation
from ..errors import BadRequest, NotFound
from ..pipeline import Parsed
from ..wire import require, stream_flag


def validate_responses(body: dict[str, Any]) -> tuple[str, bool]:
    """The model and whether to stream; 400 for what no backend could take."""
    model = require(body, "model", str, "a string")
    items = body.get("input")
    if items is not None and not isinstance(items, (str, list)):
        raise BadRequest("'input' must be a string or an array of input items", param="input")
    return model, stream_flag(body)


def read_responses(body: dict[str, Any]) -> Parsed:
    model, stream = validate_responses(body)
    # `model` is the name the client asked for: the upstream's means nothing to it.
    encoders = Encoders(
        lambda _: ResponseAnswer(response_id(), int(time.time()), model, body),
        lambda _: ResponseEvents(response_id(), int(time.time()), model, body),
    )
    return Parsed(Operation.RESPONSES, model, stream, encoders, lambda: to_chat(body))


def read_compact(body: dict[str, Any]) -> Parsed:
    model, _ = validate_responses(body)
    return Parsed(Operation.RESPONSES_COMPACT, model)


def read_input_tokens(body: dict[str, Any]) -> Parsed:
    model, _ = validate_responses(body)
    return Parsed(Operation.RESPONSES_INPUT_TOKENS, model)


_STORED_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def stored_path(response_id: str, action: str = "", query: bytes = b"") -> str:
    """The backend path of a stored response's route; 404 for an id that is not one."""
    if not _STORED_ID.match(response_id):
        raise NotFound(f"no response with id '{response_id[:200]}'")
    path = f"{response_id}/{action}" if action else response_id
    return f"{path}?{query.decode('latin-1')}" if query else path


__all__ = ["read_compact", "read_input_tokens", "read_responses", "stored_path", "validate_responses"]
