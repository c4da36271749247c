# One target per job, used the same way locally and in CI (.ci/run calls `make test`).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced
PNPM_VERSION := 12.4.2
PNPM := pnpm --dir frontend
FRONT_STAMP := frontend/node_modules/.installed
DASHBOARD := obt/static/index.html
FRONT_SOURCES := $(shell find frontend/src frontend/static -type f 2>/dev/null) \
	frontend/svelte.config.js frontend/vite.config.ts frontend/package.json

.PHONY: setup run test lint fmt typecheck pytest frontend-test e2e bench lock clean tools dashboard

## setup: Python venv with every dependency, the dashboard's packages, the built dashboard
setup: $(STAMP) $(DASHBOARD)

$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv
	@$(BIN)/uv pip sync -q --python $(PY) requirements/dev.txt
	@$(BIN)/uv pip install -q --python $(PY) --no-deps -e .
	@touch $(STAMP)

tools:
	@command -v node >/dev/null || { echo "Node.js 20+ is needed (apt-get install nodejs)"; exit 1; }
	@if [ "$$(pnpm --version 2>/dev/null)" != "$(PNPM_VERSION)" ]; then \
		echo "installing pnpm $(PNPM_VERSION)"; npm i -g pnpm@$(PNPM_VERSION) >/dev/null; fi

$(FRONT_STAMP): frontend/package.json frontend/pnpm-lock.yaml | tools
	@$(PNPM) install --frozen-lockfile --reporter=silent
	@touch $(FRONT_STAMP)

$(DASHBOARD): $(FRONT_STAMP) $(FRONT_SOURCES)
	@$(PNPM) run build >/dev/null
	@echo "dashboard built into obt/static"

dashboard: $(DASHBOARD)

## run: set up, then the server (SQLite in ./data) + dashboard on :8881 + a local agent
run: setup
	@$(PY) scripts/run_local.py

## test: every linter, type check and test suite (what CI runs)
test: setup lint typecheck pytest frontend-test e2e

lint: setup
	$(BIN)/ruff check obt agent tests bench scripts
	$(BIN)/ruff format --check obt agent tests bench scripts
	$(PNPM) run lint

fmt: setup
	$(BIN)/ruff check --fix obt agent tests bench scripts
	$(BIN)/ruff format obt agent tests bench scripts
	$(PNPM) run format

typecheck: setup
	$(BIN)/mypy
	$(PNPM) run check

pytest: setup
	$(BIN)/pytest -p no:cacheprovider

frontend-test: setup
	$(PNPM) run test

e2e: setup
	@test -x /usr/bin/chromium || { echo "e2e needs Chromium: apt-get install -y chromium"; exit 1; }
	$(PNPM) run e2e

bench: setup
	$(PY) -m bench

lock:
	uv pip compile -q --generate-hashes --python-version 3.11 pyproject.toml -o requirements/agent.txt
	uv pip compile -q --generate-hashes --python-version 3.11 --extra server pyproject.toml -o requirements/server.txt
	uv pip compile -q --generate-hashes --python-version 3.11 --extra server --extra dev pyproject.toml -o requirements/dev.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache frontend/node_modules obt/static
