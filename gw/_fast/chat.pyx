# cython: language_level=3
"""OpenAI Chat Completions, the client protocol: events out as chunks or as one answer.

``ChatChunks`` writes ``chat.completion.chunk`` SSE events, ``ChatAnswer``
collects one ``chat.completion``. Both are ``events.Encoder``s: any backend
decoder drives them.

    enc = ChatChunks(1700000000, "gpt-4o", include_usage=True)
    enc.start("msg_1"); enc.text(0, "Hi"); enc.finish(0, "stop", None); enc.end()
    enc.take()   # role chunk, content chunk, finish chunk, usage chunk, [DONE]

What the chunks hold, in order, per choice: the role chunk
(``{"role": "assistant", "content": ""}``) with the choice's first event,
``content`` / ``reasoning_content`` deltas, tool calls (a start with id, type
and name, then argument fragments), at the finish ``"{}"`` for each call that
got no argument, then the finish chunk. At the end the usage chunk (when
asked) and ``[DONE]``. Nothing goes out on ``start``; events of a finished
choice are dropped; a finish's matched stop sequence has no place in this
protocol.
"""

import orjson

from .events cimport Encoder
from .rules cimport make_usage, new_id

_dumps = orjson.dumps

DONE_EVENT = b"data: [DONE]\n\n"

# Pieces of the chunk events. The bytes are what orjson gives for the same
# dict (compact, keys in this order): building by concatenation spares a dict
# and a dumps of the envelope on every delta.
cdef bytes _DONE = DONE_EVENT
cdef bytes _NOTHING = b""
cdef bytes _ID_OPEN = b'data: {"id":'
cdef bytes _OBJECT = b',"object":'
cdef bytes _CREATED = b',"created":'
cdef bytes _MODEL = b',"model":'
cdef bytes _CHOICES = b',"choices":'
cdef bytes _CHOICE_OPEN = b'[{"index":'
cdef bytes _DELTA = b',"delta":'
cdef bytes _TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'
cdef bytes _CLOSE_TAIL = b'}' + _TAIL                       # after a one-key delta's value
cdef bytes _ROLE = b'{"role":"assistant","content":""}' + _TAIL
cdef bytes _CONTENT_OPEN = b'{"content":'
cdef bytes _REASONING_OPEN = b'{"reasoning_content":'
cdef bytes _CALL_OPEN = b'{"tool_calls":['
cdef bytes _CALL_CLOSE = b']}' + _TAIL
cdef bytes _ARGS_OPEN = b'{"tool_calls":[{"index":'
cdef bytes _ARGS_MID = b',"function":{"arguments":'
cdef bytes _ARGS_TAIL = b'}}]}' + _TAIL
cdef bytes _EMPTY_ARGS = b'"{}"' + _ARGS_TAIL
cdef bytes _USAGE_OPEN = b'[],"usage":'
cdef bytes _EVENT_END = b'}\n\n'
cdef dict _FINISH_TAILS = {
    name: b'{},"logprobs":null,"finish_reason":' + _dumps(name) + b'}]}\n\n'
    for name in ("stop", "length", "tool_calls", "content_filter")
}


cpdef str chat_id(object id):
    """The ``chat.completion`` id for a backend's answer id.

    chat_id("chatcmpl-1") == "chatcmpl-1"; chat_id("msg_1") == "chatcmpl-msg_1";
    chat_id(None) -> "chatcmpl-" + 24 hex digits (so is an empty or non-string id).
    """
    if isinstance(id, str) and id:
        if (<str>id).startswith("chatcmpl-"):
            return id
        return "chatcmpl-" + <str>id
    return new_id("chatcmpl-")


cdef int _put(list items, int index, object item) except -1:
    # items[index] = item, growing the list with None as needed
    while len(items) <= index:
        items.append(None)
    items[index] = item
    return 0


cdef object _get(list items, int index):
    if 0 <= index < len(items):
        return items[index]
    return None


cdef dict _call_object(int index, str call_id, str name, object extra):
    """An OpenAI tool call, arguments empty; with ``index`` (a delta's) unless -1."""
    cdef dict call = {"index": index} if index >= 0 else {}
    call["id"] = call_id if call_id is not None else new_id("call_")
    call["type"] = "function"
    call["function"] = {"name": name if name is not None else "", "arguments": ""}
    if extra:
        call.update(extra)
    return call


# ------------------------------------------------------------------ what chat and legacy completions share

