"""The azure adapter against its wire fake, in process: every client protocol, whole and streamed."""

from __future__ import annotations

from tests.fakes.openai_server import FakeProtocol
from tests.providers.checks import AdapterChecks, Backend

BACKEND = Backend("azure", FakeProtocol, base_path="", extra='    api_version: "2024-10-21"\n')


class TestAzure(AdapterChecks):
    backend = BACKEND
