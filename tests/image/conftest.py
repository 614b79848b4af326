"""The image under test and containers of it, run with podman on the host's network.

    def test_x(gw_container):
        box = gw_container(config=text, env={...})   # started, /ready answered
        httpx.get(box.url + "/metrics")

``tests/image/run.sh`` (``make image-test``) builds the image and sets ``GW_IMAGE``; the
test modules here are marked ``image``, which ``make test`` leaves out. Every container
gets the label ``gw-image-test`` and the host's network (``--network host``): gw listens
on a free 127.0.0.1 port (``GW__SERVER__HOST``/``PORT``), reaches the fakes and Redis on
loopback, and no traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

PODMAN = ("podman", "--runtime", "/usr/sbin/runc")
IMAGE = os.environ.get("GW_IMAGE", "")
LABEL = "gw-image-test"
_names = itertools.count()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Unless ``-m`` selects ``image`` (make image-test), these modules are not even imported:
    ``make test`` runs before kubernetes-validate (pyproject's ``image`` extra) is installed."""
    if collection_path.name.startswith("test_") and not re.search(
        r"(?<!not )\bimage\b", config.getoption("markexpr") or ""
    ):
        return True
    return None


def podman(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``podman ARGS`` with this machine's settings (run.sh sets CONTAINERS_CONF); raises with its output."""
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        output = f"{result.stdout}\n{result.stderr}"
        raise AssertionError(f"podman {' '.join(args)}: exit {result.returncode}\n{output}")
    return result


def report(line: str) -> None:
    """A measurement for run.sh's summary (GW_IMAGE_REPORT), printed after the tests."""
    path = os.environ.get("GW_IMAGE_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(line + "\n")


def run_once(
    *args: str,
    entrypoint: str | None = None,
    env: dict[str, str] | None = None,
    mounts: dict[Path, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """A throwaway container of the image (no network): ``podman run --rm``; ``mounts``: host file -> path."""
    options = ["--rm", "--network", "none", "--read-only", "--label", LABEL]
    if entrypoint is not None:
        options += ["--entrypoint", entrypoint]
    options += [f"--env={k}={v}" for k, v in (env or {}).items()]
    options += [f"--volume={host}:{inside}:ro" for host, inside in (mounts or {}).items()]
    return podman("run", *options, IMAGE, *args, check=False)


class Container:
    """``podman run -d`` of the image, read-only, on the host's network."""

    def __init__(
        self, workdir: Path, config: str | None, env: dict[str, str], files: dict[str, str], host: str | None
    ) -> None:
        self.name = f"gw-image-test-{os.getpid()}-{next(_names)}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        mounts: list[str] = []
        if config is not None:
            files = {"config.yaml": config, **files}
        for name, text in files.items():
            path = workdir / f"{self.name}-{name.lstrip('.')}"
            path.write_text(text)
            path.chmod(0o644)
            mounts += ["--volume", f"{path}:/etc/gw/{name}:ro"]
        # host None: the image's own (0.0.0.0, every interface of the host's network)
        env = {**({"GW__SERVER__HOST": host} if host else {}), "GW__SERVER__PORT": str(self.port), **env}
        environment = [f"--env={k}={v}" for k, v in env.items()]
        self.started = time.monotonic()
        podman(
            "run", "--detach", "--name", self.name, "--label", LABEL, "--read-only",
            "--network", "host", "--health-interval", "disable", *mounts, *environment, IMAGE,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 20.0) -> float:
        """Seconds from ``podman run`` to the first 200 on /ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ready", timeout=0.5).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            if not self.running():
                raise AssertionError(f"{self.name} exited {self.exit_code()}:\n{self.logs()}")
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: /ready not 200 within {timeout}s:\n{self.logs()}")

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def running(self) -> bool:
        return self.inspect("{{.State.Running}}") == "true"

    def exit_code(self) -> int:
        return int(self.inspect("{{.State.ExitCode}}"))

    def wait_exit(self, timeout: float = 30.0) -> int:
        podman("wait", self.name, timeout=timeout)
        return self.exit_code()

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


@pytest.fixture(scope="session", autouse=True)
def image() -> str:
    if not IMAGE:
        pytest.fail("GW_IMAGE is not set: run the image tests with `make image-test` (tests/image/run.sh)")
    podman("image", "exists", IMAGE)
    return IMAGE


@pytest.fixture
def gw_container(tmp_path: Path) -> Iterator[Callable[..., Container]]:
    """Start containers of the image (``config``: a config.yaml to mount, ``files``: more files
    for /etc/gw such as ``.env``); each is waited for (/ready) unless ``ready=False``, and
    removed after the test."""
    started: list[Container] = []

    def start(
        config: str | None = None,
        env: dict[str, str] | None = None,
        files: dict[str, str] | None = None,
        host: str | None = "127.0.0.1",
        ready: bool = True,
    ) -> Container:
        box = Container(tmp_path, config, env or {}, files or {}, host)
        started.append(box)
        if ready:
            box.wait_ready()
        return box

    yield start
    for box in started:
        box.remove()