cdef class OpenAIEncoder(Encoder):
    """What an OpenAI answer's encoders share: ``created``, ``model``, the
    ``object`` name and the id (``chat_id`` of start's, or ``completions.completion_id``)."""

    def __init__(self, long long created, str model):
        self._created = created
        self._model = model
        self._choices = {}

    @property
    def id(self):
        """The answer's id, once ``start`` came (or the first event or ``answer()`` made one)."""
        return self._id

    cdef str _answer_id(self, object id):
        return chat_id(id)

    cdef int _begin(self, object id) except -1:
        self._id = self._answer_id(id)
        return 0

    cpdef start(self, object id):
        if self._id is None:
            self._begin(id)
        Encoder.start(self, id)


cdef class OpenAIChunks(OpenAIEncoder):
    """An OpenAI chunk stream's envelope (``id``, ``object``, ``created``,
    ``model``), and its end: the usage chunk (when ``include_usage``) and
    ``[DONE]``. ``ChatChunks`` and ``completions.CompletionChunks`` add the
    choices."""

    def __init__(self, long long created, str model, bint include_usage):
        OpenAIEncoder.__init__(self, created, model)
        self._include_usage = include_usage

    cdef int _begin(self, object id) except -1:
        OpenAIEncoder._begin(self, id)
        self._envelope = (_ID_OPEN + _dumps(self._id) + _OBJECT + _dumps(self._object) + _CREATED
                          + str(self._created).encode() + _MODEL + _dumps(self._model) + _CHOICES)
        return 0

    cdef bytes _choice_head(self, int choice, bytes before, bytes after):
        """What every chunk of choice ``choice`` holds up to its value (before and after its index)."""
        if self._envelope is None:
            self._begin(None)
        return before + str(choice).encode() + after

    cdef int _keep(self, int choice, object state) except -1:
        self._choices[choice] = state
        if choice == 0:
            self._first = state
        return 0

    cpdef end(self):
        cdef object usage
        if self.ended:
            return
        if self._envelope is None:
            self._begin(None)
        if self._include_usage:
            usage = self.openai_usage()
            if usage is None:
                usage = make_usage(0, 0)
            self._out.append(cat4(self._envelope, _USAGE_OPEN, _dumps(usage), _EVENT_END))
        self._out.append(_DONE)
        Encoder.end(self)


cdef class _Message:
    pass


cdef class OpenAIAnswer(OpenAIEncoder):
    """One whole OpenAI answer: per choice the joined text (and for chat the
    reasoning and tool calls) and the finish; ``answer()`` wraps the choices
    in the envelope with ``usage`` (zeros when none came)."""

    cdef _Message _message(self, int choice):
        """The choice's state; None once it finished."""
        cdef _Message m = self._choices.get(choice)
        if m is None:
            m = _Message()
            m.texts = []
            m.reasoning = []
            m.calls = []
            m.args = []
            self._choices[choice] = m
        elif m.finish is not None:
            return None
        return m

    cdef list _choice_list(self):
        return []

    cdef int _add(self, int choice, str text, bint reasoning) except -1:
        cdef _Message m = self._message(choice) if text else None
        if m is None:
            return 0
        if reasoning:
            m.reasoning.append(text)
        else:
            m.texts.append(text)
        return 0

    cpdef text(self, int choice, str text):
        self._add(choice, text, False)

    cpdef finish(self, int choice, str reason, object matched):
        cdef _Message m = self._message(choice)
        if m is None:
            return
        m.finish = reason if reason is not None else "stop"
        Encoder.finish(self, choice, reason, matched)

    cpdef dict answer(self):
        """The answer of the events so far."""
        cdef object usage
        if self._id is None:
            self._begin(None)
        usage = self.openai_usage()
        return {
            "id": self._id,
            "object": self._object,
            "created": self._created,
            "model": self._model,
            "choices": self._choice_list(),
            "usage": usage if usage is not None else make_usage(0, 0),
        }


# ------------------------------------------------------------------ stream

cdef class _Call:
    pass


cdef class _Choice:
    pass


