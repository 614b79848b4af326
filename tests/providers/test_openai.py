"""The openai adapter against its wire fake, in process: every client protocol, whole and streamed."""

from __future__ import annotations

from tests.fakes.openai_server import FakeProtocol
from tests.providers.checks import AdapterChecks, Backend

BACKEND = Backend("openai", FakeProtocol)


class TestOpenAI(AdapterChecks):
    backend = BACKEND
