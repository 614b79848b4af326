"""gw's exceptions and the one function that turns them into responses.

GatewayError              status  type
+ BadRequest              400     invalid_request_error
+ Unauthorized            401     authentication_error
+ Forbidden               403     permission_error
+ ModelNotFound           404     not_found_error
+ NotFound                404     not_found_error (no such route)
+ MethodNotAllowed        405     invalid_request_error
+ UnsupportedEndpoint     400     invalid_request_error (e.g. embeddings of a chat-only backend)
+ BodyTooLarge            413     invalid_request_error
+ RateLimited             429     rate_limit_error (retry_after)
+ Unavailable             503     service_unavailable (starting)
+ NoHealthyTarget         503     service_unavailable
+ UpstreamError           (provider, retryable)
  - UpstreamStatus        400/404/413/422 kept; 401/403 -> 502; 429; 5xx -> 502
  - UpstreamUnavailable   502 connect, reset, garbage
  - UpstreamTimeout       504
ConfigError               start-up and reload only; `gw check` exits 1
LimitsUnavailable         internal: Redis (limits) unreachable; gw applies limits.on_redis_error
"""

from __future__ import annotations

import re
from typing import Any

import orjson


class GatewayError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.extra = extra  # more top-level fields of the error body (admin: the config's problems)


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class ModelNotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "model_not_found"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, message: str, *, allow: str) -> None:
        super().__init__(message)
        self.allow = allow  # the method the path takes (the `allow` header)


class UnsupportedEndpoint(BadRequest):
    code = "unsupported_endpoint"


class BodyTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "body_too_large"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(
        self, message: str, *, retry_after: float = 1.0, limit: str | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.limit = limit  # which of gw's limits refused: key_rpm, key_tpm, provider_rpm, provider_tpm


class Unavailable(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "starting"


class NoHealthyTarget(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "no_healthy_target"


class UpstreamError(GatewayError):
    """A backend failed. ``retryable`` says whether another target may be tried."""

    status = 502
    type = "upstream_error"
    reason = "error"  # the metric label: status_503, connect_error, timeout, ...
    # What `routing.retry_on` names this failure by: an upstream status, or a word.
    retry_key: int | str = "connect_error"
    # Seconds the backend asked not to be called again (its Retry-After), if it said.
    retry_after: float | None = None

    def __init__(self, message: str, *, provider: str, retryable: bool, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.provider = provider
        self.retryable = retryable


class UpstreamStatus(UpstreamError):
    """The backend answered with an error status; the client sees the SPEC mapping."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        upstream_status: int,
        retryable: bool,
        upstream_type: str | None = None,
        **kw: str | None,
    ) -> None:
        super().__init__(message, provider=provider, retryable=retryable, **kw)
        self.upstream_status = upstream_status
        self.reason = f"status_{upstream_status}"
        self.retry_key = upstream_status
        if upstream_status in (400, 404, 413, 422):
            self.status = upstream_status
            self.type = upstream_type or "invalid_request_error"
        elif upstream_status == 429:
            self.status = 429
            self.type = "rate_limit_error"
        else:  # 401/403 (our credentials), 5xx and anything else unexpected
            self.status = 502
            self.type = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 502
    reason = "connect_error"


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout_error"
    reason = "timeout"
    retry_key = "timeout"


class ConfigError(Exception):
    """The config is invalid; ``problems`` lists every ``file: key.path: what`` line."""

    def __init__(self, problems: list[str] | tuple[str, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class LimitsUnavailable(Exception):
    """The shared limits store (Redis) did not answer in time, refused, or failed.

    Every call of ``gw.limits_redis.RedisLimits`` raises only this, so one ``except``
    applies ``limits.on_redis_error`` (open: admit; closed: refuse). Never rendered as is.
    """


# Things that look like credentials: bearer tokens and common key prefixes.
_SECRET_RE = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|\b(sk|pk|rk|key|gw|AIza)[-_A-Za-z0-9]{16,}"
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secrets and anything shaped like an API key from ``text``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "[redacted]")
    return _SECRET_RE.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


def openai_error_body(exc: GatewayError) -> bytes:
    body: dict[str, Any] = {
        "error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}
    }
    if exc.extra:
        body.update(exc.extra)
    return orjson.dumps(body)


# gw's error types as Anthropic names them (its API's documented set).
_ANTHROPIC_TYPES = {
    "upstream_error": "api_error",
    "api_error": "api_error",
    "service_unavailable": "overloaded_error",
}


def anthropic_type(exc: GatewayError) -> str:
    if exc.status == 413:
        return "request_too_large"
    return _ANTHROPIC_TYPES.get(exc.type, exc.type)


def anthropic_error_body(exc: GatewayError) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": anthropic_type(exc), "message": exc.message}})
