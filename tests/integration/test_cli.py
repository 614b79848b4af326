"""`gw serve` and `gw check` on a first run: safe defaults, warnings once, a model
whose provider is off, the installed gw served from its source tree, a port in use,
and a supervisor that stays small."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, eventually, free_port

pytestmark = pytest.mark.integration

ECHO = """
providers:
  demo: {type: echo}
models:
  echo: {targets: [{provider: demo, model: echo}]}
"""

# A provider with credentials and no auth key.
PAID = """
providers:
  paid: {type: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-paid-0123456789abcdef}
  demo: {type: echo}
models:
  gpt: {targets: [{provider: paid, model: gpt}]}
  echo: {targets: [{provider: demo, model: echo}]}
"""


def run_gw(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gw.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gw exited with {process.returncode}"
        try:
            if httpx.get(url + "/ready", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready after {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- safe defaults -------------------------------------------------------------


def test_the_default_config_listens_on_loopback(tmp_path: Path) -> None:
    result = run_gw("check", "--config", str(REPO / "config.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "server: 127.0.0.1:8080, 1 worker" in result.stdout


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--host", "0.0.0.0"), {}), ((), {"GW__SERVER__HOST": "0.0.0.0"})],
    ids=["flag", "variable"],
)
def test_serve_refuses_a_provider_key_open_to_the_network_and_says_how_out(tmp_path: Path, args, env) -> None:
    (tmp_path / "paid.yaml").write_text(PAID)
    result = run_gw("serve", "--config", "paid.yaml", "--port", str(free_port()), *args, cwd=tmp_path, env=env)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("paid.yaml: server.host: gw would listen on 0.0.0.0 without auth keys")
    assert "provider 'paid' has an api_key" in line
    for way_out in ("auth.keys", "auth.allow_anonymous: true", "listen on 127.0.0.1"):
        assert way_out in line
    assert "sk-paid" not in result.stdout + result.stderr


def test_check_refuses_it_too_and_allow_anonymous_accepts_it(tmp_path: Path) -> None:
    (tmp_path / "paid.yaml").write_text(PAID + "server: {host: 0.0.0.0}\n")
    assert run_gw("check", "--config", "paid.yaml", cwd=tmp_path).returncode == 1
    (tmp_path / "open.yaml").write_text(PAID + "server: {host: 0.0.0.0}\nauth: {allow_anonymous: true}\n")
    result = run_gw("check", "--config", "open.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "server: 0.0.0.0:8080" in result.stdout


# --- config warnings, once -----------------------------------------------------

# A provider whose key comes from a variable that is not set.
OFF = """
providers:
  demo: {type: echo}
  openai: {type: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${H1_TEST_KEY:-}"}
models:
  gpt: {targets: [{provider: openai, model: gpt-4o}]}
  echo: {targets: [{provider: demo, model: echo}]}
"""
WARNING = "providers.openai.api_key is empty (H1_TEST_KEY is not set): provider disabled"


def test_config_warnings_are_printed_once_by_gw_serve_not_again_by_each_worker(gateway) -> None:
    gw = gateway(OFF, workers=2, env={"H1_TEST_KEY": ""})
    eventually(lambda: gw.output().count('"worker started"') == 2, 10, "both workers started")
    output = gw.output()
    assert output.count("providers.openai.api_key is empty (H1_TEST_KEY is empty): provider disabled") == 1
    assert output.count("model 'gpt' dropped") == 1


def test_a_reload_prints_only_a_changed_list_of_warnings_and_only_once(gateway) -> None:
    gw = gateway(OFF, workers=2)
    eventually(lambda: gw.output().count('"worker started"') == 2, 10, "both workers started")
    assert gw.output().count(WARNING) == 1
    gw.process.send_signal(signal.SIGHUP)
    eventually(lambda: gw.output().count('"config reloaded"') == 2, 10, "both workers reloaded")
    assert gw.output().count(WARNING) == 1
    gw.config.write_text(OFF.replace("  gpt: {", "  gpt2: {targets: [{provider: openai, model: b}]}\n  gpt: {"))
    gw.process.send_signal(signal.SIGHUP)
    eventually(lambda: gw.output().count('"config reloaded"') == 4, 10, "both workers reloaded again")
    output = gw.output()  # the supervisor printed before it told the workers
    assert output.count(WARNING) == 2
    assert output.count("model 'gpt2' dropped") == 1


def test_plain_granian_still_prints_the_warnings(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(OFF)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "GW_CONFIG": str(tmp_path / "config.yaml")}
    env.pop("H1_TEST_KEY", None)
    out = tmp_path / "out"
    with open(out, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
             "gw.app:app"],
            cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_ready(f"http://127.0.0.1:{port}", process)
        finally:
            stop(process)
    assert out.read_text().count(WARNING) == 1


# --- a configured model whose provider is off ----------------------------------


def test_a_configured_model_whose_provider_is_off_answers_404_saying_why(gateway) -> None:
    gw = gateway(REPO.joinpath("config.yaml").read_text(), env={"OPENAI_API_KEY": ""})
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(gw.url + "/v1/chat/completions", json=body)
    assert r.status_code == 404
    assert r.json()["error"]["message"] == (
        "model 'gpt-4o' is configured but its provider 'openai' is disabled: OPENAI_API_KEY is empty"
    )
    # a name only a pattern of an off provider matches is told the same
    r = httpx.post(gw.url + "/v1/chat/completions", json={**body, "model": "gpt-5-nobody"})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == (
        "model 'gpt-5-nobody' is configured but its provider 'openai' is disabled: OPENAI_API_KEY is empty"
    )
    r = httpx.post(gw.url + "/v1/chat/completions", json={**body, "model": "mistral-nobody"})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "model 'mistral-nobody' does not exist"


def test_a_key_not_covering_the_model_is_not_told_it_exists(gateway) -> None:
    config = OFF + "auth:\n  keys: [{name: e, key: gw-echo-only-0123456789, models: [ech*]}]\n"
    gw = gateway(config)
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(gw.url + "/v1/chat/completions", json=body, headers={"authorization": "Bearer gw-echo-only-0123456789"})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "model 'gpt' does not exist"


# --- the installed gw, run from a source tree ------------------------------------


def _source_tree(path: Path) -> Path:
    """A copy of gw's source tree, not compiled."""
    shutil.copytree(REPO / "gw", path / "gw", ignore=shutil.ignore_patterns("*.so", "*.c", "*.html", "__pycache__"))
    shutil.copy(REPO / "setup.py", path / "setup.py")
    shutil.copy(REPO / "pyproject.toml", path / "pyproject.toml")
    return path


def test_the_installed_gw_serves_from_its_uncompiled_source_tree(tmp_path: Path) -> None:
    # "installed": a compiled copy of gw on PYTHONPATH; the working directory: a source
    # tree that would shadow it (as after `pip install .` in a clone), with the config
    # given relative to it and a variable the config needs in its .env.
    site = tmp_path / "site"
    shutil.copytree(REPO / "gw", site / "gw", ignore=shutil.ignore_patterns("*.c", "*.html", "__pycache__"))
    tree = _source_tree(tmp_path / "tree")
    (tree / "config.yaml").write_text(ECHO.replace("{type: echo}", "{type: echo, enabled: '${H1_DEMO_ON}'}"))
    (tree / ".env").write_text("H1_DEMO_ON=true\n")
    script = tmp_path / "bin" / "gw"  # what `pip install` writes: its own directory first on sys.path
    script.parent.mkdir()
    script.write_text("import sys\nfrom gw.cli import main\nsys.exit(main())\n")
    port = free_port()
    out = tmp_path / "out"
    with open(out, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(script), "serve", "--config", "config.yaml", "--port", str(port)],
            cwd=tree, env={**os.environ, "PYTHONPATH": str(site)}, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_ready(f"http://127.0.0.1:{port}", process)
            r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                           json={"model": "echo", "messages": [{"role": "user", "content": "a b"}]})
            assert r.status_code == 200
        finally:
            stop(process)
    text = out.read_text()
    assert "Traceback" not in text and "not compiled" not in text
    assert f'"config":"{tree / "config.yaml"}"' in text  # the worker's config: the tree's, by absolute path


