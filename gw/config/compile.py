"""Turn the checked config into the read-only ``Tables`` requests use.

    tables = compile_tables(parse(load("config.yaml")))

Here disabled providers are decided, targets on them dropped, models left
without a target dropped, key globs resolved to model names and keys hashed.
Every warning is kept in ``Tables.warnings``; ``load_tables`` logs them on
``gw.config``, once for all the processes of one ``gw serve`` (``log_warnings``).
A config that would let anyone on the network spend a provider's key (no auth
key, a non-loopback host, ``auth.allow_anonymous`` not set) is an error.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
from collections.abc import Mapping
from fnmatch import fnmatchcase
from types import MappingProxyType

from gw.config.load import Path, load
from gw.config.schema import ConfigSpec, ProviderSpec, parse, unknown_provider
from gw.config.tables import (
    ApiKey,
    Auth,
    Dropped,
    Model,
    Provider,
    ProviderType,
    RateLimit,
    Routing,
    Server,
    Tables,
    Target,
    is_pattern,
)
from gw.errors import ConfigError

log = logging.getLogger("gw.config")


def _rate_limit(spec: RateLimit | None) -> RateLimit | None:
    return None if spec is None or (spec.rpm is None and spec.tpm is None) else spec


def _origin(spec: ConfigSpec, path: Path) -> str | None:
    """What gave the key at ``path`` its value: ``set by GW__...``, or the ``${VAR}``s
    it came from (``OPENAI_API_KEY is not set``); None for a literal value."""
    override = spec.overrides.get(path)
    if override is not None:
        return f"set by {override.var}"
    refs = spec.env_refs.get(path, ())
    without_value = [r for r in refs if not r.is_set or r.empty]
    return ", ".join(str(r) for r in (without_value or refs)) or None


def _disabled(p: ProviderSpec, spec: ConfigSpec) -> tuple[str, str] | None:
    """(reason, warning) when ``p`` is off, else None. The reason is what ``gw check``,
    ``/health/detailed`` and a request for one of its models say."""
    if not p.enabled:
        why = _origin(spec, ("providers", p.name, "enabled"))
        detail = f" ({why})" if why else ""
        return (
            f"disabled in config{detail}",
            f"providers.{p.name}.enabled is false{detail}: provider disabled",
        )
    if p.api_key == "":
        path = ("providers", p.name, "api_key")
        why = _origin(spec, path)
        detail = f" ({why})" if why else ""
        # "OPENAI_API_KEY is not set" says it all; a GW__ variable or a literal "" needs the key named
        reason = why if why and path not in spec.overrides else f"api_key is empty{detail}"
        return reason, f"providers.{p.name}.api_key is empty{detail}: provider disabled"
    return None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _provider(p: ProviderSpec, reason: str | None) -> Provider:
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
        responses_native=p.type in (ProviderType.OPENAI, ProviderType.AZURE) and p.responses == "native",
    )


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def patterns_of(models: Mapping[str, Model]) -> tuple[str, ...]:
    """The pattern names, longest first (ties in config order)."""
    return tuple(sorted((n for n in models if is_pattern(n)), key=len, reverse=True))


def compile_tables(spec: ConfigSpec) -> Tables:
    """Build ``Tables`` from ``spec``; raise ``ConfigError`` if no model is left."""
    src = spec.source
    warnings: list[str] = list(spec.warnings)
    dropped: list[Dropped] = []
    problems: list[str] = []

    providers: dict[str, Provider] = {}
    for name, p in spec.providers.items():
        off = _disabled(p, spec)
        providers[name] = _provider(p, None if off is None else off[0])
        if off is not None:
            dropped.append(Dropped(kind="provider", name=name, reason=off[0]))
            warnings.append(off[1])

    models: dict[str, Model] = {}
    # a model whose targets are all on disabled providers -> why, for its 404
    dropped_models: dict[str, str] = {}
    for name, m in spec.models.items():
        targets: list[Target] = []
        lost: list[Dropped] = []
        for i, t in enumerate(m.targets):
            provider = providers.get(t.provider)
            if provider is None:  # parse() reports these; kept for specs built by hand
                unknown = unknown_provider(t.provider, list(providers))
                problems.append(f"{src}: models.{name}.targets[{i}].provider: {unknown}")
                continue
            if not provider.enabled:
                why = f"provider {provider.name!r} disabled: {provider.disabled_reason}"
                lost.append(Dropped(kind="target", name=f"{name} → {t.provider}/{t.model}", reason=why))
                continue
            targets.append(t)
        dropped.extend(lost)
        if not targets:
            if lost:
                why = "no enabled target"
                dropped.append(Dropped(kind="model", name=name, reason=why))
                # one line for the model instead of one per target
                detail = "; ".join(f"{d.name.split(' → ', 1)[1]}: {d.reason}" for d in lost)
                warnings.append(f"model {name!r} dropped: {why} ({detail})")
                reasons = {t.provider: providers[t.provider].disabled_reason for t in m.targets}
                if len(reasons) == 1:
                    [(pname, reason)] = reasons.items()
                    dropped_models[name] = f"its provider {pname!r} is disabled: {reason}"
                else:
                    each = "; ".join(f"{pname!r}: {reason}" for pname, reason in reasons.items())
                    dropped_models[name] = f"its providers are all disabled ({each})"
            continue
        warnings.extend(f"target {d.name} dropped: {d.reason}" for d in lost)
        models[name] = Model(name=name, targets=tuple(targets), fallbacks=tuple(m.fallbacks), price=m.price)

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
    problems.extend(_open_to_anyone(spec, providers, models))
    if problems:
        raise ConfigError(problems)

    keys: dict[bytes, ApiKey] = {}
    for k in spec.auth.keys:
        allowed = frozenset(m for m in models if any(fnmatchcase(m, g) for g in k.models))
        for glob in k.models:
            # a model pattern may take names the glob matches: no way to tell here
            if not any(fnmatchcase(m, glob) or is_pattern(m) for m in models):
                warnings.append(f"auth key {k.name!r}: models pattern {glob!r} matches no model")
        keys[_digest(k.key)] = ApiKey(
            name=k.name,
            key=k.key,
            model_globs=tuple(k.models),
            allowed_models=allowed,
            rate_limit=_rate_limit(k.rate_limit),
            max_concurrent=k.max_concurrent,
            budget=k.budget_usd,
        )
    if not keys and not spec.auth.allow_anonymous:
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
    return Tables(
        source=src,
        server=server,
        auth=auth,
        providers=MappingProxyType(providers),
        models=MappingProxyType(models),
        routing=routing,
        cache=spec.cache,
        limits=spec.limits,
        metrics=spec.metrics,
        logging=spec.logging,
        dropped=tuple(dropped),
        warnings=tuple(warnings),
        dropped_models=MappingProxyType(dropped_models),
        patterns=patterns_of(models),
    )


def _open_to_anyone(
    spec: ConfigSpec, providers: Mapping[str, Provider], models: Mapping[str, Model]
) -> list[str]:
    """The problem when anyone who can reach gw could spend a provider's key."""
    host = spec.server.host
    if spec.auth.keys or spec.auth.allow_anonymous or is_loopback(host):
        return []
    served = {t.provider for m in models.values() for t in m.targets}
    paying = [name for name, p in providers.items() if name in served and p.api_key]
    if not paying:
        return []
    which = (
        f"provider {paying[0]!r} has"
        if len(paying) == 1
        else f"providers {', '.join(map(repr, paying))} have"
    )
    return [
        (
            f"{spec.source}: server.host: gw would listen on {host} without auth keys and {which} an api_key:"
            " anyone who can reach this address could spend it. Configure auth.keys, or listen on 127.0.0.1"
            " (server.host, --host or GW__SERVER__HOST), or set auth.allow_anonymous: true"
            " if open access is intended"
        )
    ]


