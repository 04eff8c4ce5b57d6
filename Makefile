# Parley - the two commands a newcomer needs are `make test` and `make run`.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
LINT_STAMP := $(VENV)/.installed-lint
PORT ?= 3000

.PHONY: test lint run bench openapi docs fuzz test-sfn-local build clean

$(STAMP): requirements-dev.txt requirements-local.txt functions/shared/requirements.txt layers/harper/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(LINT_STAMP): $(STAMP) requirements-lint.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-lint.txt
	@touch $@

## test: install into .venv, then ruff, cfn-lint and the whole pytest suite
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python -m pytest

## lint: everything in test's static checks, plus mypy and sam validate --lint
lint: $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml
	$(BIN)/mypy
	$(BIN)/sam validate --lint --region us-east-1

## run: the local stack - the API on http://127.0.0.1:$(PORT) backed by emulated AWS
run: $(STAMP)
	$(BIN)/python -m local_stack --port $(PORT)

## openapi: regenerate openapi.json from the handlers' routes
openapi: $(STAMP)
	$(BIN)/python -m local_stack.openapi --write openapi.json

## docs: regenerate openapi.json, docs/parameters.md's table and the template's alarms from the code and template
docs: openapi
	$(BIN)/python -m local_stack.docs --write

## fuzz: schemathesis against the local stack's OpenAPI document (well over 1,000 requests)
fuzz: $(STAMP)
	$(BIN)/python -m local_stack.fuzz --max-examples 150 --min-requests 1000

## bench: the benchmarks in bench/ (cold import of handlers vs a bare boto3 handler, ...)
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## test-sfn-local: the transcription workflow on Step Functions Local (needs Docker; skipped without it)
test-sfn-local: $(STAMP)
	$(BIN)/python -m pytest -m sfn_local -rs

## build: sam build (no container) - needs the lint tools
build: $(LINT_STAMP)
	$(BIN)/sam build --region us-east-1

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .mypy_cache
