"""The ollama adapter against its wire fake, in process: every client protocol, whole and streamed."""

from __future__ import annotations

from tests.fakes.ollama_server import OllamaProtocol
from tests.providers import checks
from tests.providers.checks import Backend, run

BACKEND = Backend(
    "ollama", OllamaProtocol, base_path="", model="llama3.2", other="qwen3:8b", embed_model="nomic-embed-text"
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
