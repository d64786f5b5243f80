#!/usr/bin/env bash
# Builds the Pulumi YAML language host (pulumi-language-yaml, github.com/pulumi/pulumi-yaml) from Go
# modules (no prebuilt binary), into a cache outside the repository keyed by its version:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci/pulumi-yaml-<version>/bin/
# The CLI finds it on PATH for `runtime: yaml` programs. Skips what is built; prints the bin directory last.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's#^\(require\)\{0,1\}[[:space:]]*github.com/pulumi/pulumi-yaml v\([0-9.]*\)$#\2#p' "$here/go.mod")"
[[ -n "$version" ]] || { echo "build.sh: no github.com/pulumi/pulumi-yaml version in $here/go.mod" >&2; exit 1; }
bin="${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci/pulumi-yaml-$version/bin"
mkdir -p "$bin"

export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
cd "$here"
if [[ -x "$bin/pulumi-language-yaml" ]]; then
  echo "pulumi-language-yaml $version: cached" >&2
else
  echo "pulumi-language-yaml $version: building (a few minutes on 2 cores)" >&2
  go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=v$version" \
    -o "$bin/pulumi-language-yaml.tmp" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml
  mv "$bin/pulumi-language-yaml.tmp" "$bin/pulumi-language-yaml"
fi
echo "$bin"
