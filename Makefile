# One command per task. `make plan` and `make test` work on a fresh machine: they install
# what they need first (virtualenvs from pinned requirements, the npm lock file, rsync, shellcheck).
STACK ?= vision-team
# Recipes read the stack name from the environment ("$$STACK"): no value of STACK is ever shell code.
export STACK
PYTHON ?= python3
VENV := .venv
E2E_VENV := .venv-e2e

.PHONY: plan test check lint bench bench-ci

plan: $(VENV)/.runtime  ## offline plan of stacks/Pulumi.$(STACK).yaml (no CLI, no credentials)
	$(VENV)/bin/python -m offline.plan "$$STACK"

test: $(VENV)/.dev $(E2E_VENV)/.installed node_modules/.installed /usr/bin/rsync /usr/bin/shellcheck  ## the whole suite, e2e included
	$(VENV)/bin/python -m pytest

check: $(VENV)/.dev  ## every stack file: configuration rules, the policy pack, the CI file schemas and clashes between stacks (offline)
	$(VENV)/bin/python -m offline.check

lint: $(VENV)/.dev $(VENV)/.policy node_modules/.installed  ## ruff, and pyright in strict mode (pyrightconfig.json)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	node_modules/.bin/pyright

bench: $(VENV)/.policy  ## one stack vs 100 stacks through the offline check (wall time, peak memory)
	bench/run.sh

bench-ci: $(VENV)/.dev $(E2E_VENV)/.installed  ## the committed CI job vs the guide's: wall time and bytes from the bucket (needs the e2e wheelhouse: make test)
	$(VENV)/bin/python bench/ci_data.py

$(VENV)/.runtime: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.policy: $(VENV)/.runtime policy/requirements.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check -r policy/requirements.txt -c constraints.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(E2E_VENV)/.installed: requirements-e2e.txt constraints-e2e.txt
	$(PYTHON) -m venv $(E2E_VENV)
	$(E2E_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-e2e.txt -c constraints-e2e.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

/usr/bin/rsync:
	apt-get update -qq && apt-get install -y -qq rsync

# The committed CI files' shell lines are linted with it (tests/test_ci_linters.py).
/usr/bin/shellcheck:
	apt-get update -qq && apt-get install -y -qq shellcheck
