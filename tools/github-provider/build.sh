#!/usr/bin/env bash
# Builds the Pulumi GitHub resource plugin from its upstream Terraform provider, from Go modules only
# (no prebuilt binary), into a cache outside the repository keyed by the pulumi-github version:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci/pulumi-resource-github-<version>/
#     bin/pulumi-resource-github   the plugin (stripped), with its schema embedded
#     gen/schema.json, gen/schema-embed.json, gen/bridge-metadata.json   written by pulumi-tfgen-github
#     tfgen/pulumi-tfgen-github    the schema generator
# Steps: build pulumi-tfgen-github, run `pulumi-tfgen-github schema`, build the plugin with the generated
# files passed by `go build -overlay`. Rebuilds when this directory's sources or go.mod/go.sum change;
# skips otherwise. Prints the bin directory on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's#^[[:space:]]*Version = "\([0-9.]*\)"$#\1#p' "$here/provider/provider.go")"
[[ -n "$version" ]] || { echo "build.sh: no Version in $here/provider/provider.go" >&2; exit 1; }
root="${XDG_CACHE_HOME:-$HOME/.cache}/mlops-ci/pulumi-resource-github-$version"
bin="$root/bin" gen="$root/gen" tfgen="$root/tfgen"
mkdir -p "$bin" "$gen" "$tfgen"

export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
cd "$here"

stamp="$(cat go.mod go.sum build.sh provider/*.go cmd/*/main.go | sha256sum | cut -c1-16)"
if [[ -x "$bin/pulumi-resource-github" && -f "$bin/.stamp-$stamp" ]]; then
  echo "pulumi-resource-github $version: cached" >&2
  echo "$bin"
  exit 0
fi

echo "pulumi-resource-github $version: building pulumi-tfgen-github (minutes on 2 cores)" >&2
nice go build -trimpath -ldflags "-s -w" -o "$tfgen/pulumi-tfgen-github" ./cmd/pulumi-tfgen-github

echo "pulumi-resource-github $version: generating the schema" >&2
upstream="$(go list -m -f '{{.Dir}}' github.com/integrations/terraform-provider-github/v6)"
rm -f "$gen"/*.json
# --skip-examples: converting the docs' HCL examples needs a converter plugin from the internet.
TFGEN_UPSTREAM_DIR="$upstream" PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=1 \
  nice "$tfgen/pulumi-tfgen-github" schema --out "$gen" --skip-examples >"$gen/tfgen.log" 2>&1 \
  || { tail -n 40 "$gen/tfgen.log" >&2; exit 1; }
[[ -s "$gen/schema-embed.json" && -s "$gen/bridge-metadata.json" ]] \
  || { echo "build.sh: tfgen wrote no schema-embed.json/bridge-metadata.json (see $gen/tfgen.log)" >&2; exit 1; }

echo "pulumi-resource-github $version: building the plugin" >&2
cmd="$here/cmd/pulumi-resource-github"
printf '{"Replace":{"%s":"%s","%s":"%s"}}\n' \
  "$cmd/schema-embed.json" "$gen/schema-embed.json" \
  "$cmd/bridge-metadata.json" "$gen/bridge-metadata.json" >"$gen/overlay.json"
nice go build -trimpath -overlay "$gen/overlay.json" -ldflags "-s -w" \
  -o "$bin/pulumi-resource-github.tmp" ./cmd/pulumi-resource-github
mv "$bin/pulumi-resource-github.tmp" "$bin/pulumi-resource-github"
rm -f "$bin"/.stamp-*
touch "$bin/.stamp-$stamp"
echo "$bin"
