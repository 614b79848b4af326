"""GET /v1/models: the OpenAI list of the models the caller's key may use."""

from __future__ import annotations

import orjson
from blacksheep import Request, Response

from ..auth import authenticate
from ..context import Exchange
from ..runtime import Runtime
from ..wire import json_response


async def list_models(request: Request, exchange: Exchange, runtime: Runtime) -> Response:
    caller = authenticate(runtime.tables.auth, request)
    if caller is not None:
        exchange.info = exchange.info.known(key_name=caller.name)
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "gw"}
        for name in runtime.visible_models(caller)
    ]
    return json_response(orjson.dumps({"object": "list", "data": data}), exchange.info, exchange.outcome)
