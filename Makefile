# Habits: `make test`, `make lint`, `make fmt`, `make serve`, `make bench`, `make lock`.
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install dev test lint fmt serve bench lock

install:
	./install.sh

dev:
	./install.sh --dev

test:
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check broker tests bench
	$(BIN)/ruff format --check broker tests bench
	$(BIN)/mypy broker
	$(BIN)/lint-imports

fmt:
	$(BIN)/ruff format broker tests bench
	$(BIN)/ruff check --fix broker tests bench

serve:
	$(BIN)/exec-broker serve

bench:
	$(BIN)/python bench/run.py

# Re-pin after changing dependencies in pyproject.toml (uv: `pip install uv` in the venv).
lock:
	$(BIN)/uv pip compile pyproject.toml requirements-build.in -o requirements.lock --generate-hashes -q
	$(BIN)/uv pip compile pyproject.toml requirements-build.in --extra dev -o requirements-dev.lock --generate-hashes -q
