# C interface of gw/_fast/rules.pyx: each conversion rule, defined once.

cdef int stream_with_usage(dict body, dict out) except -1
cpdef dict make_usage(long long uncached, long long completion, long long cache_read=*,
                      long long cache_write=*, long long reasoning=*)
cpdef dict tool_arguments(object raw, str param)
cpdef object stop_list(object value, str param)
cpdef object max_tokens(dict body, object default)
cpdef tuple data_url(str url, str param)
cpdef str new_id(str prefix)
cpdef str finish_reason(dict table, object raw, bint has_tools)
cdef long long count(object value) noexcept
cpdef str where(Py_ssize_t i, str rest)
cpdef list embedding_inputs(dict body, str backend)

# Pieces of an OpenAI request that every backend's conversion reads the same way.
cdef object invalid(str param, str what)
cdef list content_parts(object content, str param)
cdef str part_text(object part, str kind, str param)
cdef str part_type(object part)
cdef list texts(object content, str param, str role)
cdef tuple image_url(object image, str param)
cdef tuple file_data(object file, str param, str backend)
cdef bint is_link(str url, bint gs)
cdef list tool_calls(object calls, Py_ssize_t i)
cdef str tool_name(dict names, object call_id, Py_ssize_t i)
cdef str function_name(dict message, Py_ssize_t i)
cdef list functions(dict body, str backend, bint legacy)
cdef tuple tool_choice(dict body)
cdef tuple response_format(dict body)
cdef object effort(dict body, dict table)
cdef int options(dict body, dict out, tuple names) except -1
cdef int add_turn(list turns, str role, str key, list items) except -1
