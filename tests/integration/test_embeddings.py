"""POST /v1/embeddings through gw: OpenAI pass-through and the echo backend."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import APP_KEY, Gateway
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration


@pytest.fixture
def client(gw_std: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw_std.url + "/v1", api_key=APP_KEY, max_retries=0)


def post(gw: Gateway, body: dict) -> httpx.Response:
    return httpx.post(gw.url + "/v1/embeddings", headers={"authorization": f"Bearer {APP_KEY}"}, json=body)


def test_openai_backend_passes_through_with_the_model_rewritten(client, fake: FakeUpstream):
    fake.reset()
    # The SDK asks for base64 and decodes it: both directions of the encoding go through.
    answer = client.embeddings.create(model="gpt", input=["a b", "c"], dimensions=4)
    assert [d.index for d in answer.data] == [0, 1]
    assert [len(d.embedding) for d in answer.data] == [4, 4]
    assert answer.usage.prompt_tokens == 3
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1/embeddings"
    assert sent["body"]["model"] == "gpt-upstream"
    assert sent["body"]["input"] == ["a b", "c"]


def test_azure_backend_gets_its_deployment_embeddings_url(client, fake: FakeUpstream):
    fake.reset()
    client.embeddings.create(model="azure-gpt", input="hello")
    assert fake.requests()[-1]["path"] == "/openai/deployments/my-deployment/embeddings"


def test_echo_embeddings_are_deterministic_unit_vectors(client):
    one = client.embeddings.create(model="echo", input=["hello world", "other"], encoding_format="float")
    two = client.embeddings.create(model="echo", input="hello world")  # base64, decoded by the SDK
    assert len(one.data[0].embedding) == 16
    assert one.data[0].embedding == pytest.approx(two.data[0].embedding, rel=1e-6)
    assert one.data[0].embedding != one.data[1].embedding
    assert sum(x * x for x in one.data[1].embedding) == pytest.approx(1.0, rel=1e-5)
    assert one.usage.prompt_tokens == 3
    sized = client.embeddings.create(model="echo", input="x", dimensions=5, encoding_format="float")
    assert len(sized.data[0].embedding) == 5


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "echo"}, "input"),
        ({"model": "echo", "input": []}, "input"),
        ({"model": "echo", "input": [1, "a"]}, "input"),
        ({"model": "echo", "input": {"text": "a"}}, "input"),
        ({"model": "echo", "input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "echo", "input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a"}, "model"),
    ],
)
def test_invalid_requests_are_400_naming_the_field(gw_std, body, param):
    resp = post(gw_std, body)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param


def test_upstream_error_status_is_mapped(gw_std):
    resp = post(gw_std, {"model": "gpt", "input": "x", "fake": {"status": 422, "message": "bad input here"}})
    assert resp.status_code == 422
    assert "bad input here" in resp.json()["error"]["message"]
