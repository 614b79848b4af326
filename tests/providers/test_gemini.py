"""The gemini adapter against its wire fake, in process: every client protocol, whole and streamed."""

from __future__ import annotations

from tests.fakes.gemini_server import GeminiProtocol
from tests.providers.checks import AdapterChecks, Backend

BACKEND = Backend(
    "gemini",
    GeminiProtocol,
    base_path="/v1beta",
    model="gemini-2.5-flash",
    other="gemini-2.5-pro",
    embed_model="gemini-embedding-001",
)


class TestGemini(AdapterChecks):
    backend = BACKEND
