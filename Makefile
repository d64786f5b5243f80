# One command per task. `make plan` and `make test` work on a fresh machine: they install
# what they need first (virtualenvs from pinned requirements, the npm lock file, rsync, shellcheck,
# and for the tests the Pulumi CLI and act built from Go modules, cached outside the repository).
STACK ?= vision-team
# STACK is text, never code: make keeps a command-line value unexpanded (`$(shell ...)` stays
# text), recipes read it from the environment ("$$STACK", never make's own expansion), and every target first
# refuses a STACK that is not a stack name (an option such as --out=/x, a path, '..').
override STACK := $(value STACK)
export STACK
# The local cloud's state directory; empty means build/local/<STACK>. Text too, read by the shell,
# and refused unless a plain path (target local-dir).
LOCAL ?=
override LOCAL := $(value LOCAL)
export LOCAL
PYTHON ?= python3
VENV := .venv
E2E_VENV := .venv-e2e
# `make mutation MODULE="mlops_ci/preflight.py …"`: these modules of the mutation run, in this order; empty: all of them. Text, never code.
MODULE ?=
override MODULE := $(value MODULE)
export MODULE
# `make mutation SAMPLE=40`: that many mutants of each module and of its constants, chosen at random (the same each
# run of the same source); empty: all of them. A whole number, checked by the runner.
SAMPLE ?=
override SAMPLE := $(value SAMPLE)
export SAMPLE
# `make mutation PART=constants`: only the module constants' mutants (or `functions`: only mutmut's); empty: both.
PART ?=
override PART := $(value PART)
export PART

.PHONY: plan test check lint bench bench-ci mutation pulumi-cli pulumi-yaml act github-provider test-engine stack-name local-dir wheel

plan: stack-name $(VENV)/.runtime  ## offline plan of stacks/Pulumi.<STACK>.yaml (no CLI, no credentials)
	$(VENV)/bin/python -m mlops_ci.offline.plan -- "$$STACK"

# The CLI's rule for stack names, less a leading '-' and '..' (a path out of build/plan or build/local).
stack-name:
	@case "$$STACK" in ""|-*|*..*|*[!A-Za-z0-9_.-]*) false;; esac && [ "$${#STACK}" -le 100 ] || { \
	  echo "error: STACK: a stack name is 1-100 letters, digits, '_', '.', '-', not starting with '-', without '..' or '/'" >&2; exit 2; }

