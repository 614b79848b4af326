"""gw's container image, run with podman: what it holds, how it starts, serves, stops, and
shares limits through Redis. ``make image-test`` builds it first (tests/image/run.sh)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from tests.conftest import FAKE_KEY
from tests.fakes.runner import FakeUpstream
from tests.image.conftest import IMAGE, Container, podman, report, run_once

pytestmark = pytest.mark.image

Start = Callable[..., Container]
HI = [{"role": "user", "content": "hello from the image test"}]
KEY = "gw-image-test-key-0123456789abcdef"

# What the Containerfile adds to its BASE: /opt/gw (gw, its dependencies and the redis
# extra; 49 MB when measured, 21.6 MB of it Granian's Rust library) and a user. The
# issue's target, 150 MB for the whole image on Debian's slim Python image, is out of
# reach with these dependencies: that base alone is about 120-130 MB. The test's base
# (Debian's python3 on a debootstrap minbase) is 121 MB.
ADDED_MAX_MB = 55
TOTAL_MAX_MB = 180


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_reasons(chunks: list[ChatCompletionChunk]) -> list[str]:
    return [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]


def test_the_image_holds_the_interpreter_gw_and_its_dependencies_and_no_compiler_pip_or_source() -> None:
    probe = """
import importlib.util, json, os, shutil, sys
import gw, gw._fast, redis
site = "/opt/gw/lib/python3.11/site-packages"
found = []
for root, dirs, files in os.walk("/"):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    found += [os.path.join(root, f) for f in files if f == "conftest.py"]
    # a third-party package's own tests (certifi's) are not gw's
    found += [os.path.join(root, d) for d in dirs if d == "tests" and not root.startswith(site + "/")]
print(json.dumps({
    "compilers": [c for c in ("cc", "gcc", "c++", "g++", "cpp", "clang", "ld", "as", "make") if shutil.which(c)],
    "modules": [m for m in ("pip", "setuptools", "Cython", "wheel") if importlib.util.find_spec(m)],
    "gw": gw.__file__, "fast": gw._fast.select.__file__, "python": sys.version_info[:2],
    "source": [p for p in ("/src", "/tests", "/gw", "/setup.py", "/pyproject.toml") if os.path.exists(p)],
    "found": sorted(set(found)),
}))
"""
    result = run_once("-c", probe, entrypoint="python3")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["compilers"] == [], "no compiler in the runtime image"
    assert seen["modules"] == [], "no pip, setuptools or Cython in the runtime image"
    assert seen["gw"].startswith("/opt/gw/lib/python3.11/site-packages/gw/")
    assert seen["fast"].endswith(".so"), "gw's Cython modules are compiled"
    assert seen["python"] == [3, 11]
    assert seen["source"] == [] and seen["found"] == [], "no source tree, no tests"


def test_the_image_fits_its_size_budget() -> None:
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    base = int(podman("image", "inspect", "--format", "{{.Size}}", os.environ["GW_IMAGE_BASE"]).stdout)
    report(f"image size: {size / 1e6:.1f} MB (base {base / 1e6:.1f} MB + gw {(size - base) / 1e6:.1f} MB)")
    assert size - base <= ADDED_MAX_MB * 1e6
    assert size <= TOTAL_MAX_MB * 1e6


def test_the_image_declares_its_user_port_volume_stop_signal_healthcheck_and_labels() -> None:
    inspected = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert list(config["ExposedPorts"]) == ["8080/tcp"]
    assert list(config["Volumes"]) == ["/tmp"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Entrypoint"] == ["gw"] and config["Cmd"] == ["serve"]
    assert "GW__SERVER__HOST=0.0.0.0" in config["Env"]
    assert "/ready" in " ".join(inspected["Healthcheck"]["Test"])
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == os.environ["GW_IMAGE_VERSION"]
    assert labels["org.opencontainers.image.revision"] == os.environ["GW_IMAGE_REVISION"]
    assert labels["org.opencontainers.image.source"]


def test_with_no_config_it_serves_echo_on_every_interface_to_the_openai_sdk(gw_container: Start) -> None:
    box = gw_container(host=None)  # the image's own GW__SERVER__HOST: 0.0.0.0
    assert '"host":"0.0.0.0"' in box.logs()
    client = openai.OpenAI(base_url=box.url + "/v1", api_key="unused-without-keys", max_retries=0)
    answer = client.chat.completions.create(model="echo", messages=HI)
    assert answer.choices[0].message.content == "hello from the image test"
    stream = client.chat.completions.create(model="echo", messages=HI, stream=True)
    chunks = list(stream)
    assert text_of(chunks) == "hello from the image test"
    assert finish_reasons(chunks) == ["stop"]
    assert httpx.get(box.url + "/ready").json() == {"status": "ready"}
    metrics = httpx.get(box.url + "/metrics").text
    assert "gw_requests_total{" in metrics and 'model="echo"' in metrics
    # The image's HEALTHCHECK (python3 asking /ready), run once by hand: no systemd here for its timer.
    assert podman("healthcheck", "run", box.name, check=False).returncode == 0


def test_it_starts_and_answers_ready_within_two_seconds(gw_container: Start) -> None:
    times = []
    for _ in range(3):
        box = gw_container(ready=False)
        times.append(box.wait_ready())
        box.remove()
    report("podman run to the first 200 on /ready: " + ", ".join(f"{t:.2f} s" for t in times))
    assert min(times) <= 2.0, times


def test_gw_runs_as_a_non_root_user_on_a_read_only_root_with_its_state_in_tmp(gw_container: Start) -> None:
    box = gw_container()
    pid = int(box.inspect("{{.State.Pid}}"))
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert children, "Granian's worker runs under gw's supervisor"
    for process in (pid, *map(int, children)):
        status = Path(f"/proc/{process}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == ["10001"] * 4, (process, uids)  # real, effective, saved, filesystem
    probe = """
