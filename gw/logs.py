"""Structured logs: one line per request, plus gw's own events, to stdout.

JSON by default (``logging.format: json``), ``key=value`` text for humans.
Request lines are written by ``Output.request`` straight to a buffered stdout
and flushed every 0.2 s: the ``logging`` module costs ~20 us a line, this ~3 us.

    output = setup("info", "json")         # the process's Output (a worker keeps it: Worker.output)
    output.request(info, outcome, duration_s)
    event("config reloaded", pid=...)      # gw's own events, through the logging module, to the same Output
Never a key; never prompt or completion text unless ``logging.bodies: true``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

from .config.tables import LogFormat
from .context import Outcome, RequestInfo
from .serverlogs import LEVELS, entry, event, render

__all__ = ["Output", "event", "setup"]


class Output:
    """A process's log sink; the format is set from the config at start-up.

    Lines are collected and written with one call every 0.2 s (or at once
    when no event loop runs: start-up, shutdown).
    """

    def __init__(self) -> None:
        self.format = LogFormat.JSON
        self.level = logging.INFO
        self.pid = 0  # set by setup() in the worker itself
        self._lines: list[bytes] = []
        self._flusher: asyncio.TimerHandle | None = None

    def write(self, record: dict[str, Any]) -> None:
        self._lines.append(render(record, self.format))
        if self._flusher is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flusher = loop.call_later(0.2, self.flush)

    def flush(self) -> None:
        self._flusher = None
        lines, self._lines = self._lines, []
        try:
            sys.stdout.buffer.write(b"".join(lines))
            sys.stdout.flush()
        except (OSError, ValueError):
            pass

    def request(self, info: RequestInfo, outcome: Outcome, duration_s: float) -> None:
        """The one line of a finished request."""
        if self.level > logging.INFO:
            return
        usage = outcome.usage or {}
        status = outcome.status
        ttft_s = outcome.ttft_s
        line: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "level": "info" if status < 500 else "error",
            "event": "request",
            "worker": self.pid,
            "request_id": info.id,
            "method": info.method,
            "path": info.path,
            "endpoint": info.endpoint,
            "key": info.key_name,
            "model": info.model,
            "provider": outcome.provider,
            "upstream_model": outcome.upstream_model,
            "status": status,
            "stream": info.stream,
            "duration_ms": round(duration_s * 1000, 3),
            "ttft_ms": None if ttft_s is None else round(ttft_s * 1000, 3),
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "retries": outcome.retries,
            "cache_hit": outcome.cache_hit,
            "error": outcome.error,
        }
        if info.body is not None:  # logging.bodies: true
            line["request_body"] = info.body
            body = outcome.response_body
            line["response_body"] = body.decode("utf-8", "replace") if body is not None else None
        self.write(line)


class _Handler(logging.Handler):
    """Routes the `logging` module (gw's events, warnings of libraries) to the same sink."""

    def __init__(self, output: Output) -> None:
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        self.output.write(entry(record))


def setup(level: str = "info", fmt: LogFormat | str = LogFormat.JSON, output: Output | None = None) -> Output:
    """Set ``output`` (a new one when None) to the config's format and level, and send
    gw's logger there; return it."""
    output = output if output is not None else Output()
    output.format = LogFormat(fmt)
    output.pid = os.getpid()
    output.level = LEVELS.get(level, logging.INFO)
    root = logging.getLogger("gw")
    root.setLevel(output.level)
    root.propagate = False
    for handler in root.handlers:
        if isinstance(handler, _Handler):
            handler.output = output
            break
    else:
        root.addHandler(_Handler(output))
    return output
