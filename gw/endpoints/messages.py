"""POST /v1/messages (being written)."""


from blacksheep import Request, Response

from ..errors import NotFound
from ..wire import error_response
from .common import begin, finish


async def messages(request: Request) -> Response:
    ctx = begin(request, "messages")
    response = error_response(NotFound("/v1/messages is not available yet"), ctx)
    finish(ctx)
    return response
