# Two commands on a fresh machine: `make demo` and `make test` (each creates .venv on first use).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
AF := $(VENV)/bin/astroflow
DEMO ?= runs/demo-tec
WORKERS ?= $(shell nproc)

.PHONY: venv demo demo-hetdex demo-elixer demo-nres demo-vison demo-sedm test test-fast test-newest lock test-integration docker-up bench images render kind-e2e clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock setup.py $(wildcard native/*/*.cpp native/*/*.hpp)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	touch $@

demo: venv
	$(AF) demo tec --out $(DEMO) --workers $(WORKERS)

demo-hetdex: venv
	$(AF) demo hetdex --out runs/demo-hetdex --workers $(WORKERS)

demo-elixer: venv
	$(AF) demo elixer --out runs/demo-elixer --workers $(WORKERS)

demo-nres: venv
	$(AF) demo nres --out runs/demo-nres --workers $(WORKERS)

demo-vison: venv
	$(AF) demo vison --out runs/demo-vison --workers $(WORKERS)

demo-sedm: venv
	$(AF) demo sedm --out runs/demo-sedm --workers $(WORKERS)

test: venv
	$(PY) -m pytest -q --durations=25

test-fast: venv
	$(PY) -m pytest -q -m "not docker and not slow"

bench: venv
	$(PY) benchmarks/run_all.py

docker-up:
	bash .ci/docker-up.sh

images: docker-up
	$(PYTHON) images/build.py

# a fresh venv with the newest versions pyproject.toml's ranges allow, then the fast tests
test-newest:
	bash scripts/test-newest.sh

# rewrite requirements.lock (the images' and CI's exact versions) from pyproject.toml's ranges
lock:
	$(PYTHON) scripts/lock.py

test-integration: venv images
	ASTROFLOW_REQUIRE_DOCKER=1 $(PY) -m pytest -q tests/integration

render: venv
	$(AF) render --out argo --chart helm/astroflow

kind-e2e: images
	bash scripts/kind-e2e.sh

clean-venv:
	rm -rf $(VENV)
