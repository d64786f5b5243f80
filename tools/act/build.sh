#!/usr/bin/env bash
# Builds nektos/act (runs GitHub Actions workflows locally) from Go modules, no prebuilt binary, into
# a cache outside the repository keyed by act's version:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci/act-<version>/bin/act
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci/act-<version>/bin/act-artifact-server (artifactserver/:
#     act's own artifact server as a process of its own)
# The version and every dependency are pinned by this directory's go.mod/go.sum (act is a `tool`
# of the module). Skips the build when the binaries are there. Prints the bin directory on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's#^[[:space:]]*github.com/nektos/act v\([0-9.]*\)\( // indirect\)\{0,1\}$#\1#p' "$here/go.mod")"
[[ -n "$version" ]] || { echo "build.sh: no github.com/nektos/act version in $here/go.mod" >&2; exit 1; }
bin="${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci/act-$version/bin"
mkdir -p "$bin"

export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
cd "$here"

if [[ -x "$bin/act" && -x "$bin/act-artifact-server" ]]; then
  echo "act $version: cached" >&2
else
  echo "act $version: building (about 2 minutes on 2 cores)" >&2
  nice go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$bin/act.tmp" github.com/nektos/act
  nice go build -trimpath -ldflags "-s -w" -o "$bin/act-artifact-server.tmp" ./artifactserver
  mv "$bin/act.tmp" "$bin/act"
  mv "$bin/act-artifact-server.tmp" "$bin/act-artifact-server"
fi
echo "$bin"
