# cython: language_level=3
"""Legacy completions (``/v1/completions``) on backends that only chat.

The request side: ``completion_to_chat`` turns the prompt into one user
message. The answer side: ``CompletionChunks`` writes the event core's events
as ``text_completion`` SSE events, ``CompletionAnswer`` collects one
``text_completion``; both are ``events.Encoder``s. Only text and the finish
go out: reasoning and tool calls have no place in a text completion.
"""

import orjson

from .chat cimport OpenAIAnswer, OpenAIChunks, _Message, cat4
from .rules import InvalidInput
from .events cimport Encoder
from .rules cimport make_usage, new_id

_dumps = orjson.dumps

cdef bytes _TEXT_OPEN = b'[{"text":'
cdef bytes _INDEX = b',"index":'
cdef bytes _MID = b',"logprobs":null,"finish_reason":'
cdef bytes _NULL_TAIL = b'null}]}\n\n'
cdef bytes _EMPTY_TEXT = b'""'
# A text completion's finish reasons; a chat one it has not (tool_calls) is stop.
cdef dict _FINISH_TAILS = {
    name: _dumps(name) + b'}]}\n\n' for name in ("stop", "length", "content_filter")
}


cpdef str completion_id(object id):
    """The ``text_completion`` id for a backend's answer id.

    completion_id("chatcmpl-1") == "cmpl-1"; completion_id("cmpl-1") == "cmpl-1";
    completion_id("msg_1") == "cmpl-msg_1"; completion_id(None) -> "cmpl-" + 24 hex digits.
    """
    if isinstance(id, str) and id:
        if (<str>id).startswith("cmpl-"):
            return id
        if (<str>id).startswith("chatcmpl-") and len(<str>id) > 9:
            return "cmpl-" + (<str>id)[9:]
        return "cmpl-" + <str>id
    return new_id("cmpl-")


cdef inline str _finish(str reason):
    if reason == "length" or reason == "content_filter":
        return reason
    return "stop"


# ------------------------------------------------------------------ stream

cdef class _Text:
    pass


cdef class CompletionChunks(OpenAIChunks):
    """Events in, ``text_completion`` SSE events out (``take()`` them).

    ``CompletionChunks(created, model, include_usage)``. A chunk per text
    event (``{"text": ..., "index": choice, ...}``), one finish chunk per
    choice (``"text": ""``), at the end the usage chunk (``choices: []``, when
    ``include_usage``) and ``[DONE]``. Nothing goes out before the first text
    or finish; reasoning and tool calls are dropped.
    """

    def __cinit__(self, *args, **kwargs):
        self._object = "text_completion"

    cdef str _answer_id(self, object id):
        return completion_id(id)

    cdef int _begin(self, object id) except -1:
        OpenAIChunks._begin(self, id)
        self._text_open = self._envelope + _TEXT_OPEN
        return 0

    cdef _Text _choice(self, int choice):
        """The choice's state; None once it finished."""
        cdef _Text c
        if choice == 0 and self._first is not None:
            c = <_Text>self._first
        else:
            c = self._choices.get(choice)
            if c is None:
                c = _Text()
                c.mid = self._choice_head(choice, _INDEX, _MID)
                self._keep(choice, c)
        if c.finished:
            return None
        return c

    cpdef text(self, int choice, str text):
        cdef _Text c
        if not text:
            return
        c = self._choice(choice)
        if c is not None:
            self._out.append(cat4(self._text_open, _dumps(text), c.mid, _NULL_TAIL))

    cpdef finish(self, int choice, str reason, object matched):
        cdef _Text c = self._choice(choice)
        if c is None:
            return
        c.finished = True
        self._out.append(cat4(self._text_open, _EMPTY_TEXT, c.mid, _FINISH_TAILS[_finish(reason)]))
        Encoder.finish(self, choice, reason, matched)


# ------------------------------------------------------------------ whole answer

cdef class CompletionAnswer(OpenAIAnswer):
    """Events in, one ``text_completion`` out (``answer()``): per choice the
    joined text ("" when none) and the finish reason (stop when none came, or
    a chat-only one); ``usage`` always (zeros when none came)."""

    def __cinit__(self, *args, **kwargs):
        self._object = "text_completion"

    cdef str _answer_id(self, object id):
        return completion_id(id)

    cdef list _choice_list(self):
        cdef list choices = []
        cdef _Message m
        cdef object index
        for index in sorted(self._choices):
            m = self._choices[index]
            choices.append({
                "text": "".join(m.texts),
                "index": index,
                "logprobs": None,
                "finish_reason": _finish(m.finish),
            })
        return choices


# ------------------------------------------------------------------ request

# Completion fields a chat request takes under the same name.
_COMPLETION_SHARED = ("max_tokens", "temperature", "top_p", "n", "stop", "presence_penalty",
                      "frequency_penalty", "seed", "user", "logit_bias", "stream", "stream_options")


cdef object _unsupported(str name):
    return InvalidInput(f"'{name}' is not supported by this model's backend (it only chats)", name)


cpdef dict completion_to_chat(dict body):
    """A legacy completions request as a chat request with one user message.

    For backends that only chat. ``echo``, ``suffix``, ``best_of`` and
    ``logprobs`` have no chat equivalent: asking for them is a 400.
    """
    cdef object prompt = body.get("prompt")
    cdef object best_of = body.get("best_of")
    cdef dict chat
    cdef str name
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise InvalidInput(
                "this model's backend only chats: 'prompt' must be one string", "prompt")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InvalidInput("'prompt' must be a string", "prompt")
    if body.get("suffix"):
        raise _unsupported("suffix")
    if body.get("echo") is True:
        raise _unsupported("echo")
    if best_of is not None and best_of != 1:
        raise _unsupported("best_of")
    if body.get("logprobs") is not None:
        raise _unsupported("logprobs")
    chat = {"model": body.get("model"), "messages": [{"role": "user", "content": prompt}]}
    for name in _COMPLETION_SHARED:
        if name in body:
            chat[name] = body[name]
    return chat

