# `make run` starts the gateway locally; `make test` runs the test suite. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test venv clean

$(STAMP): requirements.txt requirements-dev.txt
	rm -f $(VENV)/.installed-*
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --dest build/wheels -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m local.run

# lint-imports checks the import contracts in .importlinter (layers, no cycles, dev-only code kept apart) first.
test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV)

.PHONY: policy package-check

# Regenerate .chalice/policy-<stage>.json from each stage's STATE_MACHINES allow-list.
policy: $(STAMP)
	$(VENV)/bin/python -m tools.policy --all

# Offline deploy check: policies up to date, `chalice package` (SAM + Terraform) per stage, cfn-lint.
package-check: $(STAMP)
	$(VENV)/bin/python -m tools.policy --all --check
	$(VENV)/bin/python -m pytest tests/tools/test_policy.py tests/tools/test_package.py tests/http/test_openapi.py

# All benchmarks (bench/*.py, each in its own process) and one table of results, written into docs/benchmarks.md; takes several minutes.
.PHONY: bench
bench: $(STAMP)
	$(VENV)/bin/python -m bench.run_all

# `make parity`: one scripted scenario through the gateway against the local engine and against
# LocalStack's Step Functions (pinned in requirements-parity.txt; Python 3.13; its own .venv-parity/),
# then a table of their differences (written into docs/parity.md), each a known fault, explained, or NEW (exit 1). Skipped with
# exit 0 when Python 3.13 or LocalStack is unavailable. A dev tool: not part of `make test`.
# The first python3.13 that runs (a pyenv shim for a version not selected does not).
PARITY_PYTHON ?= $(shell for p in python3.13 $(HOME)/.pyenv/versions/3.13*/bin/python3.13; do \
  $$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { command -v $$p; break; }; done)
PARITY_VENV := .venv-parity
PARITY_STAMP := $(PARITY_VENV)/.installed-$(shell cat requirements-parity.txt | cksum | cut -d' ' -f1)

.PHONY: parity
parity: $(STAMP)
	@if [ -z "$(PARITY_PYTHON)" ]; then \
	  echo "make parity: skipped: Python 3.13 not found (install it, or set PARITY_PYTHON=/path/to/python3.13)"; \
	elif $(MAKE) --no-print-directory $(PARITY_STAMP); then \
	  $(VENV)/bin/python -m tools.parity --localstack-python $(PARITY_VENV)/bin/python; \
	else \
	  echo "make parity: skipped: LocalStack could not be installed into $(PARITY_VENV) (see above)"; \
	fi

$(PARITY_STAMP): requirements-parity.txt
	rm -f $(PARITY_VENV)/.installed-*
	test -x $(PARITY_VENV)/bin/python || $(PARITY_PYTHON) -m venv $(PARITY_VENV)
	$(PARITY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-parity.txt
	touch $@
# The Python client and `sfn-gateway` command (client/, its own package) into .venv: `.venv/bin/sfn-gateway --help`.
.PHONY: client
client: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e ./client

# Package a stage for deployment, offline: `make package STAGE=prod [FORMAT=terraform] [PACKAGE_DIR=...]`.
# tools/package.py runs `chalice package` (which needs a region, set there) and adds what Chalice's
# templates leave out. Fake credentials only when the shell has none, so that botocore never
# searches EC2 metadata for them.
.PHONY: package
STAGE ?= prod
FORMAT ?= cloudformation
PACKAGE_DIR ?= out/$(STAGE)$(if $(filter terraform,$(FORMAT)),-terraform)
package: $(STAMP)
	@if [ -z "$$AWS_ACCESS_KEY_ID$$AWS_PROFILE" ]; then \
		export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing; fi; \
	$(VENV)/bin/python -m tools.package --stage $(STAGE) --pkg-format $(FORMAT) $(PACKAGE_DIR)
	@echo "Packaged stage $(STAGE) ($(FORMAT)) into $(PACKAGE_DIR)/"

# The Lambda layer (PyJWT + cryptography, Linux wheels) for jwt stages' authorizer function: build/jwt-layer.zip.
.PHONY: jwt-layer
jwt-layer: $(STAMP)
	$(VENV)/bin/python -m tools.jwt_layer

# `make fuzz-access`: the generated access-model tests at full size (ACCESS_FUZZ_EXAMPLES sequences of
# stages, callers and requests through the app against moto, checked against tests/auth/access_model.py:
# execution routes, and approvals with their queue messages). `make test` runs 500 and 200 of them;
# this runs 20,000 of each and prints the figures.
.PHONY: fuzz-access
ACCESS_FUZZ_EXAMPLES ?= 20000
fuzz-access: $(STAMP)
	ACCESS_FUZZ_EXAMPLES=$(ACCESS_FUZZ_EXAMPLES) $(VENV)/bin/python -m pytest tests/auth/test_access_fuzz.py tests/auth/test_approvals_fuzz.py tests/auth/test_token_claims.py -q -p no:logging

# The stage's own OpenAPI 3.1 document: `make openapi STAGE=dev` writes out/openapi-dev.json (docs/partners.md).
.PHONY: openapi
openapi: $(STAMP)
	$(VENV)/bin/python -m tools.openapi --stage $(STAGE)
