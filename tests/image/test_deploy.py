"""deploy/: the Kubernetes manifests against the API's schemas (kubernetes-validate, offline),
compose.yaml against compose's schema (docker-compose config), the shared config through
``gw check`` in the image, and compose's HAProxy config run for real on loopback in front
of two containers of the image."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.conftest import free_port
from tests.image.conftest import Container, podman, run_once

pytestmark = pytest.mark.image

Start = Callable[..., Container]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted(p for p in (DEPLOY / "kubernetes").glob("*.yaml") if p.name != "kustomization.yaml")
# The oldest Kubernetes these manifests are for (autoscaling/v2 and policy/v1 long GA)
# and the newest whose schemas kubernetes-validate bundles.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
KEY = "gw-image-test-key-0123456789abcdef"
HI = [{"role": "user", "content": "through the load balancer"}]


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def drain_timeout_s() -> float:
    return float(yaml.safe_load((DEPLOY / "config.yaml").read_text())["server"]["drain_timeout_s"])


def seconds(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m)", duration).groups()  # type: ignore[union-attr]
    return float(value) * (60 if unit == "m" else 1)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_every_kubernetes_manifest_is_valid_against_the_api_schemas(manifest: Path, version: str) -> None:
    for doc in documents(manifest):
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    deployment = documents(DEPLOY / "kubernetes" / "deployment.yaml")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


def test_the_kustomization_applies_every_manifest() -> None:
    kustomization = documents(DEPLOY / "kubernetes" / "kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]
    kinds = {doc["kind"] for p in MANIFESTS for doc in documents(p)}
    assert kinds == {
        "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
    }  # fmt: skip


def test_the_configmap_holds_deploy_config_yaml() -> None:
    configmap = documents(DEPLOY / "kubernetes" / "configmap.yaml")[0]
    assert configmap["data"]["config.yaml"] == (DEPLOY / "config.yaml").read_text()


def test_the_deployment_fits_the_image_probes_drain_and_read_only_root() -> None:
    spec = documents(DEPLOY / "kubernetes" / "deployment.yaml")[0]["spec"]["template"]["spec"]
    (gw,) = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] == 10001
    assert gw["securityContext"]["readOnlyRootFilesystem"] is True
    assert gw["ports"][0]["containerPort"] == 8080
    assert gw["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert gw["livenessProbe"]["httpGet"]["path"] == "/health"
    pause = float(gw["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > pause + drain_timeout_s()
    mounts = {m["mountPath"]: m["name"] for m in gw["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "gw's state goes to a writable /tmp"
    assert volumes[mounts["/etc/gw"]]["configMap"]["name"] == "gw-config"
    assert gw["envFrom"] == [{"secretRef": {"name": "gw-keys"}}]
    secret = documents(DEPLOY / "kubernetes" / "secret.yaml")[0]
    assert {"GW_KEY_APP", "GW_REDIS_URL"} <= set(secret["stringData"])


def test_the_shared_config_passes_gw_check_in_the_image_and_refuses_an_empty_key() -> None:
    mounts = {DEPLOY / "config.yaml": "/etc/gw/config.yaml"}
    env = {"GW_KEY_APP": KEY, "GW_REDIS_URL": "redis://redis:6379/0"}
    result = run_once("check", env=env, mounts=mounts)
    assert result.returncode == 0, result.stderr
    assert "auth: 1 key (app)" in result.stdout
    empty = run_once("check", env={**env, "GW_KEY_APP": ""}, mounts=mounts)
    assert empty.returncode == 1 and "auth.keys[0].key: must not be empty" in empty.stderr


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GW_", "OPENAI_", "ANTHROPIC_"))}
    return subprocess.run(
        ["docker-compose", "--file", str(DEPLOY / "compose.yaml"), "config"],
        env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_compose_yaml_passes_composes_schema_with_two_replicas_a_redis_and_the_load_balancer() -> None:
    result = compose_config(GW_KEY_APP=KEY)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"gw-1", "gw-2", "redis", "lb"}
    for name in ("gw-1", "gw-2"):
        gw = services[name]
        assert gw["read_only"] is True and gw["tmpfs"] == ["/tmp"]
        assert gw["environment"]["GW_REDIS_URL"] == "redis://redis:6379/0"
        assert gw["environment"]["GW_KEY_APP"] == KEY
        assert any(str(v).endswith("config.yaml:/etc/gw/config.yaml:ro") for v in gw["volumes"])
        assert seconds(gw["stop_grace_period"]) > drain_timeout_s()
    assert services["lb"]["ports"] == ["127.0.0.1:8080:8080/tcp"], "only the load balancer, on loopback"
    assert any(
        str(v).endswith("haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro")
        for v in services["lb"]["volumes"]
    )
    refused = compose_config()
    assert refused.returncode != 0 and "set GW_KEY_APP" in refused.stderr


class HAProxy:
    """deploy/haproxy.cfg run by Debian's haproxy on loopback: its frontend on a free port,
    its servers gw-1 and gw-2 the given containers (instead of compose's DNS names)."""

    def __init__(self, workdir: Path, replicas: list[Container]) -> None:
        text = (DEPLOY / "haproxy.cfg").read_text()
        port = free_port()
        edits = [("    bind :8080", f"    bind 127.0.0.1:{port}"),
                 (" resolvers compose init-addr last,libc,none", ""),
                 *((f"server gw-{i} gw-{i}:8080", f"server gw-{i} 127.0.0.1:{box.port}")
                   for i, box in enumerate(replicas, 1))]  # fmt: skip
        for old, new in edits:
            assert old in text, f"deploy/haproxy.cfg changed: {old!r} not found"
            text = text.replace(old, new)
        text = re.sub(r"^resolvers compose\n(?:    .*\n)+", "", text, flags=re.MULTILINE)
        config = workdir / "haproxy.cfg"
        config.write_text(text)
        checked = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        self.log_path = workdir / "haproxy.log"
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=out, stderr=out)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.close()
        raise AssertionError(f"haproxy did not answer:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Callable[[list[Container]], HAProxy]]:
    started: list[HAProxy] = []

    def start(replicas: list[Container]) -> HAProxy:
        started.append(HAProxy(tmp_path, replicas))
        return started[-1]

    yield start
    for lb in started:
        lb.close()


def served(box: Container) -> int:
    return box.logs().count('"path":"/v1/chat/completions"')


def test_compose_haproxy_spreads_over_both_replicas_and_a_replica_that_stops_loses_no_request(
    gw_container: Start, haproxy: Callable[[list[Container]], HAProxy], redis_url: str
) -> None:
    config = f"""
server: {{drain_timeout_s: 10}}
auth: {{keys: [{{name: app, key: {KEY}, models: ["*"]}}]}}
providers: {{demo: {{type: echo}}}}
models: {{echo: {{targets: [{{provider: demo, model: echo}}]}}}}
limits: {{backend: redis, redis_url: "{redis_url}"}}
"""
    replicas = [gw_container(config=config), gw_container(config=config)]
    lb = haproxy(replicas)
    with httpx.Client(base_url=lb.url, headers={"authorization": f"Bearer {KEY}"}, timeout=10) as client:
        body = {"model": "echo", "messages": HI}
        for _ in range(10):
            assert client.post("/v1/chat/completions", json=body).status_code == 200
        time.sleep(0.5)  # gw writes its log lines every 0.2 s
        assert served(replicas[0]) > 0 and served(replicas[1]) > 0, "leastconn uses both replicas"

        # Replica 1 stops (drains, exits) while requests keep coming through the load balancer.
        stopper = threading.Thread(
            target=podman, args=("stop", "--time", "20", replicas[0].name), kwargs={"timeout": 30}
        )
        stopper.start()
        statuses = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            statuses.append(client.post("/v1/chat/completions", json=body).status_code)
            time.sleep(0.05)
        stopper.join(timeout=30)
        assert replicas[0].exit_code() == 0
        assert set(statuses) == {200}, statuses
        assert "Server gw/gw-1 is DOWN" in lb.log(), lb.log()
        time.sleep(0.5)
        before = served(replicas[1])
        for _ in range(3):
            assert client.post("/v1/chat/completions", json=body).status_code == 200
        time.sleep(0.5)
        assert served(replicas[1]) == before + 3, "the other replica serves everything"
