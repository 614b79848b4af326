"""The compiled hot path: SSE/NDJSON decoding, protocol conversion, weighted selection.

There is no pure-Python copy of these modules; importing ``gw._fast`` fails
with instructions when the extensions have not been built.
"""

try:
    from . import convert, select, sse
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "gw._fast is not compiled: run `pip install .` (or `pip install -e .`, "
        "or `python setup.py build_ext --inplace`) in the gw source tree"
    ) from exc

__all__ = ["convert", "select", "sse"]
