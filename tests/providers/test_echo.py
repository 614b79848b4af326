"""The built-in echo backend, in process: every client protocol from the same events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.inprocess import Gateway, config
from tests.providers import checks

CONFIG = config(
    "  demo:\n    type: echo\n",
    "  m:\n    targets: [{provider: demo, model: echo}]\n"
    "  e:\n    targets: [{provider: demo, model: echo}]\n",
)


def run(scenario: Callable[[Gateway], Awaitable[None]]) -> None:
    async def main() -> None:
        async with Gateway(CONFIG) as gw:
            await scenario(gw)

    asyncio.run(main())


def test_chat_completions_and_messages_answer_with_the_last_user_message() -> None:
    async def scenario(gw: Gateway) -> None:
        chat = (await gw.post("/v1/chat/completions", checks.chat(text="one two three"))).json()
        assert chat["choices"][0]["message"]["content"] == "one two three"
        completion = (await gw.post("/v1/completions", {"model": "m", "prompt": "one two"})).json()
        assert completion["choices"][0]["text"] == "one two"
        message = (await gw.post("/v1/messages", checks.messages())).json()
        assert message["content"] == [{"type": "text", "text": "hello there"}]
        streamed = await gw.post("/v1/chat/completions", checks.chat(stream=True, text="one two three"))
        assert b'"content":"three"' in streamed.body and streamed.events()[-1] == b"[DONE]"

    run(scenario)


def test_a_forced_tool_call_is_the_same_call_in_every_protocol() -> None:
    async def scenario(gw: Gateway) -> None:
        tools = [{"type": "function", "function": {"name": "say", "parameters": {"type": "object"}}}]
        body = {**checks.chat(text="hi you"), "tools": tools, "tool_choice": "required"}
        call = (await gw.post("/v1/chat/completions", body)).json()["choices"][0]["message"]["tool_calls"][0]
        assert call["function"] == {"name": "say", "arguments": '{"text":"hi you"}'}
        anthropic_tools = [{"name": "say", "input_schema": {"type": "object"}}]
        message = await gw.post(
            "/v1/messages", {**checks.messages(), "tools": anthropic_tools, "tool_choice": {"type": "any"}}
        )
        block = message.json()["content"][0]
        assert (
            block["type"] == "tool_use"
            and block["name"] == "say"
            and block["input"] == {"text": "hello there"}
        )

    run(scenario)


def test_embeddings() -> None:
    async def scenario(gw: Gateway) -> None:
        got = await gw.post("/v1/embeddings", {"model": "e", "input": ["a", "b"], "dimensions": 4})
        assert [len(d["embedding"]) for d in got.json()["data"]] == [4, 4]

    run(scenario)
