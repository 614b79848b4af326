"""GET /v1/models and /v1/models/{id}: the models the caller's key may use.

In OpenAI's format, or Anthropic's when the request carries an
``anthropic-version`` header (``GatewayApp`` then marks it ``Protocol.ANTHROPIC``,
which also picks the envelope of its errors)::

    {"object": "list", "data": [{"id": "gpt-4o", "object": "model", "created": 0, "owned_by": "gw"}]}
    {"data": [{"type": "model", "id": "gpt-4o", "display_name": "gpt-4o",
               "created_at": "1970-01-01T00:00:00Z"}],
     "has_more": false, "first_id": "gpt-4o", "last_id": "gpt-4o"}

The list is whole (Anthropic's ``limit``, ``after_id``, ``before_id`` are not
read: ``has_more`` is always false). Names that are glob patterns
(``claude-*``) are not listed. A model the key may not use is a 404, as an
unknown one.
"""

from __future__ import annotations

from typing import Any

import orjson
from blacksheep import Request, Response

from ..auth import authenticate
from ..config.tables import ApiKey, is_pattern
from ..context import Exchange, Protocol
from ..errors import Forbidden, ModelNotFound
from ..runtime import Runtime
from ..wire import json_response

# gw knows no creation date of a model: the Unix epoch, as OpenAI's "created": 0.
CREATED_AT = "1970-01-01T00:00:00Z"


def _caller(request: Request, exchange: Exchange, runtime: Runtime) -> ApiKey | None:
    caller = authenticate(runtime.tables.auth, request)
    if caller is not None:
        exchange.info = exchange.info.known(caller.name)
    return caller


def _model(name: str, protocol: Protocol) -> dict[str, Any]:
    if protocol is Protocol.ANTHROPIC:
        return {"type": "model", "id": name, "display_name": name, "created_at": CREATED_AT}
    return {"id": name, "object": "model", "created": 0, "owned_by": "gw"}


async def list_models(request: Request, exchange: Exchange, runtime: Runtime) -> Response:
    caller = _caller(request, exchange, runtime)
    protocol = exchange.info.protocol
    data = [_model(name, protocol) for name in runtime.visible_models(caller)]  # exact names only
    if protocol is Protocol.ANTHROPIC:
        body: dict[str, Any] = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    else:
        body = {"object": "list", "data": data}
    return json_response(orjson.dumps(body), exchange.info, exchange.outcome)


async def get_model(request: Request, exchange: Exchange, runtime: Runtime, name: str) -> Response:
    """One model, by its public name: 404 when unknown or not the key's."""
    caller = _caller(request, exchange, runtime)
    missing = ModelNotFound(f"model '{name[:200]}' does not exist", param="model")
    if is_pattern(name):
        raise missing
    # a name only a pattern matches (``claude-opus-4-1`` under ``claude-*``) is a model too
    try:
        runtime.resolve(name, caller)
    except (ModelNotFound, Forbidden):
        raise missing from None
    return json_response(orjson.dumps(_model(name, exchange.info.protocol)), exchange.info, exchange.outcome)


__all__ = ["CREATED_AT", "get_model", "list_models"]
