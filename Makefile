# Parley - the two commands a newcomer needs are `make test` and `make run`.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
LINT_STAMP := $(VENV)/.installed-lint
PORT ?= 3000
# The web app (web/): npm ci when the lock changes, a Vite build when a source changes.
WEB_STAMP := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/public web/scripts -type f 2>/dev/null) web/index.html web/package.json \
	web/vite.config.ts web/tsconfig.json openapi.json
# Debian's chromium drives the browser tests (Playwright's own browser download cannot work here).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STACK_NAME ?= parley-dev

.PHONY: test test-python test-web web chromium lint run bench openapi docs fuzz test-sfn-local build deploy-web clean

$(STAMP): requirements-dev.txt functions/shared/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(LINT_STAMP): $(STAMP) requirements-lint.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-lint.txt
	@touch $@

## test: install into .venv and web/node_modules, then ruff, cfn-lint, the pytest suite and the web app's tests
test: test-python test-web

test-python: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python -m pytest

## test-web: the web app's unit tests (Vitest) and browser tests (Playwright in headless chromium, local stack)
test-web: $(STAMP) web chromium
	cd web && npm test
	cd web && PARLEY_CHROMIUM=$(CHROMIUM) npx playwright test

$(WEB_STAMP): web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

## web: build the web app into web/dist (only when its sources or openapi.json changed)
web: web/dist/index.html

web/dist/index.html: $(WEB_STAMP) $(WEB_SOURCES)
	cd web && npm run build

# The browser tests' Debian packages: chromium, Korean and emoji fonts for the screenshots, and espeak-ng, with
# which the local stack's Polly answers real speech (the practice test plays the tutor's voice).
chromium:
	@if [ ! -x "$(CHROMIUM)" ] || ! command -v espeak-ng >/dev/null; then \
		echo "Installing Debian packages for the browser tests: apt-get install chromium fonts-nanum fonts-noto-color-emoji espeak-ng"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			chromium fonts-nanum fonts-noto-color-emoji espeak-ng; \
	fi

## lint: everything in test's static checks, plus mypy and sam validate --lint
lint: $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml
	$(BIN)/mypy
	$(BIN)/sam validate --lint --region us-east-1

## run: the local stack - the API on http://127.0.0.1:$(PORT), the web app on port $(PORT)+2, emulated AWS
run: $(STAMP)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory web; \
	else echo "npm not found: serving the APIs only (install Node.js 20+ and npm for the web app)"; fi
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

## deploy-web: build the app, write config.json from the stack's outputs, sync the bucket, invalidate CloudFront
deploy-web: web
	STACK_NAME=$(STACK_NAME) bash web/deploy.sh

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .mypy_cache web/dist web/e2e/artifacts