def test_an_uncompiled_source_tree_on_pythonpath_says_so_once_and_exits_1(tmp_path: Path) -> None:
    tree = _source_tree(tmp_path / "tree")
    (tmp_path / "config.yaml").write_text(ECHO)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gw.cli", "serve", "--config", "config.yaml", "--port", str(free_port())],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert time.monotonic() - started < 20
    [line] = (result.stdout + result.stderr).splitlines()
    assert line.startswith(f"gw runs from its source tree {tree}, whose Cython modules are not compiled")
    assert "make build" in line and "pip install ." in line


# --- a port in use ---------------------------------------------------------------


def test_a_port_in_use_is_one_line_naming_it_and_how_to_change_it(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(ECHO)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_gw("serve", "--config", "config.yaml", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert f"port {port} is already in use on 127.0.0.1" in line
    assert "--port" in line and "GW__SERVER__PORT" in line


# --- state shared by the workers ------------------------------------------------------


def test_gw_serve_makes_the_limits_table_its_workers_share_and_removes_it_after(gateway) -> None:
    from gw._fast.counters import Table

    gw = gateway(ECHO, workers=2)
    # The supervisor's environment (the workers inherit it) names the table, made already.
    environ = Path(f"/proc/{gw.process.pid}/environ").read_bytes().split(b"\0")
    (path,) = [item.split(b"=", 1)[1].decode() for item in environ if item.startswith(b"GW_LIMITS_FILE=")]
    table = Table(path)
    assert table.slots == 65536
    table.close()
    gw.close()
    assert not Path(path).exists()


# --- a small supervisor ------------------------------------------------------------


def test_the_supervisor_imports_neither_the_app_nor_the_clients_nor_prometheus(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(ECHO)
    port = free_port()
    err = tmp_path / "err"
    with open(err, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "gw.cli", "serve", "--config", "config.yaml",
             "--port", str(port)],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
        try:
            wait_ready(f"http://127.0.0.1:{port}", process)
        finally:
            stop(process)
    # -X importtime is the supervisor's alone (Granian and its workers are started without it).
    imported = {line.rsplit("|", 1)[1].strip() for line in err.read_text().splitlines() if line.startswith("import time:")}
    assert "gw.config" in imported
    for module in ("gw.app", "gw.metrics", "prometheus_client", "aiohttp", "blacksheep", "gw._fast"):
        assert module not in imported, module


# --- first run: what `make serve` installs ------------------------------------------


def test_make_serve_installs_only_what_serving_needs_and_compiles_once(tmp_path: Path) -> None:
    venv = f"VENV={tmp_path / 'venv'}"
    serve = subprocess.run(["make", "-n", "serve", venv], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "pip install --quiet .\n" in serve
    assert "[dev]" not in serve and "build_ext" not in serve and "dev-requirements" not in serve
    test = subprocess.run(["make", "-n", "test", venv], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "pip install --quiet -r" in test and "build_ext --inplace" in test
    assert "pip install --quiet ." not in test and "-e" not in test.split()


def test_httpx_is_a_dev_dependency_only_gw_never_imports_it() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("httpx")]
    assert [d for d in project["optional-dependencies"]["dev"] if d.startswith("httpx")]
    for path in (REPO / "gw").rglob("*.py*"):
        if path.suffix in (".py", ".pyx", ".pxd", ".pyi"):
            assert "httpx" not in path.read_text(), path
