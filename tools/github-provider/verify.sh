#!/usr/bin/env bash
# Checks the GitHub resource plugin built by build.sh: it starts and prints its port, the Pulumi CLI
# (tools/pulumi) reads its schema, and the schema agrees with the pulumi_github Python SDK (compare_schema.py).
#   tools/github-provider/verify.sh [--all]    # PYTHON=<python with pulumi_github 6.15.0>, default ./.venv
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
"$python" -c 'import pulumi_github' 2>/dev/null \
  || { echo "verify.sh: $python has no pulumi_github (make check installs it, or set PYTHON)" >&2; exit 1; }
plugin="$("$here/build.sh" | tail -n 1)/pulumi-resource-github"
pulumi="$("$root/tools/pulumi/build.sh" | tail -n 1)/pulumi"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# A resource plugin prints the port of its gRPC server on its first line, then serves until killed.
"$plugin" >"$tmp/port" 2>"$tmp/plugin.err" &
pid=$!
for _ in $(seq 50); do [[ -s "$tmp/port" ]] && break; sleep 0.1; done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
port="$(head -n 1 "$tmp/port")"
[[ "$port" =~ ^[0-9]+$ ]] || { echo "verify.sh: the plugin printed no port: $(cat "$tmp/port" "$tmp/plugin.err")" >&2; exit 1; }
echo "plugin $("$plugin" --version) started, port $port"

PULUMI_HOME="$tmp/pulumi-home" PULUMI_SKIP_UPDATE_CHECK=1 PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=1 \
  "$pulumi" package get-schema "$plugin" >"$tmp/schema.json"
"$python" "$here/compare_schema.py" "$tmp/schema.json" "$@"
