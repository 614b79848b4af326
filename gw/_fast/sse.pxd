# C interface of gw/_fast/sse.pyx: push decoders for SSE and NDJSON streams.

cdef class Event:
    cdef readonly object event      # str | None
    cdef readonly bytes data
    cdef readonly object id         # str | None
    cdef readonly bytes raw


cdef class SSEDecoder:
    cdef bytearray _buf             # bytes not yet dispatched, from _start on
    cdef Py_ssize_t _max
    cdef Py_ssize_t _start          # first byte of the current event's raw
    cdef Py_ssize_t _pos            # first byte of the first line not parsed yet
    cdef Py_ssize_t _scan           # [_pos, _scan) holds no CR and no LF
    cdef bint _bom_done             # the stream start was checked for a BOM
    cdef bint _skip_lf              # the last line ended in a CR that ended the buffer
    cdef bint _pending              # a data/event/id line was seen since the last dispatch
    cdef object _event              # str | None
    cdef object _id                 # str | None
    cdef Py_ssize_t _ndata          # data lines seen in the current event
    cdef Py_ssize_t _d0             # while _ndata == 1: the value is _buf[_d0:_d1]
    cdef Py_ssize_t _d1
    cdef bytearray _data            # once _ndata >= 2: the joined values

    cpdef list feed(self, bytes chunk)
    cpdef close(self)
    cdef int _line(self, char* base, Py_ssize_t start, Py_ssize_t end,
                   Py_ssize_t next, list out) except -1
    cdef int _dispatch(self, char* base, Py_ssize_t end, list out) except -1


cdef class NDJSONDecoder:
    cdef bytearray _buf             # the current, unfinished line
    cdef Py_ssize_t _max
    cdef Py_ssize_t _scan           # _buf[:_scan] holds no LF

    cpdef list feed(self, bytes chunk)
    cpdef list close(self)


cdef class Framed:
    cdef SSEDecoder _sse
    cdef readonly bint done         # the answer's end came
    cdef readonly object error      # the backend's error, sent after HTTP 200
    cdef readonly object invalid    # why the bytes are not the protocol

    cdef bint _stopped(self)
    cdef list _events(self, bytes chunk)
    cdef bint _close_sse(self)
    cdef dict _object(self, bytes data, str what)


cdef class Watch(Framed):
    # A stream forwarded as it is, watched (the pass-through watchers): the events
    # to parse (each given to _seen), those held back until the first other one,
    # and those that end the stream.
    cdef frozenset _parse
    cdef frozenset _opening
    cdef frozenset _ends
    cdef list _held                 # the opening events, until the first other one

    cpdef bytes feed(self, bytes chunk)
    cpdef bytes close(self)
    cdef bint _seen(self, object name, dict obj) except -1


cdef inline bytes joined(list out):
    # The bytes of one read's events, as one object: most reads hold one event.
    if not out:
        return b""
    if len(out) == 1:
        return <bytes>out[0]
    return b"".join(out)


cdef inline int forward_last(list out, Event event) except -1:
    # The stream's last event, forwarded as it came. A CR that ended the read
    # ended the event; its LF, if any, is still upstream, and nothing is read
    # after the last event.
    out.append(event.raw)
    if event.raw.endswith(b"\r"):
        out.append(b"\n")
    return 0
