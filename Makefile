# The two commands of the README: `make dev` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
CDK := infra/node_modules/.bin/cdk

.PHONY: dev test setup setup-local setup-python setup-node setup-client setup-infra lint typecheck pytest client-test synth layer bench clean

# The local stack needs only requirements-local.txt and the client (which builds the demo
# page); the tests, the CDK app and the linters are installed by `make test`/`make synth`.
dev: setup-local
	$(PY) -m devstack

test: setup lint typecheck pytest client-test

setup: setup-python setup-node

setup-local: $(VENV)/.installed-local setup-client client/demo-dist/.built

# Two markers in one .venv: the local stack's packages, then the rest on top for `make test`.
$(VENV)/.installed-local: requirements.txt requirements-local.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || { $(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q --upgrade pip; }
	$(PY) -m pip install -q -r requirements-local.txt
	touch $@

setup-python: $(VENV)/.installed
$(VENV)/.installed: $(VENV)/.installed-local requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

setup-node: setup-client tests/e2e/node_modules/.installed
setup-client: client/node_modules/.installed
client/node_modules/.installed: client/package.json client/package-lock.json
	cd client && npm ci --no-audit --no-fund
	touch $@
# npm ci builds the demo page once (the package's prepare script); it is built again when
# its sources change, so `make dev` never serves a page older than the checkout.
DEMO_SOURCES := $(shell find client/demo client/src -type f) client/vite.config.ts
client/demo-dist/.built: client/node_modules/.installed $(DEMO_SOURCES)
	cd client && npm run build:demo
	touch $@
tests/e2e/node_modules/.installed: tests/e2e/package.json tests/e2e/package-lock.json
	cd tests/e2e && npm ci --no-audit --no-fund
	touch $@

lint: setup-python
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup-python
	$(VENV)/bin/mypy

pytest: setup-python
	$(VENV)/bin/pytest

client-test: setup
	cd client && npm test

# The client as an npm tarball (client/y-apigateway-<version>.tgz): prepack builds dist/.
.PHONY: client-pack
client-pack: setup-client
	cd client && npm pack

setup-infra: infra/node_modules/.installed
infra/node_modules/.installed: infra/package.json infra/package-lock.json
	cd infra && npm ci --no-audit --no-fund
	touch $@

# A stage shape or any other setting on the command line: make synth CDK_ARGS="-c egress=ipv6"
CDK_ARGS ?=
synth: setup-python setup-infra
	$(CDK) synth --quiet $(CDK_ARGS)

layer: setup-python
	$(PY) layers/build.py

bench: setup
	$(PY) -m bench.run
	$(PY) -m bench.openloop
	$(PY) -m bench.cost

clean:
	rm -rf $(VENV) client/node_modules tests/e2e/node_modules infra/node_modules cdk.out layers/build
