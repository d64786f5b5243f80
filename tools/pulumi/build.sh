#!/usr/bin/env bash
# Builds the Pulumi CLI and mlops-ci's Python language host from Go modules (no download of
# prebuilt binaries), into a cache outside the repository keyed by the CLI version:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci/pulumi-<version>/bin/
# Skips what is already built. Prints the bin directory on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's#^[[:space:]]*github.com/pulumi/pulumi/pkg/v3 v\([0-9.]*\)\( // indirect\)\{0,1\}$#\1#p' "$here/go.mod")"
[[ -n "$version" ]] || { echo "build.sh: no github.com/pulumi/pulumi/pkg/v3 version in $here/go.mod" >&2; exit 1; }
bin="${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci/pulumi-$version/bin"
mkdir -p "$bin"

export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version"
cd "$here"

if [[ -x "$bin/pulumi" ]]; then
  echo "pulumi $version: cached" >&2
else
  echo "pulumi $version: building (several minutes on 2 cores)" >&2
  go build -trimpath -ldflags "$ldflags" -o "$bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  mv "$bin/pulumi.tmp" "$bin/pulumi"
fi

# The language host is our own code: rebuilt whenever its sources or the module pins change.
stamp="$(cat go.mod go.sum langhost/* | sha256sum | cut -c1-16)"
if [[ -x "$bin/pulumi-language-python" && -f "$bin/.langhost-$stamp" ]]; then
  echo "pulumi-language-python: cached" >&2
else
  echo "pulumi-language-python: building" >&2
  go build -trimpath -ldflags "$ldflags" -o "$bin/pulumi-language-python.tmp" ./langhost
  install -m 0755 langhost/pulumi-language-python-exec "$bin/pulumi-language-python-exec"
  mv "$bin/pulumi-language-python.tmp" "$bin/pulumi-language-python"
  rm -f "$bin"/.langhost-*
  touch "$bin/.langhost-$stamp"
fi
echo "$bin"
