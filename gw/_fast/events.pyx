# cython: language_level=3
"""The typed event core between every backend and every client protocol.

A backend decoder (``anthropic.AnthropicDecoder``, ``gemini.GeminiDecoder``,
``ollama.OllamaDecoder``, ``openai.ChatDecoder``, echo) calls a ``Sink``'s
methods, one per event; a client encoder (``chat.ChatChunks``,
``chat.ChatAnswer``, ``completions.*``, ``messages.*``) is a Sink that writes
them in its protocol. N backends and M client protocols: N + M modules.

    converter = Converter(AnthropicDecoder(), ChatChunks(created, model, include_usage))
    out = converter.feed(upstream_bytes)      # client bytes, maybe b""

``Recorder`` keeps the events as tuples, for tests.
"""

from .rules cimport make_usage
from .sse cimport Framed, joined


cdef class Sink:
    """Receives one answer's events. Every method does nothing here."""

    cpdef start(self, object id):
        """The answer began; ``id`` is the backend's answer id, or None."""

    cpdef text(self, int choice, str text):
        """Answer text, appended."""

    cpdef reasoning(self, int choice, str text):
        """Reasoning (thinking) text, appended."""

    cpdef tool_start(self, int choice, int index, str call_id, str name, object extra):
        """A tool call begins. ``extra``: a dict merged into the OpenAI tool call
        (Gemini's ``extra_content``), or None."""

    cpdef tool_args(self, int choice, int index, str fragment):
        """A piece of tool call ``index``'s JSON arguments."""

    cpdef usage(self, long long input, long long output, long long cache_read,
                long long cache_write, long long reasoning):
        """Token counts so far: ``input`` is the uncached input; the last call wins."""

    cpdef finish(self, int choice, str reason, object matched):
        """Choice ``choice`` is over. ``reason``: stop, length, tool_calls or
        content_filter (``rules.finish_reason`` maps a backend's). ``matched``:
        the stop sequence that ended it, when the backend says."""

    cpdef end(self):
        """The answer is complete (the backend's end marker came)."""


cdef class Decoder(Framed):
    """A backend's answer bytes in, calls on a ``Sink`` out (the subclasses:
    one per backend protocol). Decoding stops at the answer's end (``done``),
    at the backend's error event (``error``) or at bytes that are not the
    protocol (``invalid``)."""

    def __init__(self, Sink sink not None):
        self._sink = sink

    cpdef feed(self, bytes chunk):
        """Decodes what ``chunk`` completes, calling the sink."""

    cpdef close(self):
        """At the upstream's EOF: notes a stream cut inside an event."""

    cdef list _events(self, bytes chunk):
        """The SSE events ``chunk`` completes; None once decoding stopped."""
        if self.done or self.error is not None or self.invalid is not None:
            return None
        return Framed._events(self, chunk)


cdef class Encoder(Sink):
    """What every client encoder shares: the output buffer, the usage, the flags."""

    def __cinit__(self, *args, **kwargs):
        self._out = []

    cpdef bytes take(self):
        """The bytes written since the last call (b"" if none)."""
        cdef list out = self._out
        if not out:
            return b""
        self._out = []
        return joined(out)

    cpdef object openai_usage(self):
        """OpenAI-shaped usage (``rules.make_usage``), or None when none came."""
        if not self.has_usage:
            return None
        return make_usage(self.input_tokens, self.output_tokens, self.cache_read_tokens,
                          self.cache_write_tokens, self.reasoning_tokens)

    cpdef start(self, object id):
        self.started = True

    cpdef usage(self, long long input, long long output, long long cache_read,
                long long cache_write, long long reasoning):
        self.has_usage = True
        self.input_tokens = input
        self.output_tokens = output
        self.cache_read_tokens = cache_read
        self.cache_write_tokens = cache_write
        self.reasoning_tokens = reasoning

    cpdef finish(self, int choice, str reason, object matched):
        if choice == 0:
            self.finished = True

    cpdef end(self):
        self.ended = True


cdef class Converter:
    """A backend stream decoder driving a client encoder, as one push converter:

        conv = Converter(decoder, encoder)
        out = conv.feed(chunk)     # what is ready for the client
        out = conv.close()         # at the upstream's EOF

    ``done``: the encoder wrote the answer's end; ``error``: the backend's, sent
    after HTTP 200; ``invalid``: why the bytes are not the protocol (the
    decoder's) or cannot be written (the encoder's); ``usage`` is OpenAI-shaped.
    """

    def __init__(self, object decoder not None, Encoder encoder not None):
        self.decoder = decoder
        # gw's decoders are called through C; any other object with feed() and
        # close() (a decoder written in Python) through Python.
        self._decoder = decoder if isinstance(decoder, Decoder) else None
        self.encoder = encoder

    cpdef bytes feed(self, bytes chunk):
        if self._decoder is not None:
            self._decoder.feed(chunk)
        else:
            self.decoder.feed(chunk)
        return self.encoder.take()

    cpdef bytes close(self):
        if self._decoder is not None:
            self._decoder.close()
        else:
            self.decoder.close()
        return self.encoder.take()

    @property
    def done(self):
        return self.encoder.ended

    @property
    def error(self):
        return self.decoder.error

    @property
    def invalid(self):
        cdef object why = self.decoder.invalid
        return why if why is not None else self.encoder.invalid

    @property
    def usage(self):
        return self.encoder.openai_usage()


class Recorder(Sink):
    """Keeps each event as a tuple, in order, for tests:

        rec = Recorder(); decoder = AnthropicDecoder(rec); decoder.feed(data)
        rec.events == [("start", "msg_1"), ("text", 0, "Hi"), ...]
    """

    def __init__(self):
        self.events = []

    def start(self, id):
        self.events.append(("start", id))

    def text(self, choice, text):
        self.events.append(("text", choice, text))

    def reasoning(self, choice, text):
        self.events.append(("reasoning", choice, text))

    def tool_start(self, choice, index, call_id, name, extra):
        self.events.append(("tool_start", choice, index, call_id, name, extra))

    def tool_args(self, choice, index, fragment):
        self.events.append(("tool_args", choice, index, fragment))

    def usage(self, input, output, cache_read, cache_write, reasoning):
        self.events.append(("usage", input, output, cache_read, cache_write, reasoning))

    def finish(self, choice, reason, matched):
        self.events.append(("finish", choice, reason, matched))

    def end(self):
        self.events.append(("end",))
