"""Model patterns: ``claude-*`` takes any requested name it matches; ``{model}`` in a
target passes the requested name on. Exact names win, then the longest pattern;
key globs apply to the requested name; metrics label the pattern."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAKE_KEY, Gateway, eventually
from tests.fakes.runner import FakeUpstream

pytestmark = pytest.mark.integration

APP = "gw-test-key-patterns-app-0123456789"
GPT_ONLY = "gw-test-key-patterns-gpt-0123456789"
CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


def config(fake: FakeUpstream) -> str:
    return f"""
auth:
  keys:
    - {{name: app, key: {APP}, models: ["*"]}}
    - {{name: gpt-only, key: {GPT_ONLY}, models: ["gpt-*"]}}
providers:
  up: {{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}}}
  demo: {{type: echo}}
models:
  "gpt-*":
    targets: [{{provider: up, model: "{{model}}"}}]
  "gpt-5*":
    targets: [{{provider: up, model: "served-{{model}}"}}]
  gpt-5-exact:
    targets: [{{provider: up, model: exact-upstream}}]
  "claude-*":
    targets: [{{provider: demo, model: echo}}]
"""


@pytest.fixture(scope="module")
def gw(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    path: Path = tmp_path_factory.mktemp("gw-patterns") / "config.yaml"
    path.write_text(config(fake))
    gateway = Gateway(path)
    yield gateway
    gateway.close()


def chat(gw: Gateway, model: str, key: str = APP) -> httpx.Response:
    return httpx.post(
        gw.url + CHAT, json={"model": model, "messages": HI}, headers={"authorization": f"Bearer {key}"}, timeout=10
    )


def upstream_model(fake: FakeUpstream) -> str:
    return fake.requests()[-1]["body"]["model"]


@pytest.mark.parametrize(
    ("requested", "sent"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),  # gpt-*, {model}
        ("gpt-5-codex", "served-gpt-5-codex"),  # gpt-5* is longer than gpt-*
        ("gpt-5-exact", "exact-upstream"),  # the exact name wins over both
    ],
)
def test_a_requested_name_takes_the_exact_model_then_the_longest_pattern(gw, fake, requested, sent):
    resp = chat(gw, requested)
    assert resp.status_code == 200, resp.text
    assert upstream_model(fake) == sent
    assert resp.json()["model"]  # the fake's answer passes through


def test_a_pattern_can_send_every_name_to_one_fixed_model(gw):
    resp = chat(gw, "claude-sonnet-4-5")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-gw-provider"] == "demo"


def test_a_name_no_pattern_matches_is_404(gw):
    resp = chat(gw, "gemini-2.5-pro")
    assert resp.status_code == 404
    assert "'gemini-2.5-pro' does not exist" in resp.json()["error"]["message"]


def test_key_globs_apply_to_the_requested_name(gw):
    assert chat(gw, "gpt-4o", key=GPT_ONLY).status_code == 200
    resp = chat(gw, "claude-haiku-4-5", key=GPT_ONLY)
    assert resp.status_code == 403
    assert "may not use model 'claude-haiku-4-5'" in resp.json()["error"]["message"]


def test_patterns_are_not_listed_as_models(gw):
    resp = httpx.get(gw.url + "/v1/models", headers={"authorization": f"Bearer {APP}"}, timeout=10)
    assert [m["id"] for m in resp.json()["data"]] == ["gpt-5-exact"]


def test_metrics_label_the_pattern_never_the_free_form_name(gw):
    name = "gpt-free-form-name-7f3a"
    assert chat(gw, name).status_code == 200

    def series() -> str | None:
        text = httpx.get(gw.url + "/metrics", timeout=10).text
        return text if 'model="gpt-*"' in text else None

    assert name not in eventually(series, 5, "the pattern's series")


def test_a_name_a_pattern_serves_is_a_model_of_its_own_and_the_pattern_is_not(gw):
    headers = {"authorization": f"Bearer {APP}"}
    one = httpx.get(gw.url + "/v1/models/claude-opus-5-5", headers=headers, timeout=10)
    assert one.status_code == 200 and one.json()["id"] == "claude-opus-5-5"
    assert httpx.get(gw.url + "/v1/models/claude-*", headers=headers, timeout=10).status_code == 404
    gpt_only = {"authorization": f"Bearer {GPT_ONLY}"}
    assert httpx.get(gw.url + "/v1/models/claude-opus-5-5", headers=gpt_only, timeout=10).status_code == 404
