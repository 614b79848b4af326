"""The anthropic adapter against its wire fake, in process: every client protocol, whole and streamed."""

from __future__ import annotations

from tests.fakes.anthropic_server import AnthropicProtocol
from tests.providers import checks
from tests.providers.checks import Backend, run

BACKEND = Backend("anthropic", AnthropicProtocol, model="claude-a", other="claude-b")


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
    run(BACKEND, checks.check_no_embeddings)


def test_an_error_event_right_after_message_start_is_retried_in_both_protocols() -> None:
    async def scenario(fake: checks.Fake, gw: checks.Gateway) -> None:
        for path, body in (
            ("/v1/messages", checks.messages(stream=True)),
            ("/v1/chat/completions", checks.chat(True)),
        ):
            fake.set_mode(fault="error_event", at_start=True, times=1)
            before = fake.state.stats["requests"]
            got = await gw.post(path, body)
            assert got.status == 200
            assert b"error" not in got.body
            assert fake.state.stats["requests"] - before == 2

    run(BACKEND, scenario)