import glob, os
try:
    open("/opt/gw/written", "w")
except OSError as exc:
    print(exc.errno == 30)  # EROFS
state = glob.glob("/tmp/gw-*")
print(len(state) == 1 and os.stat(state[0]).st_uid == 10001 and sorted(os.listdir(state[0])))
"""
    result = podman("exec", box.name, "python3", "-c", probe)
    read_only, state = result.stdout.split("\n", 1)
    assert read_only == "True"
    assert "limits" in state and "metrics" in state


def test_a_paid_provider_without_keys_refuses_to_start_on_every_interface_unless_allow_anonymous(
    gw_container: Start,
) -> None:
    # The built-in config's openai provider turns on with OPENAI_API_KEY (nothing is sent to it here).
    paid = {"OPENAI_API_KEY": "sk-image-test-not-a-real-key-0123456789"}
    refused = gw_container(host=None, env=paid, ready=False)
    assert refused.wait_exit(timeout=20) == 1
    logs = refused.logs()
    assert "allow_anonymous" in logs and "sk-image-test" not in logs
    allowed = gw_container(host=None, env={**paid, "GW__AUTH__ALLOW_ANONYMOUS": "true"})
    assert httpx.get(allowed.url + "/ready").status_code == 200


def test_a_mounted_config_its_dotenv_and_gw_overrides_configure_the_container(gw_container: Start) -> None:
    config = """
auth:
  keys: [{name: app, key: "${GW_KEY_APP}", models: ["*"]}]
providers: {demo: {type: echo}}
models: {echo: {targets: [{provider: demo, model: echo}]}}
"""
    box = gw_container(
        config=config,
        files={".env": f"GW_KEY_APP={KEY}\n"},
        env={"GW__SERVER__MAX_BODY_BYTES": "4096"},
    )
    body = {"model": "echo", "messages": HI}
    assert httpx.post(box.url + "/v1/chat/completions", json=body).status_code == 401
    auth = {"authorization": f"Bearer {KEY}"}
    assert httpx.post(box.url + "/v1/chat/completions", json=body, headers=auth).status_code == 200
    big = {"model": "echo", "messages": [{"role": "user", "content": "x" * 5000}]}
    assert httpx.post(box.url + "/v1/chat/completions", json=big, headers=auth).status_code == 413


def test_podman_stop_during_a_long_stream_lets_it_finish_and_the_container_exits_0(
    gw_container: Start, fake: FakeUpstream
) -> None:
    # echo answers a stream in one write, at once: the long stream comes from an
    # OpenAI-type upstream on loopback (the tests' fake), 40 chunks 0.1 s apart.
    config = f"""
server: {{drain_timeout_s: 20}}
auth: {{keys: [{{name: app, key: {KEY}, models: ["*"]}}]}}
providers: {{up: {{type: openai, base_url: "{fake.openai_base_url}", api_key: {FAKE_KEY}}}}}
models: {{slow: {{targets: [{{provider: up, model: upstream-model}}]}}}}
"""
    box = gw_container(config=config)
    client = openai.OpenAI(base_url=box.url + "/v1", api_key=KEY, max_retries=0, timeout=30)
    stream = client.chat.completions.create(
        model="slow", messages=HI, stream=True, extra_body={"fake": {"chunks": 40, "chunk_delay_s": 0.1}}
    )
    chunks = [next(stream)]
    stopped: dict[str, float | int] = {}

    def stop() -> None:
        began = time.monotonic()
        podman("stop", "--time", "30", box.name, timeout=40)
        stopped["seconds"] = time.monotonic() - began

    stopper = threading.Thread(target=stop)
    stopper.start()
    ready = 200
    deadline = time.monotonic() + 3
    while ready == 200 and time.monotonic() < deadline:
        ready = httpx.get(box.url + "/ready").status_code
        time.sleep(0.05)
    assert ready == 503, "draining: /ready answers 503"
    chunks += list(stream)
    stopper.join(timeout=40)
    assert text_of(chunks).split() == [f"w{i}" for i in range(40)]
    assert finish_reasons(chunks) == ["stop"]
    assert box.exit_code() == 0
    assert stopped["seconds"] < 20, "exits once the stream is done, within the drain timeout"
    report(f"podman stop mid-stream: the stream finished, exit 0 after {stopped['seconds']:.1f} s")
    logs = box.logs()
    assert '"event":"drained"' in logs and '"event":"stopped"' in logs


def test_two_containers_sharing_a_redis_enforce_one_key_rate_limit_together(
    gw_container: Start, redis_url: str
) -> None:
    config = f"""
auth: {{keys: [{{name: shared, key: {KEY}, models: ["*"], rate_limit: {{rpm: 5}}}}]}}
providers: {{demo: {{type: echo}}}}
models: {{echo: {{targets: [{{provider: demo, model: echo}}]}}}}
limits: {{backend: redis, redis_url: "{redis_url}"}}
"""
    replicas = [gw_container(config=config), gw_container(config=config)]
    body = {"model": "echo", "messages": HI}
    auth = {"authorization": f"Bearer {KEY}"}
    statuses: dict[str, list[int]] = {box.name: [] for box in replicas}
    for i in range(12):  # alternating, in about a second: the bucket (5, one more every 12 s) does not refill
        box = replicas[i % 2]
        answer = httpx.post(box.url + "/v1/chat/completions", json=body, headers=auth, timeout=10)
        statuses[box.name].append(answer.status_code)
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
    every = [s for box in replicas for s in statuses[box.name]]
    assert every.count(200) == 5 and every.count(429) == 7, statuses
    for box in replicas:
        assert 200 in statuses[box.name] and 429 in statuses[box.name], statuses
