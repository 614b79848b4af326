# Two commands on a fresh machine:  make serve  |  make test
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)

.PHONY: install build serve check test loadtest loadtest-ci bench soak clean

$(STAMP): pyproject.toml setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Recompile the Cython modules after editing a .pyx (pip install did it once).
build: $(STAMP)
	$(PY) setup.py build_ext --inplace --quiet

serve: build
	$(VENV)/bin/gw serve --config config.yaml

check: build
	$(VENV)/bin/gw check --config config.yaml

test: build
	$(PY) -m pytest

# Locust scenarios, headless; fails on any failed request or p99/throughput out of bounds.
loadtest: build
	$(PY) -m loadtests.run_locust --duration 30

loadtest-ci: build
	$(PY) -m loadtests.run_locust --duration 15

bench: build
	$(PY) -m loadtests.bench

# Fault-injection soak: gw over two fakes, one flapping (CPU heavy; not in CI).
soak: build
	$(PY) -m loadtests.soak --duration 120

clean:
	rm -rf $(VENV) build gw/_fast/*.c gw/_fast/*.so gw/_fast/*.html
