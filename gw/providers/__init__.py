"""One adapter per provider type; ``build_adapter`` picks it at start-up."""

from __future__ import annotations

from importlib import import_module

from ..config.tables import Provider, ProviderType
from .base import Adapter

# type -> (module, class): imported only for the types a config uses.
_ADAPTERS: dict[ProviderType, tuple[str, str]] = {
    ProviderType.OPENAI: (".openai", "OpenAIAdapter"),
    ProviderType.AZURE: (".azure", "AzureAdapter"),
    ProviderType.ANTHROPIC: (".anthropic", "AnthropicAdapter"),
    ProviderType.GEMINI: (".gemini", "GeminiAdapter"),
    ProviderType.OLLAMA: (".ollama", "OllamaAdapter"),
    ProviderType.ECHO: (".echo", "EchoAdapter"),
}


def build_adapter(provider: Provider) -> Adapter:
    """The adapter that speaks ``provider``'s protocol."""
    module, name = _ADAPTERS[provider.type]
    adapter: Adapter = getattr(import_module(module, __name__), name)(provider)
    return adapter


__all__ = ["Adapter", "build_adapter"]
