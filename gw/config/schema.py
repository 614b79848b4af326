"""Check what the user wrote and turn it into typed records (SPEC §3).

    spec = parse(load("config.yaml"))
    spec.providers["openai"].timeout_s      # 300.0

These records mirror the file: names as written, ``api_key`` absent (None) vs
empty (""), targets that may name disabled providers. ``compile`` turns them
into the ``Tables`` requests read; a section the file and the tables hold
alike (a model, its targets and price, cache, limits, metrics, logging) is
the tables' record from the start, not a copy. ``parse`` raises ``ConfigError`` with every
problem, its own and those ``load`` carried, one ``FILE: key.path: problem``
line each.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml

from gw.config.load import EnvRef, Expanded, Loaded, Override, Path, Unresolved, describe_value, format_path
from gw.config.tables import (
    REQUESTED,
    Budget,
    BudgetPeriod,
    Cache,
    CacheBackend,
    CacheNamespace,
    Limits,
    LimitsBackend,
    LogFormat,
    Logging,
    Metrics,
    Model,
    Price,
    ProviderType,
    RateLimit,
    Target,
)
from gw.errors import ConfigError

MAX_TARGETS = 64  # the selector's limit (gw/_fast/select)
MAX_WEIGHT = 1_000_000  # keeps the selector's running sums far from overflow
SHORT_KEY = 16  # keys shorter than this are accepted with a warning
RETRY_REASONS = ("connect_error", "timeout")
LOG_LEVELS = ("debug", "info", "warning", "error")


# --- records of what the user wrote -----------------------------------------


@dataclass(frozen=True, slots=True)
class CorsSpec:
    allow_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerSpec:
    host: str = "127.0.0.1"  # loopback: other machines reach gw only when the config says so
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 10 * 1024 * 1024
    cors: CorsSpec | None = None
    drain_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class KeySpec:
    name: str
    key: str = ""
    models: tuple[str, ...] = ("*",)
    rate_limit: RateLimit | None = None
    max_concurrent: int | None = None
    budget_usd: Budget | None = None

    def __repr__(self) -> str:  # never the key
        return (
            f"KeySpec(name={self.name!r}, models={self.models!r}, rate_limit={self.rate_limit!r}, "
            f"max_concurrent={self.max_concurrent!r}, budget_usd={self.budget_usd!r})"
        )


@dataclass(frozen=True, slots=True)
class AuthSpec:
    keys: tuple[KeySpec, ...] = ()
    admin_key: str | None = None  # "" in the file means none
    # no keys + a provider with an api_key + a non-loopback host: refuse to start unless true
    allow_anonymous: bool = False

    def __repr__(self) -> str:
        return (
            f"AuthSpec(keys={self.keys!r}, admin_key={'set' if self.admin_key else None}, "
            f"allow_anonymous={self.allow_anonymous!r})"
        )


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    type: ProviderType
    base_url: str = ""  # without trailing slash; "" only for echo
    api_key: str | None = None  # None: key absent (none needed); "": present but empty
    api_version: str | None = None
    timeout_s: float = 300.0
    connect_timeout_s: float = 5.0
    first_byte_timeout_s: float = 60.0
    idle_timeout_s: float = 60.0
    max_connections: int = 256
    rate_limit: RateLimit | None = None
    headers: tuple[tuple[str, str], ...] = ()
    enabled: bool = True
    responses: str = "native"  # openai/azure: /v1/responses passed through, or converted to chat

    def __repr__(self) -> str:
        return f"ProviderSpec(name={self.name!r}, type={self.type.value!r}, base_url={self.base_url!r})"


@dataclass(frozen=True, slots=True)
class CircuitBreakerSpec:
    failures: int = 5
    cooldown_s: float = 30.0


@dataclass(frozen=True, slots=True)
class HealthCheckSpec:
    interval_s: float = 0.0
    unhealthy_after: int = 2  # consecutive failed probes that take a provider down
    healthy_after: int = 1  # consecutive good probes that bring it back


@dataclass(frozen=True, slots=True)
class RoutingSpec:
    retries: int = 2
    retry_on: tuple[int | str, ...] = (429, 500, 502, 503, 504, "connect_error", "timeout")
    circuit_breaker: CircuitBreakerSpec = CircuitBreakerSpec()
    health_check: HealthCheckSpec = HealthCheckSpec()


@dataclass(frozen=True, slots=True)
class ConfigSpec:
    source: str
    server: ServerSpec = ServerSpec()
    auth: AuthSpec = AuthSpec()
    providers: Mapping[str, ProviderSpec] = field(default_factory=lambda: MappingProxyType({}))  # file order
    # file order; every target as written (the tables keep the enabled ones)
    models: Mapping[str, Model] = field(default_factory=lambda: MappingProxyType({}))
    routing: RoutingSpec = RoutingSpec()
    # as the tables have them: what is written is what requests read
    cache: Cache = Cache()
    limits: Limits = Limits()
    metrics: Metrics = Metrics()
    logging: Logging = Logging()
    warnings: tuple[str, ...] = ()
    # where values came from (load.Loaded), for messages that say why a key is empty
    overrides: Mapping[Path, Override] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    env_refs: Mapping[Path, tuple[EnvRef, ...]] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )


# --- checking ---------------------------------------------------------------

BAD: Any = object()  # a check failed (already reported): leave the default


class _Ctx:
    def __init__(self, loaded: Loaded) -> None:
        self.source = loaded.source
        self.overrides = loaded.overrides
        self.problems: list[str] = list(loaded.problems)
        self.warnings: list[str] = []

    def error(self, path: Path, message: str) -> None:
        line = f"{self.source}: {format_path(path)}: {message}"
        for i in range(len(path), 0, -1):
            ov = self.overrides.get(path[:i])
            if ov is not None:
                line += f" (set by {ov.var})"
                break
        self.problems.append(line)

    def override_text(self, path: Path) -> str | None:
        ov = self.overrides.get(path)
        return None if ov is None else ov.text


Check = Callable[[_Ctx, Path, Any], Any]


def _scalar_from_env(value: Any) -> Any:
    """``${VAR}`` output read as YAML, so ``${PORT:-8080}`` can be a port."""
    if isinstance(value, Expanded):
        try:
            return yaml.safe_load(str(value))
        except yaml.YAMLError:
            return value
    return value


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    def check(ctx: _Ctx, path: Path, value: Any) -> Any:
        v = _scalar_from_env(value)
        if isinstance(v, bool) or not isinstance(v, int):
            ctx.error(path, f"expected an integer, got {describe_value(value)}")
            return BAD
        return _range(ctx, path, v, lo, hi)

    return check


def number(*, gt: float | None = None, ge: float | None = None) -> Check:
    def check(ctx: _Ctx, path: Path, value: Any) -> Any:
        v = _scalar_from_env(value)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:  # NaN
            ctx.error(path, f"expected a number, got {describe_value(value)}")
            return BAD
        if gt is not None and not v > gt:
            ctx.error(path, f"must be > {gt:g}, got {v!r}")
            return BAD
        if ge is not None and not v >= ge:
            ctx.error(path, f"must be >= {ge:g}, got {v!r}")
            return BAD
        return float(v)

    return check


def _range(ctx: _Ctx, path: Path, v: int, lo: int | None, hi: int | None) -> Any:
    if lo is not None and hi is not None and not lo <= v <= hi:
        ctx.error(path, f"must be between {lo} and {hi}, got {v}")
        return BAD
    if lo is not None and v < lo:
        ctx.error(path, f"must be >= {lo}, got {v}")
        return BAD
    return v


def boolean(ctx: _Ctx, path: Path, value: Any) -> Any:
    v = _scalar_from_env(value)
    if not isinstance(v, bool):
        ctx.error(path, f"expected true or false, got {describe_value(value)}")
        return BAD
    return v


def string(*, nonempty: bool = False, secret: bool = False) -> Check:
    def check(ctx: _Ctx, path: Path, value: Any) -> Any:
        if not isinstance(value, str):
            # GW__PROVIDERS__X__API_KEY=12345678 parses as a number: use its text
            text = ctx.override_text(path)
            if text is not None and not isinstance(value, (dict, list)):
                value = text
            else:
                shown = "a non-string value" if secret else describe_value(value)
                ctx.error(path, f"expected a string, got {shown}")
                return BAD
        if nonempty and not value:
            ctx.error(path, "must not be empty")
            return BAD
        return str(value)

    return check


def choice(enum: type[StrEnum] | tuple[str, ...], *, fold_case: bool = False) -> Check:
    values = tuple(e.value for e in enum) if isinstance(enum, type) else enum

    def check(ctx: _Ctx, path: Path, value: Any) -> Any:
        v = value.lower() if fold_case and isinstance(value, str) else value
        if not isinstance(v, str) or v not in values:
            ctx.error(path, f"expected one of {', '.join(values)}; got {describe_value(value)}")
            return BAD
        return enum(v) if isinstance(enum, type) else str(v)

    return check


def optional(inner: Check) -> Check:
    """``null`` means absent."""

    def check(ctx: _Ctx, path: Path, value: Any) -> Any:
        return None if value is None else inner(ctx, path, value)

    return check


def list_of(item: Check, *, nonempty: bool = False) -> Check:
    def check(ctx: _Ctx, path: Path, value: Any) -> Any:
        if not isinstance(value, list):
            ctx.error(path, f"expected a list, got {describe_value(value)}")
            return BAD
        if nonempty and not value:
            ctx.error(path, "must not be empty")
            return BAD
        out = []
        for i, v in enumerate(value):
            if isinstance(v, Unresolved):
                continue
            r = item(ctx, path + (i,), v)
            if r is not BAD:
                out.append(r)
        return tuple(out) if len(out) == len(value) else BAD

    return check


def url(*, schemes: tuple[str, ...]) -> Check:
    text = string(nonempty=True)

    def check(ctx: _Ctx, path: Path, value: Any) -> Any:
        v = text(ctx, path, value)
        if v is BAD:
            return BAD
        try:
            parts = urlsplit(v)
            ok = parts.scheme in schemes and bool(parts.netloc or parts.scheme == "unix")
        except ValueError:
            ok = False
        if not ok:
            starts = " or ".join(f"{s}://" for s in schemes)
            ctx.error(path, f"must be a URL starting with {starts}")
            return BAD
        return v.rstrip("/")

    return check


def fields(
    ctx: _Ctx,
    path: Path,
    raw: Any,
    checks: Mapping[str, Check],
    required: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """Check a mapping key by key: unknown keys and missing required keys are
    problems; returns the keys that passed (the record's defaults fill the rest)."""
    if raw is None:
        raw = {}
    if isinstance(raw, Unresolved):
        return None
    if not isinstance(raw, dict):
        ctx.error(path, f"expected a mapping, got {describe_value(raw)}")
        return None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in checks:
            ctx.error(path + (str(key),), f"unknown key (expected one of: {', '.join(checks)})")
            continue
        if isinstance(value, Unresolved):
            continue
        v = checks[key](ctx, path + (key,), value)
        if v is not BAD:
            out[key] = v
    for key in required:
        if key not in raw:
            ctx.error(path + (key,), "missing required key")
    return out


def record(cls: type, checks: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """A nested mapping read into ``cls``."""

    def check(ctx: _Ctx, path: Path, value: Any) -> Any:
        out = fields(ctx, path, value, checks, required)
        if out is None or any(k not in out for k in required):
            return BAD
        return cls(**out)

    return check


def mapping_of(
    key_check: Callable[[_Ctx, Path, Any], bool], item: Callable[[_Ctx, Path, str, Any], Any]
) -> Check:
    def check(ctx: _Ctx, path: Path, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            ctx.error(path, f"expected a mapping, got {describe_value(value)}")
            return BAD
        out = {}
        for k, v in value.items():
            if not key_check(ctx, path + (str(k),), k) or isinstance(v, Unresolved):
                continue
            r = item(ctx, path + (k,), k, v)
            if r is not BAD:
                out[k] = r
        return out

    return check


# --- sections ---------------------------------------------------------------

rate_limit = optional(record(RateLimit, {"rpm": integer(1), "tpm": integer(1)}))

server = record(
    ServerSpec,
    {
        "host": string(nonempty=True),
        "port": integer(1, 65535),
        "workers": integer(1),
        "max_body_bytes": integer(1),
        "cors": optional(record(CorsSpec, {"allow_origins": list_of(string(nonempty=True))})),
        "drain_timeout_s": number(ge=0),
    },
)


def _key_spec(ctx: _Ctx, path: Path, value: Any) -> Any:
    return record(
        KeySpec,
        {
            "name": string(nonempty=True),
            "key": string(secret=True),
            "models": list_of(string(nonempty=True)),
            "rate_limit": rate_limit,
            "max_concurrent": optional(integer(1)),
            "budget_usd": optional(
                record(Budget, {"amount": number(gt=0), "period": choice(BudgetPeriod)}, required=("amount",))
            ),
        },
        required=("name", "key"),
    )(ctx, path, value)


def _admin_key(ctx: _Ctx, path: Path, value: Any) -> Any:
    return "" if value is None else string(secret=True)(ctx, path, value)


def _auth(ctx: _Ctx, path: Path, value: Any) -> Any:
    out = fields(
        ctx,
        path,
        value,
        {"keys": optional(list_of(_key_spec)), "admin_key": _admin_key, "allow_anonymous": boolean},
    )
    if out is None:
        return BAD
    keys: tuple[KeySpec, ...] = out.get("keys") or ()
    names: dict[str, int] = {}
    secrets: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k.name in names:
            ctx.error(
                path + ("keys", i, "name"), f"duplicate key name {k.name!r} (also auth.keys[{names[k.name]}])"
            )
        names.setdefault(k.name, i)
        if not k.key:
            ctx.error(path + ("keys", i, "key"), "must not be empty")
            continue
        if k.key in secrets:
            ctx.error(path + ("keys", i, "key"), f"same key as auth.keys[{secrets[k.key]}]")
        secrets.setdefault(k.key, i)
        if len(k.key) < SHORT_KEY:
            ctx.warnings.append(f"auth key {k.name!r} is shorter than {SHORT_KEY} characters")
    admin = out.get("admin_key") or None
    if admin is not None:
        if admin in secrets:
            ctx.error(path + ("admin_key",), f"same key as auth.keys[{secrets[admin]}]")
        elif len(admin) < SHORT_KEY:
            ctx.warnings.append(f"auth admin_key is shorter than {SHORT_KEY} characters")
    return AuthSpec(keys=keys, admin_key=admin, allow_anonymous=out.get("allow_anonymous", False))


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _provider_name(ctx: _Ctx, path: Path, name: Any) -> bool:
    if not isinstance(name, str):
        # `off:` or `no:` is a bool in YAML 1.1
        ctx.error(path, f"expected a name, got {describe_value(name)} (quote it)")
        return False
    if not _NAME.match(name):
        ctx.error(
            path, "provider names are letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
        return False
    return True


def _api_version(ctx: _Ctx, path: Path, value: Any) -> Any:
    # YAML reads an unquoted 2024-10-21 as a date; we accept it and write it back
    # as the same text, so users need not remember to quote it.
    if isinstance(value, dt.date):
        return value.isoformat()
    return string(nonempty=True)(ctx, path, value)


def _api_key(ctx: _Ctx, path: Path, value: Any) -> Any:
    # present but null (`api_key:`) is as empty as `api_key: ""`
    return "" if value is None else string(secret=True)(ctx, path, value)


def _headers(ctx: _Ctx, path: Path, value: Any) -> Any:
    if value is None:
        return ()
    if not isinstance(value, dict):
        ctx.error(path, f"expected a mapping, got {describe_value(value)}")
        return BAD
    out = []
    for k, v in value.items():
        p = path + (str(k),)
        if not isinstance(k, str) or not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", k):
            ctx.error(p, "not a valid header name")
            continue
        if isinstance(v, Unresolved):
            continue
        if not isinstance(v, str):
            ctx.error(p, "expected a string, got a non-string value")  # may be a secret
            continue
        if "\r" in v or "\n" in v:
            ctx.error(p, "must not contain a line break")
            continue
        out.append((k, str(v)))
    return tuple(out) if len(out) == len(value) else BAD


_PROVIDER_CHECKS: dict[str, Check] = {
    "type": choice(ProviderType),
    "base_url": url(schemes=("http", "https")),
    "api_key": _api_key,
    "api_version": _api_version,
    "timeout_s": number(gt=0),
    "connect_timeout_s": number(gt=0),
    "first_byte_timeout_s": number(gt=0),
    "idle_timeout_s": number(gt=0),
    "max_connections": integer(1),
    "rate_limit": rate_limit,
    "headers": _headers,
    "enabled": boolean,
    "responses": choice(("native", "convert")),
}


def _provider(ctx: _Ctx, path: Path, name: str, value: Any) -> Any:
    out = fields(ctx, path, value, _PROVIDER_CHECKS, required=("type",))
    if out is None or "type" not in out:
        return BAD
    ptype: ProviderType = out["type"]
    if "responses" in out and ptype not in (ProviderType.OPENAI, ProviderType.AZURE):
        ctx.error(path + ("responses",), "only openai and azure providers have a native Responses API")
        return BAD
    if ptype is not ProviderType.ECHO and "base_url" not in out:
        if isinstance(value, dict) and "base_url" not in value:
            ctx.error(path + ("base_url",), "missing required key (every type but echo needs one)")
        return BAD
    return ProviderSpec(name=name, **out)


def _target_model(ctx: _Ctx, path: Path, value: Any) -> Any:
    out = string(nonempty=True)(ctx, path, value)
    if isinstance(out, str) and ("{" in out.replace(REQUESTED, "") or "}" in out.replace(REQUESTED, "")):
        ctx.error(path, f"only {REQUESTED} (the requested model name) may be written in braces")
        return BAD
    return out


def _target(ctx: _Ctx, path: Path, value: Any) -> Any:
    return record(
        Target,
        {
            "provider": string(nonempty=True),
            "model": _target_model,
            "weight": integer(1, MAX_WEIGHT),
            "default_max_tokens": optional(integer(1)),
        },
        required=("provider", "model"),
    )(ctx, path, value)


def _targets(ctx: _Ctx, path: Path, value: Any) -> Any:
    if isinstance(value, list) and len(value) > MAX_TARGETS:
        ctx.error(path, f"at most {MAX_TARGETS} targets per model, got {len(value)}")
        return BAD
    return list_of(_target, nonempty=True)(ctx, path, value)


_price = optional(record(Price, {"input_per_mtok": number(ge=0), "output_per_mtok": number(ge=0)}))


def _model_name(ctx: _Ctx, path: Path, name: Any) -> bool:
    if not isinstance(name, str):
        ctx.error(path, f"expected a name, got {describe_value(name)} (quote it)")
        return False
    if not name or any(c.isspace() for c in name):
        ctx.error(path, "model names are non-empty strings without spaces")
        return False
    return True


def _model(ctx: _Ctx, path: Path, name: str, value: Any) -> Any:
    out = fields(
        ctx,
        path,
        value,
        {"targets": _targets, "fallbacks": optional(list_of(string(nonempty=True))), "price": _price},
        required=("targets",),
    )
    if out is None or "targets" not in out:
        return BAD
    return Model(
        name=name, targets=out["targets"], fallbacks=out.get("fallbacks") or (), price=out.get("price")
    )


def _retry_on_item(ctx: _Ctx, path: Path, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
        return value
    if isinstance(value, str) and value in RETRY_REASONS:
        return value
    ctx.error(path, f"expected a status 400..599, connect_error or timeout; got {describe_value(value)}")
    return BAD


routing = record(
    RoutingSpec,
    {
        "retries": integer(0),
        "retry_on": list_of(_retry_on_item),
        "circuit_breaker": record(CircuitBreakerSpec, {"failures": integer(1), "cooldown_s": number(ge=0)}),
        "health_check": record(
            HealthCheckSpec,
            {"interval_s": number(ge=0), "unhealthy_after": integer(1), "healthy_after": integer(1)},
        ),
    },
)

_redis_url = optional(url(schemes=("redis", "rediss", "unix")))


def _cache(ctx: _Ctx, path: Path, value: Any) -> Any:
    checks = {
        "backend": choice(CacheBackend),
        "ttl_s": number(gt=0),  # Redis refuses an expiry of 0; entries that never expire grow it forever
        "max_entries": integer(1),
        "redis_url": _redis_url,
        "namespace": choice(CacheNamespace),
    }
    out = fields(ctx, path, value, checks)
    if out is None:
        return BAD
    _needs_redis_url(ctx, path, value, out)
    return Cache(**out)


def _limits(ctx: _Ctx, path: Path, value: Any) -> Any:
    checks = {
        "backend": choice(LimitsBackend),
        "redis_url": _redis_url,
        "on_redis_error": choice(("open", "closed")),
    }
    out = fields(ctx, path, value, checks)
    if out is None:
        return BAD
    _needs_redis_url(ctx, path, value, out)
    return Limits(**out)


def _needs_redis_url(ctx: _Ctx, path: Path, raw: Any, out: dict[str, Any]) -> None:
    given = raw.get("redis_url") if isinstance(raw, dict) else None
    # a redis_url that was given but failed its check is reported already
    if out.get("backend") == "redis" and not out.get("redis_url") and given is None:
        ctx.error(path + ("redis_url",), "required when backend is redis")
    # redis-py is an extra: looked up (not imported) only when a redis backend is configured
    if out.get("backend") == "redis" and importlib.util.find_spec("redis") is None:
        ctx.error(path + ("backend",), "redis needs the redis package: install gw[redis]")


def _metrics_path(ctx: _Ctx, path: Path, value: Any) -> Any:
    v = string(nonempty=True)(ctx, path, value)
    if v is not BAD and not v.startswith("/"):
        ctx.error(path, f"must start with '/', got {v!r}")
        return BAD
    return v


metrics = record(Metrics, {"enabled": boolean, "path": _metrics_path})
logging_ = record(
    Logging,
    {
        # level is case-insensitive (people write INFO, as for Python's logging)
        "level": choice(LOG_LEVELS, fold_case=True),
        "format": choice(LogFormat),
        "bodies": boolean,
    },
)

_TOP: dict[str, Check] = {
    "server": server,
    "auth": _auth,
    "providers": mapping_of(_provider_name, _provider),
    "models": mapping_of(_model_name, _model),
    "routing": routing,
    "cache": _cache,
    "limits": _limits,
    "metrics": metrics,
    "logging": logging_,
}


def parse(loaded: Loaded) -> ConfigSpec:
    """Check ``loaded.raw`` against SPEC §3; raise ``ConfigError`` listing every problem."""
    ctx = _Ctx(loaded)
    out = fields(ctx, (), loaded.raw, _TOP, required=("models",))
    out = out or {}
    raw_providers = loaded.raw.get("providers") if isinstance(loaded.raw, dict) else None
    raw_models = loaded.raw.get("models") if isinstance(loaded.raw, dict) else None
    provider_names = (
        [k for k in (raw_providers or {}) if isinstance(k, str)] if isinstance(raw_providers, dict) else []
    )
    model_names = (
        [k for k in (raw_models or {}) if isinstance(k, str)] if isinstance(raw_models, dict) else []
    )
    _check_references(ctx, out.get("models") or {}, provider_names, model_names)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    return ConfigSpec(
        source=loaded.source,
        providers=MappingProxyType(out.get("providers") or {}),
        models=MappingProxyType(out.get("models") or {}),
        warnings=tuple(ctx.warnings),
        overrides=MappingProxyType(dict(loaded.overrides)),
        env_refs=MappingProxyType(dict(loaded.env_refs)),
        **{k: v for k, v in out.items() if k not in ("providers", "models")},
    )


def unknown_provider(name: str, known: list[str] | tuple[str, ...]) -> str:
    listed = f"known: {', '.join(known)}" if known else "no providers are configured"
    return f"unknown provider {name!r} ({listed})"


def _check_references(
    ctx: _Ctx, models: Mapping[str, Model], providers: list[str], model_names: list[str]
) -> None:
    for name, model in models.items():
        for i, t in enumerate(model.targets):
            if t.provider not in providers:
                ctx.error(("models", name, "targets", i, "provider"), unknown_provider(t.provider, providers))
        seen: set[str] = set()
        for i, fb in enumerate(model.fallbacks):
            p = ("models", name, "fallbacks", i)
            if fb == name:
                ctx.error(p, f"model {name!r} cannot be its own fallback")
            elif fb not in model_names:
                ctx.error(p, f"unknown model {fb!r} (known: {', '.join(model_names)})")
            elif fb in seen:
                ctx.error(p, f"fallback {fb!r} is listed twice")
            seen.add(fb)
