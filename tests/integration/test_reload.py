"""Hot reload (SPEC §3, §4): SIGHUP to `gw serve` and POST /admin/reload compile
the config file again and swap the tables in; an invalid file keeps the old ones.

Each test starts a gateway, rewrites its config file (``gw.config``), then asks
for a reload. Workers pick a SIGHUP up within ~0.5 s: the tests poll for its
effect. Streams in flight finish on the tables they started with.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import FAKE_KEY, Gateway, eventually
from tests.fakes.runner import FakeUpstream
from tests.integration.sse import sse_data

pytestmark = pytest.mark.integration


CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]
APP = "gw-reload-key-app-0123456789abcdef"
NEW_APP = "gw-reload-key-new-0123456789abcdef"
ADMIN = "gw-reload-admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def fake2() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key=FAKE_KEY) as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstream, fake2: FakeUpstream) -> Iterator[None]:
    fake.reset()
    fake2.reset()
    yield


def config(
    fake: FakeUpstream,
    models: dict[str, str],
    *,
    keys: tuple[str, ...] = (APP,),
    admin: str | None = ADMIN,
    providers: dict[str, str] | None = None,
) -> str:
    """A config with providers ``demo`` (echo) and ``up`` (the fake) unless given; models as given."""
    if providers is None:
        providers = {
            "demo": "{type: echo}",
            "up": f"{{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}}}",
        }
    text = "auth:\n  keys:\n"
    for i, key in enumerate(keys):
        text += f'    - {{name: app{i}, key: {key}, models: ["*"]}}\n'
    if admin is not None:
        text += f"  admin_key: {admin}\n"
    text += "providers:\n" + "".join(f"  {name}: {spec}\n" for name, spec in providers.items())
    text += "models:\n" + "".join(f"  {name}: {spec}\n" for name, spec in models.items())
    return text


ECHO = "{targets: [{provider: demo, model: echo}]}"
GPT = "{targets: [{provider: up, model: gpt-upstream}]}"


# ---------------------------------------------------------------- helpers


def chat(gw: Gateway, model: str, key: str = APP, **body: Any) -> httpx.Response:
    return httpx.post(
        gw.url + CHAT,
        json={"model": model, "messages": HI, **body},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def model_ids(gw: Gateway, key: str = APP) -> set[str]:
    resp = httpx.get(gw.url + "/v1/models", headers={"authorization": f"Bearer {key}"}, timeout=5)
    assert resp.status_code == 200, resp.text
    return {m["id"] for m in resp.json()["data"]}


def reload(gw: Gateway, key: str | None = ADMIN, header: str = "authorization") -> httpx.Response:
    headers = {}
    if key is not None:
        headers[header] = f"Bearer {key}" if header == "authorization" else key
    return httpx.post(gw.url + "/admin/reload", headers=headers, timeout=10)


def sighup(gw: Gateway) -> None:
    gw.process.send_signal(signal.SIGHUP)


def rewrite(gw: Gateway, text: str) -> None:
    gw.config.write_text(text)


def log_lines(gw: Gateway) -> list[dict[str, Any]]:
    lines = []
    for line in gw.output().splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines


def events(gw: Gateway, name: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(gw) if line.get("event") == name]


def reload_handled(gw: Gateway) -> None:
    """Wait until gw logged something about the reload, then for the workers' next poll (0.5 s)."""
    eventually(
        lambda: [line for line in log_lines(gw) if "reload" in str(line.get("event", ""))], 3, "a reload log line"
    )
    time.sleep(0.7)


def reload_failed_logged(gw: Gateway, mentions: str | None = None) -> dict[str, Any]:
    """The "reload failed..." log line (polled: logs are flushed every 0.2 s), with its problems."""

    def failed() -> list[dict[str, Any]]:
        return [line for line in log_lines(gw) if str(line.get("event", "")).startswith("reload failed")]

    try:
        found = eventually(failed, 3, 'a "reload failed" log line')
    except AssertionError as exc:
        said = [line.get("event") for line in log_lines(gw) if "reload" in str(line.get("event", ""))]
        raise AssertionError(f"{exc}; reload events logged: {said}") from None
    line = found[-1]
    problems = line.get("problems")
    assert isinstance(problems, list) and problems and all(isinstance(p, str) and p for p in problems), line
    if mentions is not None:
        assert any(mentions in p for p in problems), problems
    return line


def answers_like(resp: httpx.Response, provider: str, content: str) -> None:
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-gw-provider"] == provider
    assert resp.json()["choices"][0]["message"]["content"] == content


