"""Azure OpenAI: the OpenAI protocol at a deployment URL, keyed by ``api-key``.

The target's ``model`` is the deployment name:
``{base_url}/openai/deployments/{model}/{chat/completions|completions|embeddings}?api-version=...``.
"""

from __future__ import annotations

from urllib.parse import quote

from ..config.tables import Provider, Target
from .openai import OpenAIAdapter

DEFAULT_API_VERSION = "2024-10-21"
_MAX_URLS = 1024


class AzureAdapter(OpenAIAdapter):
    def __init__(self, provider: Provider) -> None:
        super().__init__(provider)
        version = quote(provider.api_version or DEFAULT_API_VERSION, safe="")
        self._query = f"?api-version={version}"
        self.probe_url = f"{provider.base_url}/openai/models{self._query}"
        self._urls: dict[tuple[str, str], str] = {}

    def auth_headers(self) -> list[tuple[str, str]]:
        key = self.provider.api_key
        return [("api-key", key)] if key else []

    def responses_url(self) -> str:
        """Azure's v1 API (no api-version); the deployment goes in the body's ``model``."""
        return f"{self.provider.base_url}/openai/v1/responses"

    def url(self, target: Target, endpoint: str) -> str:
        key = (target.model, endpoint)
        url = self._urls.get(key)
        if url is None:
            deployment = quote(target.model, safe="")
            url = f"{self.provider.base_url}/openai/deployments/{deployment}/{endpoint}{self._query}"
            if len(self._urls) < _MAX_URLS:  # a {model} target sees free-form names
                self._urls[key] = url
        return url
