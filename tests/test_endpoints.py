"""The endpoint readers' own rules: count_tokens' estimate (gw/endpoints/messages.py)."""

from __future__ import annotations

import math

import orjson
import pytest

from gw.call import Operation
from gw.endpoints.messages import MEDIA_TOKENS, estimate_input_tokens, read_count_tokens
from gw.errors import BadRequest

IMAGE = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo" * 1000},
}


def test_the_estimate_is_a_quarter_of_the_characters_rounded_up_and_at_least_one():
    assert estimate_input_tokens({"messages": [{"role": "user", "content": "abcd"}]}) == 1
    assert estimate_input_tokens({"messages": [{"role": "user", "content": "abcde"}]}) == 2
    assert estimate_input_tokens({"messages": [{"role": "user", "content": ""}]}) == 1


def test_the_estimate_counts_system_blocks_tool_traffic_and_tool_definitions():
    tool = {"name": "get_weather", "input_schema": {"type": "object"}}
    body = {
        "system": [{"type": "text", "text": "Be brief"}],
        "tools": [tool],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "look it up", "signature": "sig" * 100},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "18C"}],
                    },
                    {"type": "redacted_thinking", "data": "x" * 1000},
                ],
            },
        ],
    }
    chars = (
        len("Be brief")
        + len(orjson.dumps(tool))
        + len("Weather?")
        + len("look it up")
        + len("get_weather")
        + len(b'{"city":"Paris"}')
        + len("18C")
    )
    assert estimate_input_tokens(body) == math.ceil(chars / 4)


def test_images_count_a_flat_figure_and_text_documents_their_text():
    document = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "abcdefgh"},
    }
    body = {"messages": [{"role": "user", "content": [IMAGE, document]}]}
    assert estimate_input_tokens(body) == MEDIA_TOKENS + 2


def test_a_count_tokens_body_is_a_messages_body_without_max_tokens():
    parsed = read_count_tokens({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert parsed.operation is Operation.COUNT_TOKENS
    assert parsed.model == "m" and parsed.stream is False
    assert parsed.headers == ("anthropic-version", "anthropic-beta")
    assert parsed.estimate is not None and orjson.loads(parsed.estimate()) == {"input_tokens": 1}
    with pytest.raises(BadRequest):
        read_count_tokens({"model": "m", "messages": []})
