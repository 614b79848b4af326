"""The gemini adapter against its wire fake, in process: every client protocol, whole and streamed."""

from __future__ import annotations

from tests.fakes.gemini_server import GeminiProtocol
from tests.providers import checks
from tests.providers.checks import Backend, run

BACKEND = Backend(
    "gemini",
    GeminiProtocol,
    base_path="/v1beta",
    model="gemini-2.5-flash",
    other="gemini-2.5-pro",
    embed_model="gemini-embedding-001",
)


def test_chat_whole_and_streamed() -> None:
    run(BACKEND, checks.check_chat)


def test_legacy_completions_whole_and_streamed() -> None:
    run(BACKEND, checks.check_completions)


def test_anthropic_messages_whole_and_streamed() -> None:
    run(BACKEND, checks.check_messages)


def test_a_failure_before_the_answer_is_retried_on_the_other_target() -> None:
    run(BACKEND, checks.check_early_failure_is_retried)


def test_errors_come_in_the_client_protocols_envelope() -> None:
    run(BACKEND, checks.check_error_envelopes)


def test_embeddings() -> None:
    run(BACKEND, checks.check_embeddings)
