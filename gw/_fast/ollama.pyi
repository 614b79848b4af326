"""Ollama's native API <-> OpenAI: chat requests and answers, the NDJSON stream, embeddings.

    body = chat_request(openai_body, "llama3.2", stream=False)   # POST {base_url}/api/chat
    answer = chat_answer(orjson.loads(data), "chatcmpl-1", 1700000000, "llama3.2")

    conv = OllamaStream("chatcmpl-1", 1700000000, "llama3.2", include_usage=True)
    out = conv.feed(b'{"message":{"role":"assistant","content":"Hi"},"done":false}\\n')
    # role chunk, then the "Hi" content chunk (SSE bytes)

What maps to what, and what is dropped, is the README's conversion table ("Ollama").
"""

from typing import Any

def chat_request(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    """An OpenAI Chat Completions body as an Ollama ``/api/chat`` body.

        chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                      "max_tokens": 5, "stop": "END"}, "llama3.2", False)
        # {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}],
        #  "stream": False, "options": {"num_predict": 5, "stop": ["END"]}}

    ``stream`` is always sent (Ollama streams when it is absent). Text parts are
    joined with a newline; ``data:`` image URLs go to ``images`` as bare base64;
    assistant tool calls get their ``arguments`` parsed to an object; tool
    results carry the ``tool_name`` of the call they answer. Raises
    ``InvalidInput`` for http(s) image URLs (Ollama does not fetch them),
    ``n`` > 1, bad tool-call JSON, unknown ``tool_call_id`` and unknown parts.
    """

def usage_from(answer: dict[str, Any]) -> dict[str, Any]:
    """``make_usage(prompt_eval_count, eval_count)``; a missing count is 0."""

def chat_answer(answer: dict[str, Any], id: str, created: int, model: str) -> dict[str, Any]:
    """An Ollama ``/api/chat`` answer (``stream: false``) as an OpenAI ``chat.completion``.

        chat_answer({"message": {"role": "assistant", "content": "",
                                 "tool_calls": [{"function": {"name": "now", "arguments": {}}}]},
                     "done": True, "done_reason": "stop"}, "c1", 1, "llama3.2")
        # choices[0]: message.content None, tool_calls [{"id": "call_<24 hex>",
        #   "type": "function", "function": {"name": "now", "arguments": "{}"}}],
        #   finish_reason "tool_calls"

    ``done_reason`` stop -> "stop", length -> "length", anything else -> "stop";
    ``message.thinking`` is dropped.
    """

class OllamaStream:
    """Ollama's NDJSON stream in, OpenAI ``chat.completion.chunk`` events out (for ``pump``).

        conv = OllamaStream("chatcmpl-1", 1700000000, "llama3.2", include_usage=False)
        conv.feed(b'{"message":{"content":"Hi"},"done":false}\\n{"message":{"content":""},')
        # role chunk + content chunk
        conv.feed(b'"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":1}\\n')
        # finish chunk (stop) + [DONE]; conv.done is True, conv.usage is set

    Lines may be split anywhere (even inside a UTF-8 character). Each tool call
    (Ollama sends them whole) is one delta with its own ``index`` (0, 1, ...),
    a new ``id`` and its full JSON ``arguments`` (``"{}"`` when none). The done
    line gives exactly one finish chunk, the usage chunk when
    ``include_usage``, then ``[DONE]``. An ``{"error": "..."}`` line sets
    ``error``; a line that is not a JSON object sets ``invalid``; an EOF
    before the done line leaves ``done`` False.
    """

    usage: dict[str, Any] | None
    error: Any
    invalid: str | None
    done: bool

    def __init__(self, id: str, created: int, model: str, include_usage: bool) -> None: ...
    def feed(self, chunk: bytes) -> bytes:
        """Take the next read; return the events it completed (maybe b"")."""
    def close(self) -> bytes:
        """At EOF: convert a last line that had no newline; b"" otherwise."""

def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """The texts of an OpenAI embeddings body: ``"a"`` -> ``["a"]``.

    Raises ``InvalidInput`` (param ``input``) for token arrays.
    """

def embed_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """embed_request({"input": ["a", "b"], "dimensions": 8}, "nomic-embed-text")
    # {"model": "nomic-embed-text", "input": ["a", "b"], "truncate": True, "dimensions": 8}
    """

def embed_answer(answer: dict[str, Any], count: int, model: str, as_base64: bool) -> dict[str, Any] | None:
    """An ``/api/embed`` answer as an OpenAI embeddings ``list`` (usage from
    ``prompt_eval_count``), or None when it does not hold ``count`` vectors.

    ``as_base64``: each vector as little-endian float32 bytes in base64, as OpenAI sends.
    """
