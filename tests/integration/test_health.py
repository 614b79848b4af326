"""GET /health, /ready and /health/detailed (guarded by the admin key when one is set)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration

ADMIN = "gw-admin-key-0123456789abcdef"
CONFIG = f"""
auth:
  keys: [{{name: app, key: gw-app-key-0123456789abcdef}}]
  admin_key: {ADMIN}
providers:
  demo: {{type: echo}}
  unused: {{type: openai, base_url: "http://127.0.0.1:9/v1", api_key: ""}}
models:
  echo: {{targets: [{{provider: demo, model: echo}}]}}
"""


def test_liveness_and_readiness_need_no_key(gateway) -> None:
    gw = gateway(CONFIG)
    assert httpx.get(gw.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(gw.url + "/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_detailed_health_needs_the_admin_key_and_lists_providers_and_models(gateway) -> None:
    gw = gateway(CONFIG)
    assert httpx.get(gw.url + "/health/detailed").status_code == 401
    assert httpx.get(gw.url + "/health/detailed", headers={"authorization": "Bearer gw-app-key-0123456789abcdef"}).status_code == 401
    for headers in ({"authorization": f"Bearer {ADMIN}"}, {"x-api-key": ADMIN}):
        detail = httpx.get(gw.url + "/health/detailed", headers=headers)
        assert detail.status_code == 200
        body = detail.json()
        assert body["providers"]["demo"]["enabled"] is True and body["providers"]["demo"]["up"] is True
        assert body["providers"]["unused"] == {
            "type": "openai", "enabled": False, "up": False, "circuit": "closed", "failures": 0,
            "error_rate": None, "latency_ms": None, "last_error": "api_key is empty",
        }
        assert body["models"]["echo"]["targets"] == [
            {"provider": "demo", "model": "echo", "weight": 1, "circuit": "closed", "failures": 0, "retry_in_s": 0.0}
        ]
        assert ADMIN not in detail.text
