"""GET /v1/models: the OpenAI list of the models the caller's key may use."""


import orjson
from blacksheep import Request, Response

from ..auth import authenticate
from ..errors import GatewayError
from ..runtime import current
from ..wire import error_response, json_response
from .common import begin, finish


async def list_models(request: Request) -> Response:
    ctx = begin(request, "models")
    runtime = current.runtime
    assert runtime is not None
    try:
        caller = authenticate(runtime.tables.auth, request)
        if caller is not None:
            ctx.key_name = caller.name
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "gw"}
            for name in runtime.visible_models(caller)
        ]
        response = json_response(orjson.dumps({"object": "list", "data": data}), ctx)
    except GatewayError as exc:
        response = error_response(exc, ctx)
    finally:
        finish(ctx)
    return response
