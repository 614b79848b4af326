"""Anthropic Messages <-> OpenAI Chat Completions requests round-trip on what both express.

``messages.to_openai`` (a Messages request to any backend) and
``anthropic.chat_request`` (a chat request to an Anthropic backend) are each
other's inverse on text turns, a system prompt, tools, tool calls and their
results, stop sequences, max tokens, temperature, top_p, top_k, tool_choice
and the user id.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from gw._fast import anthropic, messages
from tests.strategies import chat_requests, messages_requests


@settings(max_examples=300, deadline=None)
@given(messages_requests())
def test_a_messages_request_survives_openai_and_back(body: dict[str, Any]) -> None:
    assert anthropic.chat_request(messages.to_openai(body), body["model"], 1) == body


@settings(max_examples=300, deadline=None)
@given(chat_requests())
def test_a_chat_request_survives_anthropic_and_back(body: dict[str, Any]) -> None:
    assert messages.to_openai(anthropic.chat_request(body, body["model"], 1)) == body
