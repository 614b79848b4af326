"""The compiled hot path: SSE/NDJSON decoding, protocol conversion, weighted selection.

The event core (``events``): a backend *decoder* turns an answer into typed
events, a client *encoder* writes them in the client's protocol.

- ``sse``: SSE and NDJSON push decoders.
- ``events``: the ``Sink`` (one method per event), ``Encoder``, ``Converter``.
- ``rules``: each conversion rule, once (usage, tool arguments, stop, token
  limits, data URLs, ids, finish reasons), and ``InvalidInput``.
- decoders, one per backend protocol, each with its request conversion:
  ``openai`` (OpenAI, Azure, vLLM), ``anthropic``, ``gemini``, ``ollama``.
- encoders, one per client protocol: ``chat``, ``completions`` (legacy),
  ``messages`` (Anthropic Messages, with its request reader), ``responses``
  (OpenAI Responses, with its request reader).
- ``convert``: the OpenAI pass-through watcher (a byte scan, no re-encoding);
  ``responses_watch``: the Responses API's (native OpenAI and Azure).
- ``select``: smooth weighted round-robin.
- ``counters``: rate-limit buckets and counters shared by the workers of one
  ``gw serve`` (a mapped file).

There is no pure-Python copy of these modules; importing ``gw._fast`` fails
with instructions when the extensions have not been built.
"""

try:
    from . import (
        anthropic,
        chat,
        completions,
        convert,
        counters,
        events,
        gemini,
        messages,
        ollama,
        openai,
        responses,
        responses_watch,
        rules,
        select,
        sse,
    )
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "gw._fast is not compiled: run `pip install .` (or `pip install -e .`, "
        "or `python setup.py build_ext --inplace`) in the gw source tree"
    ) from exc

__all__ = [
    "anthropic",
    "chat",
    "completions",
    "convert",
    "counters",
    "events",
    "gemini",
    "messages",
    "ollama",
    "openai",
    "responses",
    "responses_watch",
    "rules",
    "select",
    "sse",
]
