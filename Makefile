# graphrun's commands. The two quick-start commands are `make serve` and `make test`;
# both create .venv and install graphrun into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup serve test check lint protos bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Serve the example agent on 127.0.0.1:50051 with an embedded PostgreSQL.
serve: setup
	$(BIN)/graphrun serve $(ARGS)

## Lint the protos, check formatting and that the generated stubs are fresh, then run pytest.
test: check
	$(BIN)/pytest $(PYTEST_ARGS)

check: setup
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code
	$(BIN)/python scripts/gen_protos.py --check

## Regenerate the Python stubs in client/graphrun/v1 from protos/.
protos: setup
	$(BIN)/buf format -w
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) .graphrun .pytest_cache
