"""The compiled routing table as ``gw check`` prints it.

    print(describe(load_tables("config.yaml")))

Names, weights, URLs and reasons only: never a key (a URL's ``user:password@``
is hidden too, and headers show only their names).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import urlsplit, urlunsplit

from gw.config.tables import REQUESTED, ApiKey, Provider, ProviderType, Tables

# Names coding agents ask for by default: `gw check` shows where each would go.
SAMPLE_NAMES = (
    "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "gpt-5", "gpt-5-codex", "gpt-4o-mini",
)  # fmt: skip

# what an anthropic-type target sends when the client gives no max_tokens
ANTHROPIC_DEFAULT_MAX_TOKENS = 4096


def _share(weight: int, total: int) -> str:
    pct = f"{100 * weight / total:.1f}".rstrip("0").rstrip(".")
    return f"{pct}%"


def _safe_url(url: str) -> str:
    if not url:
        return "(built in)"
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def _resolved(tables: Tables, name: str) -> str:
    """Which model serves a requested ``name``, and the first target's upstream model."""
    if name in tables.models:
        model = tables.models[name]
    else:
        pattern = next((p for p in tables.patterns if fnmatchcase(name, p)), None)
        if pattern is None:
            return "no model (404)"
        model = tables.models[pattern]
    first = model.targets[0]
    return f"{model.name}: {first.provider}/{first.model.replace(REQUESTED, name)}"


def describe(tables: Tables) -> str:
    """Models -> targets (weight, share), providers, auth, dropped items, warnings."""
    out: list[str] = [f"config: {tables.source}"]
    s = tables.server
    workers = f"{s.workers} worker" + ("s" if s.workers != 1 else "")
    out.append(f"server: {s.host}:{s.port}, {workers}")

    out += ["", f"models ({len(tables.models)}):"]
    for model in tables.models.values():
        out.append(f"  {model.name}")
        total = sum(t.weight for t in model.targets)
        for t in model.targets:
            line = f"    {t.provider}/{t.model} weight={t.weight} ({_share(t.weight, total)})"
            provider = tables.providers.get(t.provider)
            if provider is not None and provider.type is ProviderType.ANTHROPIC:
                line += f" default_max_tokens={t.default_max_tokens or ANTHROPIC_DEFAULT_MAX_TOKENS}"
            out.append(line)
        if model.fallbacks:
            out.append(f"    fallbacks: {', '.join(model.fallbacks)}")
        if model.price is not None:
            price = model.price
            out.append(
                f"    price: ${price.input_per_mtok:g} in, ${price.output_per_mtok:g} out per 1M tokens"
            )

    if tables.patterns:
        out += ["", "patterns, the most specific first (exact names win over them):"]
        out += [f"  {p}" for p in tables.patterns]
        out += ["", "sample names:"]
        for name in SAMPLE_NAMES:
            out.append(f"  {name} -> {_resolved(tables, name)}")

    out += ["", f"providers ({len(tables.providers)}):"]
    width = max((len(n) for n in tables.providers), default=0)
    url_width = max((len(_safe_url(p.base_url)) for p in tables.providers.values()), default=0)
    for p in tables.providers.values():
        state = "enabled" if p.enabled else f"disabled: {p.disabled_reason}"
        line = f"  {p.name:<{width}}  {p.type.value:<9}  {_safe_url(p.base_url):<{url_width}}  {state}"
        if p.headers:
            line += f"  headers: {', '.join(k for k, _ in p.headers)}"
        out.append(line)

    a = tables.auth
    names = [k.name for k in a.keys_by_digest.values()]
    if names:
        noun = "key" if len(names) == 1 else "keys"
        out += ["", f"auth: {len(names)} {noun} ({', '.join(names)})"]
    else:
        out += ["", "auth: disabled (no keys)"]
    out.append(f"admin key: {'set' if a.admin_key_digest is not None else 'not set'}")
    limited = [(k.name, _limits_of(k)) for k in a.keys_by_digest.values()]
    limited += [(f"provider {p.name}", _limits_of(p)) for p in tables.providers.values()]
    if any(what for _, what in limited):
        redis = tables.limits.backend == "redis"
        where = "Redis, every replica" if redis else "one gw serve, all its workers"
        out += ["", f"limits ({tables.limits.backend}: {where}):"]
        out += [f"  {name}: {what}" for name, what in limited if what]

    if tables.dropped:
        out += ["", f"dropped ({len(tables.dropped)}):"]
        out += [f"  {d.kind} {d.name}: {d.reason}" for d in tables.dropped]
    if tables.warnings:
        out += ["", f"warnings ({len(tables.warnings)}):"]
        out += [f"  {w}" for w in tables.warnings]
    return "\n".join(out) + "\n"


def _limits_of(holder: ApiKey | Provider) -> str:
    """A key's or provider's limits in a few words ("" when none)."""
    parts = []
    rate = holder.rate_limit
    if rate is not None:
        parts += [f"{rate.rpm} rpm"] if rate.rpm else []
        parts += [f"{rate.tpm} tpm"] if rate.tpm else []
    if isinstance(holder, ApiKey):
        if holder.max_concurrent:
            parts.append(f"{holder.max_concurrent} in flight")
        if holder.budget is not None:
            parts.append(f"${holder.budget.amount:g} a {holder.budget.period} (UTC)")
    return ", ".join(parts)