def gpt_attempts(fake: FakeUpstream) -> int:
    return sum(1 for r in fake.requests() if r["path"] == CHAT)


def invalid_config(kind: str, fake: FakeUpstream) -> tuple[str, str | None]:
    """(config text, a word one of the problems must mention)."""
    if kind == "yaml-error":
        return "providers:\n  demo: {type: echo\nmodels: [unclosed\n", None
    return config(fake, {"echo": ECHO, "gpt": GPT, "bogus-model": "{targets: [{provider: demo, model: e}], bogus: 1}"}), "bogus"


# ---------------------------------------------------------------- SIGHUP


def test_sighup_swaps_in_the_new_models(gateway, fake):
    gw = gateway(config(fake, {"echo": ECHO, "gpt": GPT}))
    assert model_ids(gw) == {"echo", "gpt"}
    answers_like(chat(gw, "gpt"), "up", "fake: hi")

    rewrite(gw, config(fake, {"echo": ECHO, "fresh": ECHO}))
    sighup(gw)
    eventually(lambda: "fresh" in model_ids(gw), 5, "the new model listed after SIGHUP")
    assert model_ids(gw) == {"echo", "fresh"}
    answers_like(chat(gw, "fresh"), "demo", "hi")
    resp = chat(gw, "gpt")
    assert resp.status_code == 404, resp.text
    assert "gpt" in resp.json()["error"]["message"]
    eventually(lambda: events(gw, "config reloaded"), 3, 'a "config reloaded" log line')
    assert gw.process.poll() is None


@pytest.mark.parametrize("kind", ["yaml-error", "unknown-key"])
def test_sighup_with_an_invalid_config_keeps_the_old_tables_and_logs_why(gateway, fake, kind):
    gw = gateway(config(fake, {"echo": ECHO, "gpt": GPT}))
    text, mentions = invalid_config(kind, fake)
    rewrite(gw, text)
    sighup(gw)
    reload_handled(gw)
    assert gw.process.poll() is None, "an invalid reload does not stop gw"
    assert model_ids(gw) == {"echo", "gpt"}
    answers_like(chat(gw, "gpt"), "up", "fake: hi")
    answers_like(chat(gw, "echo"), "demo", "hi")
    assert not events(gw, "config reloaded")
    reload_failed_logged(gw, mentions)

    # Fixed, the next SIGHUP goes through.
    rewrite(gw, config(fake, {"echo": ECHO}))
    sighup(gw)
    eventually(lambda: model_ids(gw) == {"echo"}, 5, "the fixed config served after SIGHUP")


# ---------------------------------------------------------------- POST /admin/reload


def test_admin_reload_answers_a_summary_and_new_requests_use_the_new_tables(gateway, fake, fake2):
    before = {
        "demo": "{type: echo}",
        "up": f"{{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}}}",
        "gone": f"{{type: openai, base_url: {fake.openai_base_url}, api_key: {FAKE_KEY}}}",
    }
    gw = gateway(config(fake, {"echo": ECHO, "gpt": GPT, "old": "{targets: [{provider: gone, model: g}]}"},
                        providers=before))
    answers_like(chat(gw, "gpt"), "up", "fake: hi")
    assert gpt_attempts(fake) == 1

    after = {
        "demo": "{type: echo}",
        "up": f"{{type: openai, base_url: {fake2.openai_base_url}, api_key: {FAKE_KEY}}}",  # changed
        "extra": "{type: echo}",  # added; gone: removed
    }
    rewrite(gw, config(fake, {"echo": ECHO, "gpt": GPT, "more": "{targets: [{provider: extra, model: e}]}"},
                       providers=after))
    resp = reload(gw)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "reloaded"
    assert sorted(body["models"]) == ["echo", "gpt", "more"]
    assert {k: sorted(v) for k, v in body["providers"].items()} == {
        "added": ["extra"], "removed": ["gone"], "changed": ["up"], "kept": ["demo"],
    }  # fmt: skip

    # New requests use the new tables at once (one worker: the one that reloaded).
    answers_like(chat(gw, "gpt"), "up", "fake: hi")
    assert (gpt_attempts(fake), gpt_attempts(fake2)) == (1, 1), "gpt now goes to the changed base_url"
    answers_like(chat(gw, "more"), "extra", "hi")
    assert chat(gw, "old").status_code == 404
    assert model_ids(gw) == {"echo", "gpt", "more"}
    eventually(lambda: events(gw, "config reloaded"), 3, 'a "config reloaded" log line')


