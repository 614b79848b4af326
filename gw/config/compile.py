"""Turn the checked config into the read-only ``Tables`` requests use.

    tables = compile_tables(parse(load("config.yaml")))

Here disabled providers are decided, targets on them dropped, models left
without a target dropped, key globs resolved to model names and keys hashed.
Every warning is logged on ``gw.config`` and kept in ``Tables.warnings``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from fnmatch import fnmatchcase
from types import MappingProxyType

from gw.config.load import load
from gw.config.schema import ConfigSpec, ProviderSpec, RateLimitSpec, parse, unknown_provider
from gw.config.tables import (
    ApiKey,
    Auth,
    Cache,
    Dropped,
    Limits,
    Logging,
    Metrics,
    Model,
    Price,
    Provider,
    RateLimit,
    Routing,
    Server,
    Tables,
    Target,
)
from gw.errors import ConfigError

log = logging.getLogger("gw.config")


def _rate_limit(spec: RateLimitSpec | None) -> RateLimit | None:
    if spec is None or (spec.rpm is None and spec.tpm is None):
        return None
    return RateLimit(rpm=spec.rpm, tpm=spec.tpm)


def _disabled_reason(p: ProviderSpec) -> str | None:
    if not p.enabled:
        return "disabled in config"
    if p.api_key == "":
        return "api_key is empty"
    return None


def _provider(p: ProviderSpec) -> Provider:
    reason = _disabled_reason(p)
    return Provider(
        name=p.name,
        type=p.type,
        base_url=p.base_url,
        api_key=p.api_key or None,
        api_version=p.api_version,
        timeout_s=p.timeout_s,
        connect_timeout_s=p.connect_timeout_s,
        first_byte_timeout_s=p.first_byte_timeout_s,
        idle_timeout_s=p.idle_timeout_s,
        max_connections=p.max_connections,
        rate_limit=_rate_limit(p.rate_limit),
        headers=tuple(p.headers),
        enabled=reason is None,
        disabled_reason=reason,
    )


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def compile_tables(spec: ConfigSpec) -> Tables:
    """Build ``Tables`` from ``spec``; raise ``ConfigError`` if no model is left."""
    src = spec.source
    warnings: list[str] = list(spec.warnings)
    dropped: list[Dropped] = []
    problems: list[str] = []

    providers = {name: _provider(p) for name, p in spec.providers.items()}
    for p in providers.values():
        if not p.enabled:
            dropped.append(Dropped(kind="provider", name=p.name, reason=p.disabled_reason or ""))
            warnings.append(f"provider {p.name!r} disabled: {p.disabled_reason}")

    models: dict[str, Model] = {}
    for name, m in spec.models.items():
        targets: list[Target] = []
        lost: list[Dropped] = []
        for i, t in enumerate(m.targets):
            provider = providers.get(t.provider)
            if provider is None:  # parse() reports these; kept for specs built by hand
                problems.append(
                    f"{src}: models.{name}.targets[{i}].provider: {unknown_provider(t.provider, list(providers))}"
                )
                continue
            if not provider.enabled:
                why = f"provider {provider.name!r} disabled: {provider.disabled_reason}"
                lost.append(Dropped(kind="target", name=f"{name} → {t.provider}/{t.model}", reason=why))
                continue
            targets.append(Target(t.provider, t.model, t.weight, t.default_max_tokens))
        dropped.extend(lost)
        if not targets:
            if lost:
                why = "no enabled target"
                dropped.append(Dropped(kind="model", name=name, reason=why))
                # one line for the model instead of one per target
                detail = "; ".join(f"{d.name.split(' → ', 1)[1]}: {d.reason}" for d in lost)
                warnings.append(f"model {name!r} dropped: {why} ({detail})")
            continue
        warnings.extend(f"target {d.name} dropped: {d.reason}" for d in lost)
        price = None if m.price is None else Price(m.price.input_per_mtok, m.price.output_per_mtok)
        models[name] = Model(name=name, targets=tuple(targets), fallbacks=tuple(m.fallbacks), price=price)

    # fallbacks naming a model that was dropped go too
    for name, model in list(models.items()):
        kept = []
        for fb in model.fallbacks:
            if fb in models:
                kept.append(fb)
                continue
            why = f"model {fb!r} was dropped"
            dropped.append(Dropped(kind="fallback", name=f"{name} → {fb}", reason=why))
            warnings.append(f"fallback {name} → {fb} dropped: {why}")
        if len(kept) != len(model.fallbacks):
            models[name] = Model(model.name, model.targets, tuple(kept), model.price)

    if not models and not problems:
        problems.append(f"{src}: models: no model has an enabled target")
    if problems:
        raise ConfigError(problems)

    keys: dict[bytes, ApiKey] = {}
    for k in spec.auth.keys:
        allowed = frozenset(m for m in models if any(fnmatchcase(m, g) for g in k.models))
        for glob in k.models:
            if not any(fnmatchcase(m, glob) for m in models):
                warnings.append(f"auth key {k.name!r}: models pattern {glob!r} matches no model")
        keys[_digest(k.key)] = ApiKey(
            name=k.name,
            key=k.key,
            model_globs=tuple(k.models),
            allowed_models=allowed,
            rate_limit=_rate_limit(k.rate_limit),
        )
    if not keys:
        warnings.append("auth disabled: no keys configured")
    auth = Auth(
        keys_by_digest=MappingProxyType(keys),
        admin_key_digest=_digest(spec.auth.admin_key) if spec.auth.admin_key else None,
    )

    s = spec.server
    server = Server(
        host=s.host,
        port=s.port,
        workers=s.workers,
        max_body_bytes=s.max_body_bytes,
        cors_allow_origins=None if s.cors is None else tuple(s.cors.allow_origins),
        drain_timeout_s=s.drain_timeout_s,
    )
    r = spec.routing
    routing = Routing(
        retries=r.retries,
        retry_on=frozenset(r.retry_on),
        breaker_failures=r.circuit_breaker.failures,
        breaker_cooldown_s=r.circuit_breaker.cooldown_s,
        health_check_interval_s=r.health_check.interval_s,
        health_check_unhealthy_after=r.health_check.unhealthy_after,
        health_check_healthy_after=r.health_check.healthy_after,
    )
    c, lim, met, lg = spec.cache, spec.limits, spec.metrics, spec.logging

    for w in warnings:
        log.warning("%s: %s", src, w)
    return Tables(
        source=src,
        server=server,
        auth=auth,
        providers=MappingProxyType(providers),
        models=MappingProxyType(models),
        routing=routing,
        cache=Cache(backend=c.backend, ttl_s=c.ttl_s, max_entries=c.max_entries, redis_url=c.redis_url),
        limits=Limits(backend=lim.backend, redis_url=lim.redis_url),
        metrics=Metrics(enabled=met.enabled, path=met.path),
        logging=Logging(level=lg.level, format=lg.format, bodies=lg.bodies),
        dropped=tuple(dropped),
        warnings=tuple(warnings),
    )


def load_tables(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    dotenv: str | os.PathLike[str] | None = ".env",
) -> Tables:
    """``load`` -> ``parse`` -> ``compile_tables``: what ``gw serve``, ``gw check``
    and a reload call. Raises ``ConfigError`` listing every problem found."""
    return compile_tables(parse(load(path, environ, dotenv)))
