# Parley - the two commands a newcomer needs are `make test` and `make run`.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# SAM CLI and parliament live in their own virtualenv: SAM pins pydantic and boto3 versions that
# must not replace the layer's in .venv, where the tests and mypy run.
LINT_VENV ?= .venv-lint
LINT_BIN := $(LINT_VENV)/bin
LINT_STAMP := $(LINT_VENV)/.installed
NODE_STAMP := verify/node_modules/.installed
PORT ?= 3000
REGION := us-east-1
# What `sam build` reads, and what `make verify` checks: a rerun with none of them changed is a no-op.
BUILD_INPUTS := template.yaml $(wildcard stacks/*.yaml) samconfig.toml $(shell find functions layers -type f ! -name '*.pyc' ! -path '*/__pycache__/*')
VERIFY_INPUTS := $(BUILD_INPUTS) $(wildcard statemachines/*.asl.json verify/*.py) local_stack/template.py
BUILT := .aws-sam/build/template.yaml
VERIFIED := .aws-sam/verify/.passed
# The web app (web/): npm ci when the lock changes, a Vite build when a source changes.
WEB_STAMP := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/public web/scripts -type f 2>/dev/null) web/index.html web/package.json \
	web/vite.config.ts web/tsconfig.json openapi.json
# Debian's chromium drives the browser tests (Playwright's own browser download cannot work here).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STACK_NAME ?= parley-dev
# Mermaid draws the docs site's diagrams; the site serves this pinned copy (docsite/hooks.py), no CDN.
MERMAID_VERSION := 11.17.2
MERMAID_SHA256 := 6ad2f42c3fc26bbf9e45cbb6d11898972573ea52b33a5f4ff51952899f950ffd
MERMAID := docsite/vendor/mermaid-$(MERMAID_VERSION).min.js

.PHONY: test test-python test-web web chromium lint verify run bench openapi docs docs-examples fuzz test-sfn-local build deploy-web clean

$(STAMP): requirements-dev.txt requirements-local.txt requirements-docs.txt functions/shared/requirements.txt layers/harper/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(LINT_STAMP): requirements-lint.txt
	@test -x $(LINT_BIN)/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-lint.txt
	@touch $@

$(MERMAID):
	@mkdir -p $(@D); rm -f $(@D)/mermaid-*.min.js; tmp=$$(mktemp -d); \
	(cd $$tmp && npm pack --silent --loglevel=error mermaid@$(MERMAID_VERSION) > /dev/null) \
	&& echo "$(MERMAID_SHA256)  $$tmp/mermaid-$(MERMAID_VERSION).tgz" | sha256sum --check --quiet \
	&& tar -xzf $$tmp/mermaid-$(MERMAID_VERSION).tgz -C $$tmp package/dist/mermaid.min.js \
	&& mv $$tmp/package/dist/mermaid.min.js $@; status=$$?; rm -rf $$tmp; exit $$status

$(NODE_STAMP): verify/package.json verify/package-lock.json
	cd verify && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

## test: install into .venv and web/node_modules, then ruff, cfn-lint, the pytest suite (with make verify
# beside it) and the web app's tests
test: test-python test-web

# pytest runs on two workers (pytest-xdist), a whole test module per worker, so module-scoped fixtures stay one
# per module. verify is mostly installs, sam build and child interpreters: it overlaps pytest well; its log
# follows the tests' and either failing fails the target.
test-python: $(STAMP) $(MERMAID)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml stacks/*.yaml
	@mkdir -p .aws-sam; $(MAKE) --no-print-directory verify > .aws-sam/verify.log 2>&1 & verify=$$!; \
	$(BIN)/python -m pytest -n 2 --dist loadfile; tests=$$?; \
	wait $$verify; verified=$$?; echo "---- make verify ----"; cat .aws-sam/verify.log; \
	if [ $$verified -ne 0 ]; then echo "make verify FAILED (above; also in .aws-sam/verify.log)"; fi; \
	exit $$(( tests != 0 || verified != 0 ))

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

# The browser tests' Debian packages: chromium, and Korean and emoji fonts for the screenshots. (The local
# stack's Polly speaks with the espeak-ng library from a wheel: no Debian package.)
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "Installing Debian packages for the browser tests: apt-get install chromium fonts-nanum fonts-noto-color-emoji"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			chromium fonts-nanum fonts-noto-color-emoji; \
	fi

## lint: ruff, cfn-lint, mypy (in .venv, on the layer's versions) and sam validate --lint
lint: $(STAMP) $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml stacks/*.yaml
	$(BIN)/mypy
	$(LINT_BIN)/sam validate --lint --region $(REGION)

## verify: what moto cannot see - sam build + validate, limits, IAM lint, ASL, handler imports (docs/operations.md)
verify: $(VERIFIED)

$(BUILT): $(LINT_STAMP) $(BUILD_INPUTS)
	$(LINT_BIN)/sam build --region $(REGION)
	@touch $@

$(VERIFIED): $(BUILT) $(STAMP) $(LINT_STAMP) $(NODE_STAMP) $(VERIFY_INPUTS)
	@rm -f $@
	$(LINT_BIN)/sam validate --lint --region $(REGION)
	$(LINT_BIN)/python -m verify template
	node verify/node_modules/.bin/asl-validator $$(sed 's/^/--json-path /' .aws-sam/verify/asl-files.txt)
	$(BIN)/python -m verify imports
	@touch $@

## run: the local stack - the API on http://127.0.0.1:$(PORT), the web app on port $(PORT)+2, emulated AWS
run: $(STAMP)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory web; \
	else echo "npm not found: serving the APIs only (install Node.js 20+ and npm for the web app)"; fi
	$(BIN)/python -m local_stack --port $(PORT)

## openapi: regenerate openapi.json from the handlers' routes
openapi: $(STAMP)
	$(BIN)/python -m local_stack.openapi --write openapi.json

## docs: regenerate openapi.json and docs/parameters.md's table from the code and template, then build the site
# into site/ (MkDocs, strict: a broken link or anchor fails; the API reference is rendered from openapi.json)
docs: openapi $(MERMAID)
	$(BIN)/python -m local_stack.docs --write
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

## docs-examples: run every example in docs/ against a local stack of its own (make test runs them too)
docs-examples: $(STAMP)
	$(BIN)/python -m docsite.examples

## fuzz: schemathesis against the local stack's OpenAPI document (well over 1,000 requests)
fuzz: $(STAMP)
	$(BIN)/python -m local_stack.fuzz --max-examples 150 --min-requests 1000

## bench: the benchmarks in bench/ (cold import of handlers vs a bare boto3 handler, ...)
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

## test-sfn-local: the transcription workflow on Step Functions Local (needs Docker; skipped without it)
test-sfn-local: $(STAMP)
	$(BIN)/python -m pytest -m sfn_local -rs

## build: sam build (no container), reused while its inputs are unchanged
build: $(BUILT)

## deploy-web: build the app, write config.json from the stack's outputs, sync the bucket, invalidate CloudFront
deploy-web: web
	STACK_NAME=$(STACK_NAME) bash web/deploy.sh

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .mypy_cache web/dist web/e2e/artifacts site