def test_admin_reload_needs_the_admin_key(gateway, fake):
    gw = gateway(config(fake, {"echo": ECHO}))
    for key in (None, "gw-reload-wrong-key-0123456789", APP):
        resp = reload(gw, key)
        assert resp.status_code == 401, (key, resp.text)
        assert resp.json()["error"]["message"]
        assert ADMIN not in resp.text
    assert reload(gw, ADMIN, header="x-api-key").status_code == 200
    assert reload(gw, ADMIN).status_code == 200


def test_admin_reload_is_forbidden_when_no_admin_key_is_configured(gateway, fake):
    gw = gateway(config(fake, {"echo": ECHO}, admin=None))
    for key in (None, APP, ADMIN):
        resp = reload(gw, key)
        assert resp.status_code == 403, (key, resp.text)
        assert resp.json()["error"]["message"]
    rewrite(gw, config(fake, {"echo": ECHO, "fresh": ECHO}, admin=None))
    reload(gw, APP)
    assert model_ids(gw) == {"echo"}, "a refused reload changed nothing"


@pytest.mark.parametrize("kind", ["yaml-error", "unknown-key"])
def test_admin_reload_of_an_invalid_config_is_a_400_listing_the_problems(gateway, fake, kind):
    gw = gateway(config(fake, {"echo": ECHO, "gpt": GPT}))
    text, mentions = invalid_config(kind, fake)
    rewrite(gw, text)
    resp = reload(gw)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    error = body["error"]
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str) and error["message"]
    assert {"message", "type", "param", "code"} <= set(error)
    problems = body["problems"]
    assert isinstance(problems, list) and problems and all(isinstance(p, str) and p for p in problems)
    if mentions is not None:
        assert any(mentions in p for p in problems), problems
    assert FAKE_KEY not in resp.text and ADMIN not in resp.text
    reload_failed_logged(gw, mentions)

    assert model_ids(gw) == {"echo", "gpt"}
    answers_like(chat(gw, "gpt"), "up", "fake: hi")


def test_a_reload_with_a_new_key_list_takes_effect(gateway, fake):
    gw = gateway(config(fake, {"echo": ECHO}))
    assert chat(gw, "echo", key=APP).status_code == 200
    assert chat(gw, "echo", key=NEW_APP).status_code == 401
    rewrite(gw, config(fake, {"echo": ECHO}, keys=(NEW_APP,)))
    assert reload(gw).status_code == 200
    assert chat(gw, "echo", key=APP).status_code == 401
    answers_like(chat(gw, "echo", key=NEW_APP), "demo", "hi")


# ---------------------------------------------------------------- streams in flight


CHUNKS = 20  # x 0.1 s: the stream outlasts the reload


def slow_stream(gw: Gateway, out: dict[str, Any]) -> None:
    body = {"model": "gpt", "stream": True, "messages": HI, "fake": {"chunks": CHUNKS, "chunk_delay_s": 0.1}}
    try:
        with httpx.stream("POST", gw.url + CHAT, json=body, headers={"authorization": f"Bearer {APP}"},
                          timeout=30) as resp:  # fmt: skip
            out["status"] = resp.status_code
            text = ""
            for part in resp.iter_text():
                text += part
                out["started"] = True
            out["text"] = text
    except httpx.HTTPError as exc:
        out["error"] = repr(exc)


def start_stream(gw: Gateway) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}
    reader = threading.Thread(target=slow_stream, args=(gw, out))
    reader.start()
    eventually(lambda: out.get("started") or out.get("error"), 5, "the stream started")
    return reader, out


def assert_complete(out: dict[str, Any]) -> None:
    assert "error" not in out, out["error"]
    assert out["status"] == 200
    events_ = sse_data(out["text"])
    assert events_[-1] == "[DONE]", out["text"][-300:]
    chunks = [json.loads(e) for e in events_[:-1]]
    assert not any("error" in c for c in chunks), out["text"][-300:]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert content == " ".join(f"w{i}" for i in range(CHUNKS))
    assert sum(1 for c in chunks if c.get("choices") and c["choices"][0].get("finish_reason")) == 1


