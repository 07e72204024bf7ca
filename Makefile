# `make run` starts the gateway locally; `make test` runs the test suite. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test venv clean

$(STAMP): requirements.txt requirements-dev.txt
	rm -f $(VENV)/.installed-*
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m local.run

test: $(STAMP)
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
	$(VENV)/bin/python -m pytest tests/test_policy.py tests/test_package.py tests/test_openapi.py

# All benchmarks (bench/*.py, each in its own process) and one table of results; takes several minutes.
.PHONY: bench
bench: $(STAMP)
	$(VENV)/bin/python -m bench.run_all

# Deployable templates of one stage (tools/package.py: chalice package plus what Chalice leaves out,
# e.g. the webhooks' SQS failure destination): make package STAGE=dev -> build/dev/sam, build/dev/terraform.
.PHONY: package
STAGE ?= dev
package: $(STAMP)
	$(VENV)/bin/python -m tools.package --stage $(STAGE) --pkg-format cloudformation build/$(STAGE)/sam
	$(VENV)/bin/python -m tools.package --stage $(STAGE) --pkg-format terraform build/$(STAGE)/terraform
