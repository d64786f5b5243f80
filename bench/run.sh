#!/usr/bin/env bash
# Benchmark of the offline check: one stack against 100 generated team stacks in one batch (wall
# clock and peak memory with /usr/bin/time -v), then the longest resource chain per mode.
# Usage: bench/run.sh [RUNS]   (after `make check` or `make test` created .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
python=.venv/bin/python

if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && apt-get install -y -qq time
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/one"
cp stacks/Pulumi.vision-team.yaml "$work/one/"
"$python" bench/generate_stacks.py "$work/hundred" 100

echo "## Machine"
echo "- CPUs (nproc): $(nproc); memory: $(free -m | awk '/^Mem:/ {print $2}') MiB; $("$python" --version)"
echo "- $(grep -m1 'model name' /proc/cpuinfo | sed 's/\t//g')"
echo
echo "## Wall clock and peak memory: python -m mlops_ci.offline.check --stacks DIR --jobs N"
"$python" bench/measure.py "$work/one" "$work/hundred" --runs "$runs" --jobs 1 "$(nproc)"
echo
echo "## Longest chain of dependent resources"
PYTHONPATH=. "$python" bench/steps.py