@pytest.mark.parametrize("change", ["model-and-provider-removed", "base-url-changed"])
def test_a_stream_in_flight_survives_a_valid_reload(gateway, fake, fake2, change):
    gw = gateway(config(fake, {"echo": ECHO, "gpt": GPT}))
    reader, out = start_stream(gw)
    if change == "model-and-provider-removed":
        rewrite(gw, config(fake, {"echo": ECHO}, providers={"demo": "{type: echo}"}))
        sighup(gw)
        took_effect = lambda: chat(gw, "gpt").status_code == 404  # noqa: E731
    else:
        moved = {
            "demo": "{type: echo}",
            "up": f"{{type: openai, base_url: {fake2.openai_base_url}, api_key: {FAKE_KEY}}}",
        }
        rewrite(gw, config(fake, {"echo": ECHO, "gpt": GPT}, providers=moved))
        sighup(gw)
        took_effect = lambda: chat(gw, "gpt").status_code == 200 and gpt_attempts(fake2) > 0  # noqa: E731
    eventually(took_effect, 5, "the reload took effect")
    assert reader.is_alive(), "the reload took effect while the stream was still running"
    reader.join(timeout=15)
    assert_complete(out)


def test_a_stream_in_flight_survives_an_invalid_reload(gateway, fake):
    gw = gateway(config(fake, {"echo": ECHO, "gpt": GPT}))
    reader, out = start_stream(gw)
    rewrite(gw, invalid_config("yaml-error", fake)[0])
    sighup(gw)
    reload_handled(gw)
    assert reader.is_alive()
    reader.join(timeout=15)
    assert_complete(out)
    answers_like(chat(gw, "gpt"), "up", "fake: hi")
    reload_failed_logged(gw)


# ---------------------------------------------------------------- several workers


def reloaded_pids(gw: Gateway) -> set[int]:
    """The workers that logged "config reloaded" (each within ~0.5 s of the signal)."""
    return {line["pid"] for line in log_lines(gw) if line.get("event") == "config reloaded" and "pid" in line}


def every_worker_serves(gw: Gateway) -> None:
    """Requests over separate connections, until both workers have answered some: all the new config's."""
    pids: set[int] = set()
    for round_ in range(4):
        ids = [f"after-reload-{round_}-{i}" for i in range(30)]
        answers: dict[str, httpx.Response] = {}

        def send(chunk: list[str], answers: dict[str, httpx.Response] = answers) -> None:
            for rid in chunk:
                # a new connection each time, so the kernel spreads them over both workers
                answers[rid] = httpx.post(
                    gw.url + CHAT, json={"model": "who", "messages": HI},
                    headers={"authorization": f"Bearer {APP}", "x-request-id": rid}, timeout=10,
                )  # fmt: skip

        threads = [threading.Thread(target=send, args=(ids[i::6],)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        old = [rid for rid, r in answers.items() if r.status_code != 200 or r.headers.get("x-gw-provider") != "up"]
        assert not old, f"{len(old)} of 30 answered by the old config: {answers[old[0]].text}"
        wanted = set(ids)

        def logged(wanted: set[str] = wanted) -> set[int]:
            return {line["worker"] for line in events(gw, "request") if line.get("request_id") in wanted}

        deadline = time.monotonic() + 2
        while len(logged_pids := logged()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids |= logged_pids
        if len(pids) >= 2:
            return
    raise AssertionError(f"only worker(s) {pids} answered: cannot tell whether every worker reloaded")


def two_worker_config(fake: FakeUpstream, new: bool) -> str:
    # old: "who" is the echo provider ("hi"); new: the fake ("fake: hi", x-gw-provider: up)
    return config(fake, {"echo": ECHO, "who": GPT if new else "{targets: [{provider: demo, model: echo}]}"})


def test_with_two_workers_one_sighup_reloads_every_worker(gateway, fake):
    gw = gateway(two_worker_config(fake, new=False), workers=2)
    answers_like(chat(gw, "who"), "demo", "hi")
    rewrite(gw, two_worker_config(fake, new=True))
    sighup(gw)
    eventually(lambda: chat(gw, "who").headers.get("x-gw-provider") == "up", 5, "the new config served")
    eventually(lambda: len(reloaded_pids(gw)) == 2, 5, "each worker logged its reload")
    every_worker_serves(gw)


def test_with_two_workers_one_admin_reload_reloads_every_worker(gateway, fake):
    gw = gateway(two_worker_config(fake, new=False), workers=2)
    answers_like(chat(gw, "who"), "demo", "hi")
    rewrite(gw, two_worker_config(fake, new=True))
    resp = reload(gw)
    assert resp.status_code == 200, resp.text
    eventually(lambda: len(reloaded_pids(gw)) == 2, 15, "the other worker logged its reload")  # a poll bound, not a wait
    every_worker_serves(gw)
