# One entry point for people and CI. `make test` does all its own set-up: the virtual
# environment, the test-host image and the test builds of step and step-ca (both cached).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | sha256sum | cut -c1-12)

.PHONY: test test-unit test-e2e lint format venv clean sandbox sandbox-down bench dist tools

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

## What the tests need on this machine (Docker, debootstrap, the controller tools), then the
## lint, then the whole suite (unit, artifact and end-to-end tests).
test: venv
	tests/hosts/prerequisites.sh
	$(MAKE) lint
	$(BIN)/pytest --durations=40

## Unit tests only: no Docker needed; gpg, openssl, shellcheck and promtool are (installed
## from Debian's packages when missing and run as root, else named).
test-unit: venv tools
	$(BIN)/pytest -m 'not e2e and not artifacts'

tools:
	tests/hosts/controller-tools.sh

## End-to-end tests only: real pyinfra over SSH against Docker test hosts.
test-e2e: venv
	tests/hosts/prerequisites.sh
	$(BIN)/pytest -m e2e

## The sandbox: Docker hosts with the whole system deployed by deploys/cluster.py.
sandbox: venv
	tests/hosts/prerequisites.sh
	$(BIN)/python -m tests.harness.sandbox up

sandbox-down: venv
	$(BIN)/python -m tests.harness.sandbox down

## Benchmarks on the sandbox hosts: writes benchmarks/RESULTS.md and benchmarks/results.png.
bench: venv
	tests/hosts/prerequisites.sh
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python -m benchmarks.run

## Lint: ruff, mypy (strict; configuration in pyproject.toml), shellcheck of the repository's
## scripts and of every script template rendered with representative settings.
lint: venv tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	shellcheck $$(git ls-files '*.sh')
	$(BIN)/pytest -q -m lint

## The sdist and the wheel, in dist/ (the wheel is built from the sdist).
dist: venv
	$(BIN)/python -m build --outdir dist .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) *.egg-info .sandbox dist build
