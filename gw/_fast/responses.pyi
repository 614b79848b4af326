"""The OpenAI Responses API as a client protocol, on any backend.

    chat = to_chat({"model": "m", "instructions": "Be brief.", "input": "Hi", "max_output_tokens": 100})
    # {"model": "m", "messages": [{"role": "system", "content": "Be brief."},
    #                             {"role": "user", "content": "Hi"}], "max_completion_tokens": 100}

    encoder = ResponseEvents(response_id(), int(time.time()), "gpt-x", body)   # events -> Responses SSE
    converter = Converter(ChatDecoder(encoder), encoder)                       # any decoder works
    out = converter.feed(upstream_bytes)                                       # Responses events, maybe b""

    whole = ResponseAnswer(response_id(), int(time.time()), "gpt-x", body)     # events -> one Response
    openai.read_answer(orjson.loads(answer), whole)                            # any decoder's read_answer
    response = whole.answer()

Both encoders take the client's request ``body``: the names of its ``custom``
tools (whose calls become ``custom_tool_call`` items) and the fields every
Response repeats (``tools``, ``tool_choice``, ``instructions``, ``text``, ...)
come from it.
"""

from typing import Any

from typing_extensions import disjoint_base

from .events import Encoder

def response_id() -> str:
    """A new Response id: ``resp_`` and 32 hex digits."""

def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI Responses request as an OpenAI Chat Completions request.

    ``instructions`` becomes the first (system) message; ``input`` (a string:
    one user message) items become messages: ``message`` items (or the short
    form without ``type``; ``developer`` -> ``system``) with ``input_text`` /
    ``output_text`` -> text parts (one text alone: a string), ``refusal``
    (assistant) -> refusal parts, ``input_image`` -> ``image_url`` parts,
    ``input_file`` with ``file_data`` -> ``file`` parts; ``function_call``
    and ``custom_tool_call`` items -> the assistant's ``tool_calls`` (joined
    to the assistant message just before them; a custom call's ``input`` as
    the arguments ``{"input": ...}``); ``function_call_output`` and
    ``custom_tool_call_output`` -> ``tool`` messages (text parts joined with
    a newline; their images and files follow the run of tool messages as a
    user message: a chat tool message holds text only); ``reasoning`` items
    are dropped (no chat backend takes them).

    ``tools``: function tools as they are (``strict`` only when given),
    ``custom`` (freeform) tools as functions of one required string
    parameter ``input`` (a grammar ``format`` goes into the description);
    ``tool_choice`` auto/none/required/function/custom and
    ``parallel_tool_calls`` are kept when there are tools;
    ``max_output_tokens`` -> ``max_completion_tokens`` (``rules.max_tokens``);
    ``temperature``, ``top_p`` kept; ``user`` (else ``safety_identifier``)
    -> ``user``; ``text.format`` json_schema / json_object ->
    ``response_format``; ``reasoning.effort`` -> ``reasoning_effort``;
    ``stream: true`` -> ``stream`` + ``stream_options.include_usage``. Other
    fields (``store``, ``include``, ``metadata``, ``prompt_cache_key``,
    ``truncation``, ``service_tier``, ``text.verbosity``,
    ``reasoning.summary``, ``max_tool_calls``, ``top_logprobs``...) are not
    carried.

        to_chat({"model": "m", "input": [
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "18°C"}]})["messages"]
        # [{"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
        #   "function": {"name": "f", "arguments": "{}"}}]},
        #  {"role": "tool", "tool_call_id": "call_1", "content": "18°C"}]

    Raises ``InvalidInput`` (gw: 400, ``param`` the field's path such as
    ``input[3].content[0].type``) for what a chat backend cannot take:
    ``previous_response_id``, ``conversation``, ``prompt``,
    ``background: true``, OpenAI's built-in tools, stored files
    (``file_id``, ``file_url``), other item types, wrong types.
    """

@disjoint_base
class ResponsesEncoder(Encoder):
    """What both Responses encoders share: only choice 0 is written (Responses
    has no others); each run of text is a ``message`` item, each run of
    reasoning a ``reasoning`` item (its text as the summary), each tool call a
    ``function_call`` item, or a ``custom_tool_call`` when its name is one of
    the request's custom tools; in the order they came."""

    def __init__(self, response_id: str, created_at: int, model: str, request: dict[str, Any]) -> None: ...

class ResponseAnswer(ResponsesEncoder):
    """Events in, a Responses ``Response`` out (choice 0).

        encoder = ResponseAnswer("resp_1", 1700000000, "gpt-x", body)
        read_answer(chat_completion, encoder)
        encoder.answer()
        # {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-x",
        #  "output": [{"type": "reasoning", ...}, {"type": "message", ...}, {"type": "function_call", ...}],
        #  "usage": {"input_tokens": ..., ...}, "tools": [...], ...}

    ``status`` is completed, or incomplete with ``incomplete_details.reason``
    max_output_tokens (finish reason length) or content_filter. Function
    call ``arguments`` are the backend's text (``"{}"`` when blank); a custom
    call's ``input`` is the string ``input`` of its arguments (their raw text
    when they are not such an object). ``usage.input_tokens`` counts every
    input token (uncached, cache reads and writes, as ``rules.make_usage``);
    ``usage`` is None when the backend gave none. ``store`` is false: gw keeps
    no response.
    """

    def answer(self) -> dict[str, Any]:
        """The ``Response``."""

@disjoint_base
class ResponseEvents(ResponsesEncoder):
    """Events in, the Responses SSE events out (choice 0).

        encoder = ResponseEvents("resp_1", 1700000000, "gpt-x", body)
        encoder.start("chatcmpl-1"); encoder.text(0, "Hi"); encoder.finish(0, "stop", None)
        encoder.usage(5, 1, 0, 0, 0); encoder.end()
        encoder.take()
        # event: response.created               (status in_progress, output [])
        # event: response.in_progress
        # event: response.output_item.added     {"type":"message",...,"content":[]}
        # event: response.content_part.added
        # event: response.output_text.delta     {"delta":"Hi",...}
        # event: response.output_text.done
        # event: response.content_part.done
        # event: response.output_item.done
        # event: response.completed             (the whole Response, as ResponseAnswer's)

    Each event is written when its Sink call comes, with a rising
    ``sequence_number`` from 0, except at ``start``: ``response.created`` and
    ``response.in_progress`` come with the first content or the finish, so a
    backend error right after its start leaves nothing sent. An item ends
    when another kind of item starts (tool calls do not end each other:
    parallel calls interleave their argument deltas) or at the finish.
    Reasoning streams as one summary part; a custom tool call's input is
    written (one ``response.custom_tool_call_input.delta``, then ``.done``)
    when the call ends, since it is inside the arguments' JSON. At ``end``:
    ``response.completed``, or ``response.incomplete`` (finish reason length
    or content_filter).
    """

    sequence_number: int
    """The next event's: what ``response_failed`` takes after this stream broke."""

def response_failed(
    response_id: str, created_at: int, model: str, sequence_number: int, message: str, code: str
) -> bytes:
    """The ``response.failed`` event (a Response with ``status: "failed"``,
    ``error: {"code": code, "message": message}``, no output) that ends a
    stream the backend broke. The SDK types ``code`` as one of OpenAI's
    (``server_error``, ``rate_limit_exceeded``, ...).

        response_failed("resp_1", 1700000000, "gpt-x", 7, "upstream reset", "server_error")
        # b'event: response.failed\\ndata: {"type":"response.failed","sequence_number":7,...}\\n\\n'
    """
