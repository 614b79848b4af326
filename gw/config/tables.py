"""The compiled, read-only routing tables.

What users write (``config.yaml``) is parsed by ``schema`` and turned into these
records by ``compile``; request handlers only ever read them::

    tables = compile_tables(parse(load(path)))
    model = tables.models["gpt-4o"]

Every record is frozen and slotted, collections are tuples, frozensets or
``MappingProxyType`` views, so nothing on the request path can change them.
A reload builds a whole new ``Tables`` and swaps the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class ProviderType(StrEnum):
    OPENAI = "openai"
    AZURE = "azure"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    OLLAMA = "ollama"
    ECHO = "echo"


class CacheBackend(StrEnum):
    NONE = "none"
    MEMORY = "memory"
    REDIS = "redis"


class CacheNamespace(StrEnum):
    KEY = "key"  # each API key has a cache of its own: tenants never see each other's answers
    SHARED = "shared"  # one cache for every key


class LimitsBackend(StrEnum):
    MEMORY = "memory"
    REDIS = "redis"


class BudgetPeriod(StrEnum):
    DAY = "day"  # a UTC calendar day
    MONTH = "month"  # a UTC calendar month


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class RateLimit:
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    """What a key may spend in USD per period (from the models' ``price``)."""

    amount: float
    period: BudgetPeriod = BudgetPeriod.MONTH


@dataclass(frozen=True, slots=True)
class Provider:
    """One backend account: where it is, how to authenticate, its timeouts."""

    name: str
    type: ProviderType
    base_url: str  # without a trailing slash
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    timeout_s: float = 300.0
    connect_timeout_s: float = 5.0
    first_byte_timeout_s: float = 60.0
    idle_timeout_s: float = 60.0
    max_connections: int = 256
    rate_limit: RateLimit | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold credentials
    enabled: bool = True
    disabled_reason: str | None = None
    responses_native: bool = False  # /v1/responses passed through as it is (openai, azure)


@dataclass(frozen=True, slots=True)
class Target:
    """One place a public model is served: a provider and its model name there."""

    provider: str
    model: str
    weight: int = 1
    default_max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Price:
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0


# A model name with one of these is a glob pattern (``claude-*``) of requested names.
PATTERN_CHARS = frozenset("*?[")
# Written in a target's model, it stands for the name the client asked for.
REQUESTED = "{model}"


def is_pattern(name: str) -> bool:
    return not PATTERN_CHARS.isdisjoint(name)


@dataclass(frozen=True, slots=True)
class Model:
    """A public model name, or a glob pattern of names, and the targets that serve
    it (in ``Tables``, the enabled ones)."""

    name: str
    targets: tuple[Target, ...]
    fallbacks: tuple[str, ...] = ()
    price: Price | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A caller. ``name`` is what logs and metrics show; ``key`` never leaves gw."""

    name: str
    key: str = field(repr=False)
    model_globs: tuple[str, ...] = ("*",)
    # The public models the globs match, resolved at compile time.
    allowed_models: frozenset[str] = frozenset()
    rate_limit: RateLimit | None = None
    max_concurrent: int | None = None  # requests in flight (streams until their last byte)
    budget: Budget | None = None


@dataclass(frozen=True, slots=True)
class Server:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 10 * 1024 * 1024
    cors_allow_origins: tuple[str, ...] | None = None
    drain_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Auth:
    # sha256(key) -> ApiKey: lookup by digest keeps the comparison constant-time.
    keys_by_digest: Mapping[bytes, ApiKey] = field(default_factory=lambda: MappingProxyType({}))
    admin_key_digest: bytes | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.keys_by_digest)


@dataclass(frozen=True, slots=True)
class Routing:
    retries: int = 2
    retry_on: frozenset[int | str] = frozenset(
        {429, 500, 502, 503, 504, "connect_error", "timeout"}
    )
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    health_check_interval_s: float = 0.0
    health_check_unhealthy_after: int = 2
    health_check_healthy_after: int = 1


@dataclass(frozen=True, slots=True)
class Cache:
    backend: CacheBackend = CacheBackend.NONE
    ttl_s: float = 3600.0
    max_entries: int = 10000  # memory only: Redis evicts by its own maxmemory policy
    redis_url: str | None = None
    namespace: CacheNamespace = CacheNamespace.KEY


@dataclass(frozen=True, slots=True)
class Limits:
    backend: LimitsBackend = LimitsBackend.MEMORY
    redis_url: str | None = None
    on_redis_error: str = "open"  # open: admit while Redis is unreachable; closed: 503


@dataclass(frozen=True, slots=True)
class Metrics:
    enabled: bool = True
    path: str = "/metrics"


@dataclass(frozen=True, slots=True)
class Logging:
    level: str = "info"
    format: LogFormat = LogFormat.JSON
    bodies: bool = False


@dataclass(frozen=True, slots=True)
class Dropped:
    """Something the config named that the compiled tables left out, and why."""

    kind: str  # "provider" | "target" | "model"
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Tables:
    source: str  # the config file the tables were compiled from
    server: Server
    auth: Auth
    providers: Mapping[str, Provider]  # every provider, enabled or not
    models: Mapping[str, Model]  # only models with at least one enabled target; patterns too
    routing: Routing = Routing()
    cache: Cache = Cache()
    limits: Limits = Limits()
    metrics: Metrics = Metrics()
    logging: Logging = Logging()
    dropped: tuple[Dropped, ...] = ()
    warnings: tuple[str, ...] = ()
    # models the config names but left without an enabled target -> why, for the 404:
    # "its provider 'openai' is disabled: OPENAI_API_KEY is not set"
    dropped_models: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # the pattern names of ``models``, the most specific (longest) first: a
    # requested name that is no model's takes the first pattern it matches
    patterns: tuple[str, ...] = ()
