"""The anthropic adapter against its wire fake, in process: every client protocol, whole and streamed."""

from __future__ import annotations

from tests.fakes.anthropic_server import AnthropicProtocol
from tests.providers import checks
from tests.providers.checks import AdapterChecks, Backend, run

BACKEND = Backend("anthropic", AnthropicProtocol, model="claude-a", other="claude-b")


class TestAnthropic(AdapterChecks):
    backend = BACKEND

    def test_embeddings(self) -> None:
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
