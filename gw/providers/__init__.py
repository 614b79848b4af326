"""One adapter per provider type; ``build_adapter`` picks it at start-up."""

from __future__ import annotations

from ..config.tables import Provider, ProviderType
from .base import Adapter


def build_adapter(provider: Provider) -> Adapter | None:
    """The adapter for ``provider``, or None when its type has no converter yet."""
    if provider.type is ProviderType.OPENAI:
        from .openai import OpenAIAdapter

        return OpenAIAdapter(provider)
    if provider.type is ProviderType.AZURE:
        from .azure import AzureAdapter

        return AzureAdapter(provider)
    if provider.type is ProviderType.ECHO:
        from .echo import EchoAdapter

        return EchoAdapter(provider)
    return None


__all__ = ["Adapter", "build_adapter"]
