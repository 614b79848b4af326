"""The compiled hot path: SSE/NDJSON decoding, protocol conversion, weighted selection.

``sse`` decodes; ``convert`` holds the OpenAI helpers every protocol shares;
``anthropic``, ``gemini``, ``ollama`` convert to and from each backend;
``messages`` converts the Anthropic Messages API clients speak; ``select``
picks targets.

There is no pure-Python copy of these modules; importing ``gw._fast`` fails
with instructions when the extensions have not been built.
"""

try:
    from . import anthropic, convert, gemini, messages, ollama, select, sse
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "gw._fast is not compiled: run `pip install .` (or `pip install -e .`, "
        "or `python setup.py build_ext --inplace`) in the gw source tree"
    ) from exc

__all__ = ["anthropic", "convert", "gemini", "messages", "ollama", "select", "sse"]
