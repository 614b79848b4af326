"""The ollama adapter against its wire fake, in process: every client protocol, whole and streamed."""

from __future__ import annotations

from tests.fakes.ollama_server import OllamaProtocol
from tests.providers.checks import AdapterChecks, Backend

BACKEND = Backend(
    "ollama", OllamaProtocol, base_path="", model="llama3.2", other="qwen3:8b", embed_model="nomic-embed-text"
)


class TestOllama(AdapterChecks):
    backend = BACKEND
