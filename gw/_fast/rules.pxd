# C interface of gw/_fast/rules.pyx: each conversion rule, defined once.

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
