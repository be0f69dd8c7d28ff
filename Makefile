# kubestellar-py: every target sets up what it needs from nothing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SRC := apis pkg cmd

.PHONY: all venv lint typecheck codegen verify-codegen kcp helm test test-chaos test-edge unit e2e demo bench clean

all: test

$(STAMP): pyproject.toml setup.py requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (Python 3.11+ is needed)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check $(SRC) hack test bench
	$(VENV)/bin/ruff format --check $(SRC) hack test bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy $(SRC)

codegen: $(STAMP)
	$(PY) hack/codegen.py
	$(PY) hack/gen_kube_exports.py

verify-codegen: $(STAMP)
	$(PY) hack/codegen.py --verify
	$(PY) hack/gen_kube_exports.py --verify

kcp:
	@hack/kcp.sh path >/dev/null

# helm for the chart's tests (its own Go module, hack/helm-tools; built once into the cache).
helm:
	@hack/kcp.sh path helm >/dev/null

unit: $(STAMP)
	$(PY) -m pytest test/unit

e2e: $(STAMP) kcp
	$(PY) -m pytest test/e2e

# The README's test command: lint, types, generated code, then every test (kcp e2e included).
test: $(STAMP) lint typecheck verify-codegen kcp helm
	$(PY) -m pytest test

# Fault injection on private kcp servers (crashes, kcp restarts, leader failover, refusals); slow.
test-chaos: $(STAMP) kcp
	$(PY) -m pytest -m chaos test/e2e/chaos

# The edge: example1 to edge clusters played by a second kcp; prep-for-syncer's credentials do what
# the syncer does (make test deselects these; KUBESTELLAR_SYNCER=PATH also runs an upstream syncer).
test-edge: $(STAMP) kcp
	$(PY) -m pytest -m edge -rA test/e2e/edge

# The README's first command: example1 on a fresh kcp with every controller (ARGS=--keep leaves it running).
demo: $(STAMP) kcp
	$(PY) hack/demo.py $(ARGS)

# Workqueue throughput, the desired-state computation (no server), then the translator at scale on
# a private kcp (bench/scale.py, small and medium; many minutes), the reconnect after a kcp outage, a
# new TLS connection, the memory of a cached mailbox copy (bench/copy_cache.py),
# and, with UPSTREAM_BIN=DIR (upstream v0.14.0's binaries), upstream's translator beside ours.
UPSTREAM_BIN ?=
bench: $(STAMP) kcp
	$(PY) -m bench.workqueue
	$(PY) -m bench.compute --size medium
	$(PY) -m bench.scale --size small
	$(PY) -m bench.scale --size medium
	$(PY) -m bench.reconnect
	$(PY) -m bench.tls
	$(PY) -m bench.copy_cache
	$(PY) -m bench.upstream $(if $(UPSTREAM_BIN),--upstream-bin $(UPSTREAM_BIN))

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
