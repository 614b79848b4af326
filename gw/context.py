"""What a request carries down (``RequestInfo``, frozen) and what it reports up (``Outcome``).

    info = RequestInfo(request_id, Endpoint.CHAT, Protocol.OPENAI, "POST", "/v1/chat/completions", received)
    info = info.known(key_name="app", model="gpt-4o", stream=True)   # once auth and parsing are done
    outcome = Outcome()          # routing, adapters and relay fill it in; the log line and metrics read it

``Exchange`` ties them to one ASGI request from its arrival (``GatewayApp``) to
the end of its answer, streams included.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple
from typing import Protocol as _Protocol

if TYPE_CHECKING:
    from .limits import Held
    from .relay import ClientWatch
    from .routing import Bound
    from .runtime import Runtime

_MAX_REQUEST_ID = 128


class Protocol(StrEnum):
    """The client API a request speaks: it picks the error envelope and the stream's error event."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    RESPONSES = "responses"  # OpenAI's envelope; a failed stream ends with `response.failed`


class CacheStatus(StrEnum):
    """What the response cache did for a request (``x-gw-cache``; ``gw.cache``)."""

    HIT = "hit"  # answered from the cache: no backend asked
    MISS = "miss"  # not there (or ``Cache-Control: no-cache``): asked a backend, its answer stored
    BYPASS = "bypass"  # ``Cache-Control: no-store``: neither read nor written


class Endpoint(StrEnum):
    """The metric and log label of a request (``other``: no route, 404/405)."""

    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    MESSAGES = "messages"
    COUNT_TOKENS = "count_tokens"
    RESPONSES = "responses"
    MODELS = "models"
    ADMIN = "admin"
    OTHER = "other"


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


class RequestInfo(NamedTuple):
    """Who asks what: known before routing, never changed by it (a tuple: built twice
    a request, it costs a tenth of a frozen dataclass)."""

    id: str
    endpoint: Endpoint
    protocol: Protocol
    method: str
    path: str
    received: float  # the clock's reading when the request arrived
    key_name: str | None = None
    model: str | None = None  # only a configured name: it becomes a metric label
    stream: bool = False
    body: Any = None  # the client's body, kept only with `logging.bodies: true`

    def known(
        self, key_name: str | None, model: str | None = None, stream: bool = False, body: Any = None
    ) -> RequestInfo:
        """A copy with what auth and parsing learnt (the constructor: ``replace`` is 10x slower)."""
        return RequestInfo(
            self.id,
            self.endpoint,
            self.protocol,
            self.method,
            self.path,
            self.received,
            key_name,
            model,
            stream,
            body,
        )


class Outcome:
    """What happened to a request, reported up to its log line and metrics."""

    __slots__ = (
        "status",
        "provider",
        "upstream_model",
        "bound",
        "retries",
        "usage",
        "ttft_s",
        "upstream_s",
        "error",
        "cache_hit",
        "cache",
        "limited",
        "held",
        "response_body",
        "failures",
        "token_count",
    )

    def __init__(self) -> None:
        self.status = 0
        self.provider: str | None = None
        self.upstream_model: str | None = None  # the model name the last attempt sent the backend
        self.bound: Bound | None = None  # the target of the last attempt: its breaker, its price
        self.retries = 0
        self.usage: dict[str, Any] | None = None
        self.ttft_s: float | None = None
        # Time spent waiting on the backend until its answer (or first event) arrived.
        self.upstream_s = 0.0
        self.error: str | None = None
        self.cache_hit = False
        self.cache: CacheStatus | None = None  # None: the cache is off, or the request not cacheable
        self.limited: str | None = None  # which of gw's limits refused it (gw_rate_limited_total)
        self.held: Held | None = None  # what gw's limits admitted it with, settled at its end
        self.response_body: bytes | None = None  # only with `logging.bodies: true`
        self.failures: list[tuple[str, str]] | None = None  # (provider, reason) of each failed attempt
        self.token_count: str | None = None  # count_tokens: "exact" or "estimated" (x-gw-token-count)

    def tokens(self) -> tuple[int, int]:
        """Prompt and completion tokens of the answer's usage (0 when unknown)."""
        usage = self.usage
        if not usage:
            return 0, 0
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        return (
            prompt if isinstance(prompt, int) and prompt > 0 else 0,
            completion if isinstance(completion, int) and completion > 0 else 0,
        )

    def cost_usd(self) -> float | None:
        """What the answer cost at its model's ``price`` (a fallback's, when one answered);
        None without a price or a usage."""
        bound = self.bound
        price = bound.price if bound is not None else None
        prompt, completion = self.tokens()
        if price is None or not (prompt or completion):
            return None
        return (prompt * price.input_per_mtok + completion * price.output_per_mtok) / 1e6

    def failed(self, provider: str, reason: str) -> None:
        """An upstream attempt failed (``gw_upstream_errors_total``)."""
        if self.failures is None:
            self.failures = []
        self.failures.append((provider, reason))


class Closer(_Protocol):
    async def aclose(self) -> None: ...


class Exchange:
    """One request from its arrival to the end of its answer (``GatewayApp`` owns it)."""

    __slots__ = ("info", "outcome", "runtime", "stream", "watch", "logged")

    def __init__(self, info: RequestInfo, logged: bool) -> None:
        self.info = info
        self.outcome = Outcome()
        self.runtime: Runtime | None = None  # the runtime the request was routed on (its count)
        self.stream: Closer | None = None  # a committed stream: closed when the answer ends
        self.watch: ClientWatch | None = None  # notices the client leaving, once the body is read
        self.logged = logged  # probes (/health, /ready, /metrics) are neither logged nor counted