# Set by `gw serve` for its workers: the file holding the warnings printed last.
WARNINGS_FILE_VAR = "GW_WARNINGS_FILE"


def log_warnings(tables: Tables, shown: str | None = None) -> None:
    """Log ``tables.warnings`` on ``gw.config``, unless they were printed already.

    ``shown`` (default: the file named in ``$GW_WARNINGS_FILE``) records the list
    printed last: ``gw serve`` prints the warnings and writes the file before
    starting its workers, so the workers, compiling the same config, stay quiet;
    a reload that changes the warnings prints the new list once, in the process
    that compiled it first. Without the file every call logs.
    """
    path = shown if shown is not None else os.environ.get(WARNINGS_FILE_VAR)
    text = "\n".join(tables.warnings)
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == text:
                    return
        except OSError:
            pass
    for w in tables.warnings:
        log.warning("%s: %s", tables.source, w)
    if path:
        partial = f"{path}.{os.getpid()}"
        try:
            with open(partial, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(partial, path)  # readers see the old list or the new one, never half
        except OSError:
            pass


def load_tables(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    dotenv: str | os.PathLike[str] | None = ".env",
    *,
    warn: bool = True,
) -> Tables:
    """``load`` -> ``parse`` -> ``compile_tables``: what ``gw serve``, ``gw check``
    and a reload call. Raises ``ConfigError`` listing every problem found. With
    ``warn`` the warnings are logged (``log_warnings``)."""
    tables = compile_tables(parse(load(path, environ, dotenv)))
    if warn:
        log_warnings(tables)
    return tables
