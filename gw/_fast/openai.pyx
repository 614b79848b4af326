# cython: language_level=3
"""OpenAI Chat Completions as a backend protocol: its answers decoded into gw's events.

What OpenAI, Azure, vLLM and every compatible server send: a stream of
``chat.completion.chunk`` events (``ChatDecoder``) or a whole
``chat.completion`` (``read_answer``). Any client encoder takes the events.

    decoder = ChatDecoder(MessagesEvents("msg_1", "claude-x", None))
    decoder.feed(upstream_bytes)      # the encoder's take() has the client bytes
"""

import orjson

from .events cimport Decoder, Sink
from .rules cimport count, finish_reason, new_id
from .sse cimport Event, SSEDecoder

_dumps = orjson.dumps


class InvalidAnswer(ValueError):
    """A backend's chat.completion that cannot be read as an answer (gw: 502, retryable)."""


# OpenAI finish_reason -> gw's; anything else is "stop" (rules.finish_reason).
cdef dict _FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
}

cdef object _MAX_CHOICE = 2 ** 31 - 1


cdef inline bint _text(object value):
    """A non-empty string."""
    return isinstance(value, str) and len(<str>value) > 0


cdef int _usage(Sink sink, dict usage) except -1:
    """OpenAI usage as the usage event: prompt_tokens counts the cached tokens too."""
    cdef long long prompt = count(usage.get("prompt_tokens"))
    cdef long long cached = 0
    cdef long long reasoning = 0
    cdef object details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        cached = count((<dict>details).get("cached_tokens"))
    details = usage.get("completion_tokens_details")
    if isinstance(details, dict):
        reasoning = count((<dict>details).get("reasoning_tokens"))
    sink.usage(prompt - cached if prompt > cached else 0, count(usage.get("completion_tokens")),
               cached, 0, reasoning)
    return 0


cdef inline object _extra(dict call):
    """Gemini's OpenAI-compatible thought signature rides on the call: keep it."""
    cdef object value = call.get("extra_content")
    if isinstance(value, dict):
        return {"extra_content": value}
    return None


cdef inline object _matched(dict choice):
    """vLLM's ``stop_reason``: the stop string that ended the choice (a token id is no string)."""
    cdef object value = choice.get("stop_reason")
    return value if isinstance(value, str) else None


cdef int _choice_index(object raw, Py_ssize_t default) except -2:
    """The choice's ``index``, or ``default`` when absent; -1 for one no Sink can take."""
    if raw is None:
        return default
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= _MAX_CHOICE:
        return raw
    return -1


cdef class _Choice:
    pass


cdef class ChatDecoder(Decoder):
    """``chat.completion.chunk`` SSE bytes in, events out (see the contract in events.pxd).

        decoder = ChatDecoder(sink)
        decoder.feed(chunk); ...; decoder.close()
        decoder.done / decoder.error / decoder.invalid

    ``start`` comes with the first chunk that has an id, choices or usage (Azure's
    first chunk, with only ``prompt_filter_results``, is skipped); content and
    ``refusal`` are text, ``reasoning_content`` (or vLLM's ``reasoning``)
    reasoning; tool calls are told apart by ``index`` (by ``id`` when a server
    omits it). ``[DONE]`` ends the answer if choice 0 finished, and so does the
    end of a finished stream without ``[DONE]`` (some compatible servers).
    """

    def __init__(self, Sink sink):
        Decoder.__init__(self, sink)
        self._sse = SSEDecoder()
        self._first = _Choice()
        self._first.index = 0
        self._first.tools = {}
        self._others = {}

    cpdef feed(self, bytes chunk):
        cdef list events = self._events(chunk)
        cdef Event event
        cdef bytes data
        cdef object obj
        if events is None:
            return
        for event in events:
            data = event.data
            # Chunks start with `{`; only anything else can be [DONE].
            if not data.startswith(b"{") and data.strip() == b"[DONE]":
                self._end()
                return
            obj = self._object(data, "an event")
            if obj is None:
                return
            self._chunk(<dict>obj)
            if self.error is not None or self.invalid is not None:
                return

    cpdef close(self):
        """At the upstream's EOF: a cut event is invalid; a finished stream that
        lacked ``[DONE]`` ends here."""
        if self._close_sse() and self._first.finished and not self._stopped():
            self._end()

    cdef int _chunk(self, dict obj) except -1:
        cdef object value, choices, choice, usage
        cdef _Choice state
        cdef int index
        value = obj.get("error")
        if value is not None:
            self.error = value
            return 0
        choices = obj.get("choices")
        usage = obj.get("usage")
        if not self._started:
            value = obj.get("id")
            if _text(value):
                self._started = True
                self._sink.start(value)
            elif (isinstance(choices, list) and choices) or isinstance(usage, dict):
                self._started = True
                self._sink.start(None)
        if isinstance(usage, dict):
            _usage(self._sink, <dict>usage)
        if isinstance(choices, list):
            for choice in <list>choices:
                if not isinstance(choice, dict):
                    continue
                index = _choice_index((<dict>choice).get("index"), 0)
                if index == 0:
                    state = self._first
                elif index < 0:
                    continue
                else:
                    state = self._others.get(index)
                    if state is None:
                        state = _Choice()
                        state.index = index
                        state.tools = {}
                        self._others[index] = state
                self._choice(state, <dict>choice)
                if self.invalid is not None:
                    return 0
        return 0

    cdef int _choice(self, _Choice state, dict choice) except -1:
        cdef object delta, text, calls, call, finish
        if state.finished:
            return 0
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text = (<dict>delta).get("reasoning_content")
            if not _text(text):
                text = (<dict>delta).get("reasoning")
            if _text(text):
                self._sink.reasoning(state.index, text)
            text = (<dict>delta).get("content")
            if not _text(text):
                text = (<dict>delta).get("refusal")
            if _text(text):
                self._sink.text(state.index, text)
            calls = (<dict>delta).get("tool_calls")
            if isinstance(calls, list):
                for call in <list>calls:
                    if isinstance(call, dict):
                        self._tool(state, <dict>call)
                        if self.invalid is not None:
                            return 0
        finish = choice.get("finish_reason")
        if finish is not None:
            state.finished = True
            self._sink.finish(state.index, finish_reason(_FINISH, finish, state.calls > 0), _matched(choice))
        return 0

    cdef int _tool(self, _Choice state, dict call) except -1:
        cdef object key = call.get("index")
        cdef object function = call.get("function")
        cdef object name, arguments, call_id, n
        if not isinstance(function, dict):
            function = {}
        if not isinstance(key, int):
            # No index (some servers): a call with an id is a new one.
            call_id = call.get("id")
            key = call_id if _text(call_id) else state.last_tool
        n = state.tools.get(key)
        if n is None:
            name = (<dict>function).get("name")
            if not _text(name):
                self.invalid = "a tool call started without a function name"
                return 0
            call_id = call.get("id")
            if not _text(call_id):
                call_id = new_id("call_")
            n = state.calls
            state.calls += 1
            state.tools[key] = n
            state.last_tool = key
            self._sink.tool_start(state.index, n, call_id, name, _extra(call))
        arguments = (<dict>function).get("arguments")
        if _text(arguments):
            self._sink.tool_args(state.index, n, arguments)
        elif isinstance(arguments, dict) and arguments:
            self._sink.tool_args(state.index, n, _dumps(arguments).decode())
        return 0

    cdef int _end(self) except -1:
        if not self._first.finished:
            self.invalid = "the stream ended without a finish_reason"
            return 0
        self.done = True
        self._sink.end()
        return 0


