# C interface of gw/_fast/events.pyx: the typed event core.
#
# A backend decoder turns one answer (whole or streamed) into calls on a Sink;
# a client encoder is a Sink that writes those events in one client protocol.
# The methods are the event types; the order of one answer is:
#
#   start(id)                                  once, first
#   text / reasoning / tool_start / tool_args  any number, any order
#   usage(...)                                 any number of times, last counts win
#   finish(choice, reason, matched)            once per choice
#   end()                                      once, last: the answer is complete
#
# `choice` is the OpenAI choice index (0 unless the client asked n > 1).
# Tool calls are indexed 0, 1, 2... per choice, in the order they started.

from .sse cimport Framed


cdef class Sink:
    cpdef start(self, object id)
    cpdef text(self, int choice, str text)
    cpdef reasoning(self, int choice, str text)
    cpdef tool_start(self, int choice, int index, str call_id, str name, object extra)
    cpdef tool_args(self, int choice, int index, str fragment)
    cpdef usage(self, long long input, long long output, long long cache_read,
                long long cache_write, long long reasoning)
    cpdef finish(self, int choice, str reason, object matched)
    cpdef end(self)


cdef class Decoder(Framed):
    # A backend decoder: Framed's reading (its SSE decoder stays None for
    # NDJSON), calling its sink; done means sink.end() was called.
    cdef Sink _sink

    cpdef feed(self, bytes chunk)
    cpdef close(self)


cdef class Encoder(Sink):
    cdef list _out                   # bytes written since the last take()
    cdef readonly bint started       # start() came
    cdef readonly bint finished      # finish() came for choice 0
    cdef readonly bint ended         # end() came
    cdef readonly long long input_tokens       # uncached input
    cdef readonly long long output_tokens
    cdef readonly long long cache_read_tokens
    cdef readonly long long cache_write_tokens
    cdef readonly long long reasoning_tokens
    cdef readonly bint has_usage
    cdef readonly object invalid     # why the answer cannot be written (None: it can)

    cpdef bytes take(self)
    cpdef object openai_usage(self)


cdef class Converter:
    cdef readonly object decoder
    cdef Decoder _decoder               # the decoder when it is one of gw's (a C call), else None
    cdef readonly Encoder encoder
    cpdef bytes feed(self, bytes chunk)
    cpdef bytes close(self)
