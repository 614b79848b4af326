"""The ceiling of our own stack: BlackSheep + Granian answering a fixed chat.completion.

    granian --interface asgi --loop uvloop --workers 1 --no-ws --http 1 loadtests.noop_app:app
"""

from blacksheep import Application, Content, Request, Response

BODY = (
    b'{"id":"chatcmpl-noop0000000000000000000000","object":"chat.completion",'
    b'"created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"Hello! How can I help you today?"},'
    b'"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,'
    b'"completion_tokens":9,"total_tokens":21},"system_fingerprint":"fp_noop"}'
)

app = Application(show_error_details=False)


async def chat_completions(request: Request) -> Response:
    await request.read()  # consume the body like a real handler would
    return Response(200, None, Content(b"application/json", BODY))


app.router.add_post("/v1/chat/completions", chat_completions)