cdef str _answer_text(object content):
    cdef list texts
    cdef object part
    if isinstance(content, str):
        return <str>content
    if isinstance(content, list):  # content parts, from some servers
        texts = []
        for part in <list>content:
            if isinstance(part, dict) and isinstance((<dict>part).get("text"), str):
                texts.append((<dict>part)["text"])
        return "".join(texts)
    return ""


cdef int _read_choice(dict message, dict choice, int index, Sink sink) except -1:
    cdef object value, calls, call, function, arguments, call_id
    cdef str text
    cdef Py_ssize_t n, ncalls = 0
    value = message.get("reasoning_content")
    if not _text(value):
        value = message.get("reasoning")
    if _text(value):
        sink.reasoning(index, value)
    text = _answer_text(message.get("content"))
    if not text:
        value = message.get("refusal")
        if isinstance(value, str):
            text = <str>value
    if text:
        sink.text(index, text)
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        ncalls = len(<list>calls)
        for n in range(ncalls):
            call = (<list>calls)[n]
            if not isinstance(call, dict):
                raise InvalidAnswer(f"tool_calls[{n}] is not an object")
            function = (<dict>call).get("function")
            if not isinstance(function, dict) or not isinstance((<dict>function).get("name"), str):
                raise InvalidAnswer(f"tool_calls[{n}] has no function name")
            arguments = (<dict>function).get("arguments")
            if not (arguments is None or isinstance(arguments, (str, dict))):
                raise InvalidAnswer(f"tool_calls[{n}].function.arguments is not valid JSON")
            call_id = (<dict>call).get("id")
            if not _text(call_id):
                call_id = new_id("call_")
            sink.tool_start(index, n, call_id, (<dict>function)["name"], _extra(<dict>call))
            if _text(arguments):
                sink.tool_args(index, n, arguments)
            elif isinstance(arguments, dict) and arguments:
                sink.tool_args(index, n, _dumps(arguments).decode())
    sink.finish(index, finish_reason(_FINISH, choice.get("finish_reason"), ncalls > 0), _matched(choice))
    return 0


cpdef read_answer(dict answer, Sink sink):
    """A whole ``chat.completion`` as the events of its stream: start, each
    choice's reasoning, text, tool calls and finish, usage, end.

    Raises ``InvalidAnswer`` when there is no first choice with a message, or a
    tool call is not an object with a function name.
    """
    cdef object choices, choice, message, value
    cdef Py_ssize_t n
    cdef int index
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance((<list>choices)[0], dict):
        raise InvalidAnswer("no choices")
    if not isinstance((<dict>(<list>choices)[0]).get("message"), dict):
        raise InvalidAnswer("the choice has no message")
    value = answer.get("id")
    sink.start(value if _text(value) else None)
    for n in range(len(<list>choices)):
        choice = (<list>choices)[n]
        if not isinstance(choice, dict):
            continue
        message = (<dict>choice).get("message")
        index = _choice_index((<dict>choice).get("index"), n)
        if not isinstance(message, dict) or index < 0:
            continue
        _read_choice(<dict>message, <dict>choice, index, sink)
    value = answer.get("usage")
    if isinstance(value, dict):
        _usage(sink, <dict>value)
    sink.end()
