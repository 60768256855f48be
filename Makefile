# The README's two commands: `make demo` (the main job) and `make test`.
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup demo test lint typecheck unit integration generate clean

setup:
	./scripts/setup

demo: setup
	$(VENV)/python -m reef_devkit.demo

test: setup lint typecheck
	$(VENV)/pytest -q -ra

lint: setup
	$(VENV)/ruff check operator devkit tests bench
	$(VENV)/python -m reef_operator.render --check
	$(VENV)/lint-imports

typecheck: setup
	$(VENV)/mypy

unit: setup
	$(VENV)/pytest -q tests/unit

integration: setup
	$(VENV)/pytest -q tests/integration

generate: setup
	$(VENV)/python -m reef_operator.render

clean:
	-$(VENV)/reef-operator dev down
	rm -rf .venv .mypy_cache .pytest_cache .ruff_cache