cdef class ChatChunks(OpenAIChunks):
    """Events in, ``chat.completion.chunk`` SSE events out (``take()`` them).

    ``ChatChunks(created, model, include_usage)``: ``created`` and ``model``
    go in every chunk; ``include_usage`` adds the usage chunk before
    ``[DONE]``. The id is ``chat_id`` of ``start``'s.
    """

    def __cinit__(self, *args, **kwargs):
        self._object = "chat.completion.chunk"

    cdef _Choice _open(self, int choice):
        """The choice's state, its role chunk written; None once it finished."""
        cdef _Choice c
        cdef bytes index
        if choice == 0:
            c = <_Choice>self._first
            if c is not None and c.opened and not c.finished:
                return c
        else:
            c = self._choices.get(choice)
        if c is None:
            c = _Choice()
            index = self._choice_head(choice, _CHOICE_OPEN, _DELTA)   # begins the stream if need be
            c.head = self._envelope + index
            c.calls = []
            self._keep(choice, c)
        if c.finished:
            return None
        if not c.opened:
            c.opened = True
            self._out.append(c.head + _ROLE)
        return c

    cdef int _delta(self, int choice, bytes open, str text) except -1:
        # a one-key delta: content or reasoning_content
        cdef _Choice c
        if not text:
            return 0
        c = self._open(choice)
        if c is not None:
            self._out.append(cat4(c.head, open, _dumps(text), _CLOSE_TAIL))
        return 0

    cpdef text(self, int choice, str text):
        self._delta(choice, _CONTENT_OPEN, text)

    cpdef reasoning(self, int choice, str text):
        self._delta(choice, _REASONING_OPEN, text)

    cpdef tool_start(self, int choice, int index, str call_id, str name, object extra):
        cdef _Choice c = self._open(choice)
        cdef _Call call
        if c is None or index < 0:
            return
        call = _Call()
        call.args_head = c.head + _ARGS_OPEN + str(index).encode() + _ARGS_MID
        _put(c.calls, index, call)
        self._out.append(cat4(c.head, _CALL_OPEN, _dumps(_call_object(index, call_id, name, extra)),
                               _CALL_CLOSE))

    cpdef tool_args(self, int choice, int index, str fragment):
        cdef _Choice c
        cdef _Call call
        if not fragment:
            return
        c = self._open(choice)
        if c is None:
            return
        call = _get(c.calls, index)
        if call is None:
            return  # a fragment of a call that never started: nothing a client could join it to
        call.has_args = True
        self._out.append(cat4(call.args_head, _dumps(fragment), _ARGS_TAIL, _NOTHING))

    cpdef finish(self, int choice, str reason, object matched):
        cdef _Choice c = self._open(choice)
        cdef _Call call
        cdef bytes tail
        if c is None:
            return  # one finish chunk per choice
        # A tool call without arguments gets "{}": clients json.loads them.
        for call in c.calls:
            if call is not None and not call.has_args:
                call.has_args = True
                self._out.append(call.args_head + _EMPTY_ARGS)
        c.finished = True
        if reason is None:
            reason = "stop"
        tail = _FINISH_TAILS.get(reason)
        if tail is None:
            tail = b'{},"logprobs":null,"finish_reason":' + _dumps(reason) + b'}]}\n\n'
        self._out.append(c.head + tail)
        Encoder.finish(self, choice, reason, matched)


# ------------------------------------------------------------------ whole answer

cdef class ChatAnswer(OpenAIAnswer):
    """Events in, one ``chat.completion`` out:

        enc = ChatAnswer(1700000000, "gpt-4o")
        read_answer(message, enc)     # a backend's whole answer
        enc.answer()                  # {"id": ..., "object": "chat.completion", ...}

    Per choice: the text joined as ``content`` (null when there is none but
    tool calls, else ""), the reasoning joined as ``reasoning_content`` (only
    when some came), ``tool_calls`` with their fragments joined ("{}" when
    none), the finish reason (stop, or tool_calls with tool calls, when none
    came). ``usage`` is always there (zeros when none came).
    """

    def __cinit__(self, *args, **kwargs):
        self._object = "chat.completion"

    cpdef reasoning(self, int choice, str text):
        self._add(choice, text, True)

    cpdef tool_start(self, int choice, int index, str call_id, str name, object extra):
        cdef _Message m = self._message(choice)
        if m is None or index < 0:
            return
        _put(m.calls, index, _call_object(-1, call_id, name, extra))
        _put(m.args, index, [])

    cpdef tool_args(self, int choice, int index, str fragment):
        cdef _Message m = self._message(choice) if fragment else None
        cdef object args = _get(m.args, index) if m is not None else None
        if args is not None:
            (<list>args).append(fragment)

    cdef list _choice_list(self):
        cdef list choices = []
        cdef list calls
        cdef dict message, call
        cdef _Message m
        cdef object index
        cdef Py_ssize_t i
        for index in sorted(self._choices):
            m = self._choices[index]
            calls = []
            for i in range(len(m.calls)):
                call = m.calls[i]
                if call is None:
                    continue
                call["function"]["arguments"] = "".join(m.args[i]) or "{}"
                calls.append(call)
            message = {
                "role": "assistant",
                "content": "".join(m.texts) if m.texts or not calls else None,
                "refusal": None,
            }
            if m.reasoning:
                message["reasoning_content"] = "".join(m.reasoning)
            if calls:
                message["tool_calls"] = calls
            choices.append({
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": m.finish if m.finish is not None else ("tool_calls" if calls else "stop"),
            })
        return choices