# LOCAL, when set, is a plain path: the local cloud's targets refuse anything else before creating
# or starting anything (a value such as `$(shell ...)` or `x; rm ...` was a directory name before).
# It is a directory the local cloud may fill and empty (it deletes and rebuilds team-clone/ inside):
# not an existing file, no name longer than the file system takes, and never the checkout, a
# directory above it, $$HOME or a system directory.
local-dir:
	@case "$$LOCAL" in -*|*[!A-Za-z0-9_./-]*) \
	  echo "error: LOCAL: a directory path of letters, digits, '_', '.', '-', '/', not starting with '-'" >&2; exit 2;; esac
	@[ -z "$$LOCAL" ] && exit 0; \
	if [ -e "$$LOCAL" ] && [ ! -d "$$LOCAL" ]; then \
	  echo "error: LOCAL: $$LOCAL exists and is not a directory: name a directory (or a new name)" >&2; exit 2; fi; \
	long=$$(printf '%s\n' "$$LOCAL" | tr / '\n' | awk 'length > 255'); \
	if [ "$${#LOCAL}" -gt 1024 ] || [ -n "$$long" ]; then \
	  echo "error: LOCAL: a path of at most 1024 characters, each name at most 255" >&2; exit 2; fi; \
	dir=$$(realpath -m -- "$$LOCAL"); \
	case "$$(realpath .)/" in "$${dir%/}/"*) \
	  echo "error: LOCAL: $$dir is this checkout or above it: the local cloud deletes what it holds; name a directory of its own" >&2; exit 2;; esac; \
	case "$$dir" in "$$HOME"|/tmp|/var/tmp|/bin|/sbin|/lib|/lib64|/opt|/srv|/mnt|/media|/home|/root|/run|/var|/usr|/usr/*|/etc|/etc/*|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/boot|/boot/*) \
	  echo "error: LOCAL: $$dir is a system directory (or \$$HOME): name a directory of its own" >&2; exit 2;; esac

test: stack-name $(VENV)/.dev $(E2E_VENV)/.installed node_modules/.installed /usr/bin/rsync /usr/bin/shellcheck /usr/bin/curl pulumi-cli pulumi-yaml act github-provider  ## the whole suite: e2e, the real engine and the local cloud included
	$(VENV)/bin/python -m pytest

check: stack-name $(VENV)/.dev  ## every stack file: configuration rules, the policy pack, the CI file schemas and clashes between stacks (offline)
	$(VENV)/bin/python -m mlops_ci.offline.check

lint: stack-name $(VENV)/.dev $(VENV)/.policy node_modules/.installed  ## ruff, and pyright in strict mode (pyrightconfig.json)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	node_modules/.bin/pyright

bench: stack-name $(VENV)/.policy  ## one stack vs 100 stacks through the offline check (wall time, peak memory)
	bench/run.sh

mutation: stack-name $(VENV)/.mutation node_modules/.installed /usr/bin/shellcheck  ## mutation score of the validation, pre-flight and delivery code (mutmut 3.8.1 in functions, then each module constant in a fresh interpreter) over the fast tests; MODULE="<path> …" for some modules, SAMPLE=<n> for n mutants of each, PART=functions|constants for one part; slow (10-25 min a module here, hours for all): before a release, not in .ci/run
	nice -n 10 $(VENV)/bin/python -m bench.mutation.run

pulumi-cli: stack-name  ## the real Pulumi CLI + our Python language host, built from Go modules into ~/.cache/mlops-ci (prints the bin dir)
	tools/pulumi/build.sh

pulumi-yaml: stack-name  ## the Pulumi YAML language host (pulumi-yaml 1.38.0) for the other-language test, built from Go modules into ~/.cache/mlops-ci (prints the bin dir)
	tools/pulumi-yaml/build.sh

act: stack-name  ## nektos/act (runs the GitHub workflows here) and its artifact server, built from Go modules into ~/.cache/mlops-ci (prints the bin dir)
	tools/act/build.sh

github-provider: stack-name  ## the real pulumi-resource-github 6.15.0, bridged from its Terraform upstream, built from Go modules into ~/.cache/mlops-ci (prints the bin dir)
	tools/github-provider/build.sh

test-engine: stack-name $(VENV)/.policy $(VENV)/.dev  ## only the tests that run the real Pulumi CLI (tests/engine; builds it first if needed)
	$(VENV)/bin/python -m pytest -m engine tests/engine

bench-ci: stack-name $(VENV)/.dev $(E2E_VENV)/.installed act  ## the committed CI job vs the guide's: wall time and bytes from the bucket (needs the e2e wheelhouse: make test)
	$(VENV)/bin/python bench/ci_data.py

wheel: stack-name $(VENV)/.runtime  ## the package mlops-ci as a wheel in build/dist/ (what a project made by `pulumi new` installs)
	@$(VENV)/bin/python tools/wheel.py build/dist

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

$(VENV)/.mutation: $(VENV)/.dev requirements-mutation.txt
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r requirements-mutation.txt -c constraints.txt
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

# The report's posting step calls the platform's API with it (tests/e2e/test_reports.py).
/usr/bin/curl:
	apt-get update -qq && apt-get install -y -qq curl

# The committed CI files' shell lines are linted with it (tests/test_ci_linters.py).
/usr/bin/shellcheck:
	apt-get update -qq && apt-get install -y -qq shellcheck

# --- The local cloud (localcloud/): plugins `gcp`, `github`, `gitlab` for the real Pulumi engine. ---
LOCALCLOUD := MLOPS_CI_LOCAL="$$(realpath -m -- "$${LOCAL:-build/local/$$STACK}")" $(VENV)/bin/python -m localcloud

.PHONY: test-localcloud localcloud-start localcloud-stop localcloud-status

test-localcloud: stack-name $(VENV)/.dev $(E2E_VENV)/.installed  ## the plugins over gRPC; with a Pulumi CLI also pulumi up/destroy of the program
	$(VENV)/bin/python -m pytest -m localcloud tests/localcloud

localcloud-start: stack-name local-dir $(VENV)/.dev $(E2E_VENV)/.installed  ## storage emulator + token endpoint for LOCAL (build/local/<STACK>), in the background (stop when idle)
	$(LOCALCLOUD) start

localcloud-stop: stack-name local-dir $(VENV)/.dev
	$(LOCALCLOUD) stop

localcloud-status: stack-name local-dir $(VENV)/.dev
	$(LOCALCLOUD) status

.PHONY: local-up local-preview local-destroy local-push local-ci demo

local-up local-preview local-destroy: local-%: stack-name local-dir $(VENV)/.dev $(VENV)/.policy $(E2E_VENV)/.installed  ## the real program for STACK against LOCAL, with the policy pack (needs a Pulumi CLI)
	$(LOCALCLOUD) pulumi $* --stack "$$STACK"

local-push: stack-name local-dir $(VENV)/.dev $(E2E_VENV)/.installed  ## the stack's nextSteps in the team's clone: dvc remote add, dvc push, git push
	$(LOCALCLOUD) push --stack "$$STACK"

local-ci: stack-name local-dir $(VENV)/.dev $(E2E_VENV)/.installed node_modules/.installed act  ## run the committed CI file with the stored CI variables (exit 0 = green)
	$(LOCALCLOUD) ci --stack "$$STACK"

demo: stack-name local-dir $(VENV)/.dev $(VENV)/.policy $(E2E_VENV)/.installed node_modules/.installed act  ## up, push, CI green, destroy, CI red (access revoked) for STACK
	$(LOCALCLOUD) demo --stack "$$STACK"

.PHONY: help clean clean-cache
help:  ## every target and what it does
	@awk -F':.*## ' '/^[a-z][^:=]*:.*## / {printf "  %-34s  %s\n", $$1, $$2}' $(firstword $(MAKEFILE_LIST))

clean:  ## what make built in this checkout: virtualenvs, node_modules, build/ (plans, local clouds), tool caches
	rm -rf $(VENV) $(E2E_VENV) node_modules build mlops_ci.egg-info .pytest_cache .ruff_cache .hypothesis mutants

clean-cache:  ## the Pulumi CLI, act and the GitHub provider built into ~/.cache/mlops-ci (rebuilt by make test)
	rm -rf "$${XDG_CACHE_HOME:-$$HOME/.cache}/mlops-ci"
