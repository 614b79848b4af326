"""What gw knows about one request while it runs: who, which model, where it went."""

from __future__ import annotations

import os
import time
from typing import Any

_MAX_REQUEST_ID = 128


def new_request_id() -> str:
    return os.urandom(12).hex()


def client_request_id(raw: bytes | None) -> str:
    """The client's x-request-id if it is a sane token, else a new one."""
    if raw and len(raw) <= _MAX_REQUEST_ID:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return new_request_id()
        if text.isprintable() and " " not in text:
            return text
    return new_request_id()


class RequestContext:
    """Filled in as the request goes; read by the log line and the metrics at its end."""

    __slots__ = (
        "request_id",
        "endpoint",
        "started",
        "key_name",
        "model",
        "provider",
        "status",
        "stream",
        "ttft_s",
        "usage",
        "retries",
        "cache_hit",
        "error",
        "upstream_s",
        "bound",
        "runtime",
        "request_body",
        "response_body",
    )

    def __init__(self, request_id: str, endpoint: str) -> None:
        self.request_id = request_id
        self.endpoint = endpoint
        self.started = time.perf_counter()
        self.key_name: str | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.status = 0
        self.stream = False
        self.ttft_s: float | None = None
        self.usage: dict[str, Any] | None = None
        self.retries = 0
        self.cache_hit = False
        self.error: str | None = None
        # Time spent waiting on the backend until its answer (or first event) arrived.
        self.upstream_s = 0.0
        self.bound: Any = None  # routing.Bound of the last attempt: its breaker, its price
        self.runtime: Any = None  # the runtime.Runtime the request started on
        # Only with `logging.bodies: true`: what the client sent and got.
        self.request_body: Any = None
        self.response_body: bytes | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started
