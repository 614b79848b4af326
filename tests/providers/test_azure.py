"""The azure adapter against its wire fake, in process: every client protocol, whole and streamed."""

from __future__ import annotations

from tests.fakes.openai_server import FakeProtocol
from tests.providers import checks
from tests.providers.checks import Backend, run

BACKEND = Backend("azure", FakeProtocol, base_path="", extra='    api_version: "2024-10-21"\n')


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
