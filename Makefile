# One target per job, used the same way locally and in CI (.ci/run calls `make test`).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: setup run test lint fmt typecheck pytest bench lock clean

setup: $(STAMP)

$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv
	@$(BIN)/uv pip sync -q --python $(PY) requirements/dev.txt
	@$(BIN)/uv pip install -q --python $(PY) --no-deps -e .
	@touch $(STAMP)

run: setup
	@$(BIN)/obt serve

test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check obt agent tests bench
	$(BIN)/ruff format --check obt agent tests bench

fmt: setup
	$(BIN)/ruff check --fix obt agent tests bench
	$(BIN)/ruff format obt agent tests bench

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q -p no:cacheprovider

bench: setup
	$(PY) -m bench

lock:
	uv pip compile -q --generate-hashes --python-version 3.11 pyproject.toml -o requirements/agent.txt
	uv pip compile -q --generate-hashes --python-version 3.11 --extra server pyproject.toml -o requirements/server.txt
	uv pip compile -q --generate-hashes --python-version 3.11 --extra server --extra dev pyproject.toml -o requirements/dev.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
