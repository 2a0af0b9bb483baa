# graphrun's commands. The two quick-start commands are `make serve` and `make test`;
# both create .venv and install graphrun into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := clients/typescript/node_modules/.installed
# The protos of the last release, as a buf image: `buf breaking` compares with it (see api-baseline).
API_BASELINE := protos/releases/v0.1.0.binpb

.PHONY: setup serve test check fmt lint protos stubs-ts api-baseline bench clean

# The server (pyproject.toml) and the client it depends on (client/pyproject.toml), both editable.
$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# A venv from before the client had its own distribution: its `graphrun` owned the command.
	$(BIN)/pip uninstall -q -y graphrun graphrun-client 2>/dev/null || true
	$(BIN)/pip install -q -e ./client -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The TypeScript client test's npm packages (pinned in package-lock.json). Without npm the
# TypeScript test is skipped with a note (CI=true has npm and must run it: there this fails).
$(NODE_STAMP): clients/typescript/package-lock.json
	@if command -v npm >/dev/null || [ "$$CI" = true ]; then \
		npm ci --prefix clients/typescript --no-audit --no-fund && touch $(NODE_STAMP); \
	else \
		echo "note: npm is not installed; the TypeScript client test will be skipped (install node >= 20 to run it)"; \
	fi

## Serve the example agent on 127.0.0.1:50051 with an embedded PostgreSQL.
serve: setup
	$(BIN)/graphrun serve $(ARGS)

## Lint the protos and the Python code, check formatting, types and that the generated stubs are fresh, then run pytest.
test: check $(NODE_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

check: setup
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code
	@# The wire contract never breaks: compared with the last release's protos (fails if that image is missing).
	$(BIN)/buf breaking --against $(API_BASELINE)
	$(BIN)/python scripts/gen_protos.py --check
	@# Python: lint, formatting and types ([tool.ruff] and [tool.mypy] in pyproject.toml).
	$(BIN)/ruff check server client scripts
	$(BIN)/ruff format --check server client scripts
	$(BIN)/mypy

## Format the Python code and apply ruff's safe fixes (then regenerate _sync.py from _async.py).
fmt: setup
	$(BIN)/ruff format server client scripts
	$(BIN)/ruff check --fix server client scripts
	$(BIN)/python scripts/gen_sync_client.py

## Regenerate the Python stubs in client/graphrun/v1 from protos/.
protos: setup
	$(BIN)/buf format -w
	$(BIN)/python scripts/gen_protos.py

## Regenerate the TypeScript stubs in clients/typescript/src/gen from protos/ (needs node >= 20).
stubs-ts: setup $(NODE_STAMP)
	$(BIN)/buf generate

## After a release: record its protos as the baseline of `buf breaking` (make api-baseline VERSION=0.2.0),
## then point API_BASELINE above at the new image.
api-baseline: setup
	test -n "$(VERSION)"
	$(BIN)/buf build protos --exclude-source-info -o protos/releases/v$(VERSION).binpb

## Benchmarks against in-process execution (a table, a few minutes; --quick for a smoke run).
bench: setup
	$(BIN)/python -m benchmarks.bench $(ARGS)

clean:
	rm -rf $(VENV) .graphrun .pytest_cache
