# Two commands on a fresh machine:  make serve  |  make test
#
# One virtualenv, two stamps that never undo each other:
# - serve (make serve, check): `pip install .`, as a user installs gw: only what
#   serving needs, the Cython modules compiled once, into site-packages. Reinstalled
#   when anything under gw/ changes, so it serves the tree as it is.
# - dev (make test, lint, build, loadtest, bench, soak): the runtime and dev dependencies
#   without gw itself, and the Cython modules built in place: the tests, load tests
#   and benchmarks run this tree (`python -m gw.cli` with it on PYTHONPATH).
VENV ?= .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.created
DEPS := $(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)
SERVE_STAMP := $(VENV)/.serve-$(DEPS)
DEV_STAMP := $(VENV)/.dev-$(DEPS)
SOURCES := $(shell find gw -name '*.py' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pyi')
IMAGE_STAMP := $(VENV)/.image-$(DEPS)
# What `make test` installs: pyproject's dependencies and its dev extra.
REQUIREMENTS := import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))
IMAGE_REQUIREMENTS := import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["image"]))

.PHONY: install build serve check test test-agents lint loadtest loadtest-ci bench soak clean \
	image image-test image-clean

$(VENV_STAMP):
	python3 -m venv $(VENV)
	touch $@

$(SERVE_STAMP): pyproject.toml setup.py $(SOURCES) | $(VENV_STAMP)
	@echo "installing gw into $(VENV) (pip install .: compiles the Cython modules, about a minute)"
	$(PY) -m pip install --quiet .
	rm -f $(VENV)/.serve-*
	touch $@

$(DEV_STAMP): pyproject.toml setup.py | $(VENV_STAMP)
	$(PY) -c '$(REQUIREMENTS)' > $(VENV)/dev-requirements.txt
	$(PY) -m pip install --quiet -r $(VENV)/dev-requirements.txt
	rm -f $(VENV)/.dev-*
	touch $@

install: $(SERVE_STAMP)

# Build the Cython modules in place for the tests; after editing a .pyx, only what changed.
build: $(DEV_STAMP)
	$(PY) setup.py build_ext --inplace --quiet

serve: $(SERVE_STAMP)
	$(VENV)/bin/gw serve --config config.yaml

check: $(SERVE_STAMP)
	$(VENV)/bin/gw check --config config.yaml

# The Redis limits' tests run a real redis-server (Debian's package), installed here if missing.
REDIS_INSTALL := apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server
test: build
	@command -v redis-server >/dev/null 2>&1 || { echo "installing redis-server (apt-get)"; \
		if [ "$$(id -u)" = 0 ]; then $(REDIS_INSTALL); else sudo sh -c '$(REDIS_INSTALL)'; fi; }
	$(PY) -m pytest

# ruff (pyproject's [tool.ruff]) and mypy --strict ([tool.mypy]); gw/_fast is typed by its
# .pyi files, which stubtest checks against the compiled modules.
lint: build
	$(PY) -m ruff check gw loadtests tests setup.py
	$(PY) -m mypy gw
	$(PY) -m mypy.stubtest --allowlist gw/_fast/stubtest_allowlist.txt gw._fast

# Locust scenarios, headless; fails on any failed request or p99/throughput out of bounds.
loadtest: build
	$(PY) -m loadtests.run_locust --duration 30

loadtest-ci: build
	$(PY) -m loadtests.run_locust --duration 15

# The benchmark's load generator is wrk, its Redis rows need redis-server (Debian's packages),
# installed here if missing.
WRK_INSTALL := apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk redis-server
bench: build
	@command -v wrk >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1 || { echo "installing wrk, redis-server (apt-get)"; \
		if [ "$$(id -u)" = 0 ]; then $(WRK_INSTALL); else sudo sh -c '$(WRK_INSTALL)'; fi; }
	$(PY) -m loadtests.bench

# Fault-injection soak: gw over two fakes, one flapping (CPU heavy; not in CI).
soak: build
	$(PY) -m loadtests.soak --duration 120

clean:
	rm -rf $(VENV) build gw/_fast/*.c gw/_fast/*.so gw/_fast/*.html

# The real agent CLIs (Claude Code, Codex; pinned in tests/agents/install.sh) against gw:
# installed with npm into .agents/ (Node.js from Debian when missing), then run offline.
test-agents: build
	@bash tests/agents/install.sh > $(VENV)/agents-bin
	GW_AGENTS_BIN="$$(tail -1 $(VENV)/agents-bin)" $(PY) -m pytest -m agents tests/agents

# The container image (Containerfile; docs/deploy.md), with its OCI labels, by podman or docker.
IMAGE ?= gw:latest
CONTAINER_TOOL ?= $(shell command -v podman || command -v docker)
image:
	$(CONTAINER_TOOL) build -f Containerfile -t $(IMAGE) \
		--build-arg VERSION="$$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)" \
		--build-arg REVISION="$$(git rev-parse HEAD 2>/dev/null || echo unknown)" .

$(IMAGE_STAMP): pyproject.toml setup.py | $(VENV_STAMP)
	$(PY) -c '$(IMAGE_REQUIREMENTS)' > $(VENV)/image-requirements.txt
	$(PY) -m pip install --quiet -r $(VENV)/image-requirements.txt
	rm -f $(VENV)/.image-*
	touch $@

# The image built from a Debian base made here (debootstrap) and run with podman as root:
# tests/image/run.sh installs podman, runc and debootstrap when missing. The base and
# podman's layer cache stay for the next run; image-clean removes them.
image-test: $(DEV_STAMP) $(IMAGE_STAMP)
	PY=$(PY) bash tests/image/run.sh

image-clean:
	bash tests/image/run.sh --clean
