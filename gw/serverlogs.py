"""The log lines of the processes around the app: ``gw serve`` and Granian's own.

    setup("info", "json")                     # the "gw" logger's lines to stdout
    event("draining", timeout_s=30)           # {"ts":...,"level":"info","logger":"gw","event":"draining",...}
    server_log_config("json")                 # Granian's --log-config: its lines in the same shape

One line per record: ``ts``, ``level``, ``logger``, ``event``, then the event's
fields; JSON, or ``key=value`` text. The worker's request log (``gw.logs``)
writes the same lines with ``render`` and ``entry``. This module loads only
``logging`` and ``orjson``: the supervisor imports nothing else of gw's.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

# gw.config.tables.LogFormat's values (a StrEnum, equal to these), named here so
# that this module does not load the config package.
JSON = "json"
TEXT = "text"

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def render(entry: dict[str, Any], fmt: str) -> bytes:
    """One log line, newline included."""
    if fmt == TEXT:
        return (" ".join(f"{k}={_text(v)}" for k, v in entry.items() if v is not None) + "\n").encode()
    return orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)


def _text(value: object) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if " " not in text else orjson.dumps(text).decode()


def entry(record: logging.LogRecord, logger: str | None = None) -> dict[str, Any]:
    """A ``logging`` record as a line's fields; ``event(...)``'s fields ride in ``extra={"gw": ...}``."""
    fields: dict[str, Any] = {
        "ts": round(record.created, 3),
        "level": record.levelname.lower(),
        "logger": logger or record.name,
        "event": record.getMessage(),
    }
    extra = getattr(record, "gw", None)
    if extra:
        fields.update(extra)
    if record.exc_info:
        fields["exception"] = logging.Formatter().formatException(record.exc_info)
    return fields


class ServerFormatter(logging.Formatter):
    """Granian's own lines (worker exits, respawns) as gw's JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(entry(record, "granian")).decode()


def server_log_config(fmt: str) -> dict[str, Any]:
    """Granian's log config (``dictConfig`` entries): its lines in gw's format (JSON), on stdout."""
    if fmt == TEXT:
        return {}
    formatter = {"()": f"{__name__}.ServerFormatter"}
    return {"formatters": {"generic": formatter, "access": formatter}}


class Handler(logging.Handler):
    """Writes each record at once: these processes log a few lines in their life."""

    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.fmt = fmt

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.flush()  # after what went through the text layer (Granian's handler)
            sys.stdout.buffer.write(render(entry(record), self.fmt))
            sys.stdout.buffer.flush()
        except (OSError, ValueError):
            pass


def setup(level: str, fmt: str) -> Handler:
    """Send the ``gw`` logger's records (``event``, config warnings) to stdout; returns the handler."""
    root = logging.getLogger("gw")
    root.setLevel(LEVELS.get(level, logging.INFO))
    root.propagate = False
    handler = Handler(fmt)
    root.addHandler(handler)
    return handler


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one of gw's own events (start-up, reload, shutdown) with fields."""
    logging.getLogger("gw").log(level, name, extra={"gw": fields})
