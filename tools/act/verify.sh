#!/usr/bin/env bash
# Checks, offline and without Docker, what tools/act/README.md says about act: builds act if needed,
# lays out a scratch git repository with a small workflow, runs it for a push and for a pull_request
# event, and asserts on act's output. Leaves nothing behind (a temp dir, removed on exit).
#   tools/act/verify.sh            # prints the act logs and "act facts: N passed, 0 failed"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
act="$("$here/build.sh" | tail -n 1)/act"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
repo="$tmp/repo" pin=3d3c42e0f3c1f1ca2b3b1b8f4c1a7f6b2e5d9c01
mkdir -p "$tmp/home" "$repo/.github/workflows" "$repo/.github/actions/x" "$tmp/setup-python"

# A local composite action, used as `uses: ./.github/actions/x`.
cat >"$repo/.github/actions/x/action.yml" <<'EOF'
name: x
description: local composite action
inputs:
  who: {description: who, required: true}
outputs:
  greeting: {description: greeting, value: "${{ steps.g.outputs.greeting }}"}
runs:
  using: composite
  steps:
    - id: g
      shell: bash
      run: echo "greeting=hello from ${{ inputs.who }}" >> "$GITHUB_OUTPUT"
EOF

# A stand-in for actions/setup-python at a pinned commit, mapped with --local-repository.
cat >"$tmp/setup-python/action.yml" <<'EOF'
name: setup-python stand-in
description: prints its input and sets an output, like a node action does
inputs:
  python-version: {description: version, required: false}
outputs:
  python-version: {description: version}
runs:
  using: node20
  main: index.js
EOF
cat >"$tmp/setup-python/index.js" <<'EOF'
const fs = require("fs");
const v = process.env["INPUT_PYTHON-VERSION"];
console.log(`stand-in setup-python: python-version=${v} node=${process.version}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `python-version=${v}\n`);
EOF

cp "$here/artifact_v4.py" "$repo/artifact_v4.py"
cat >"$repo/.github/workflows/t.yaml" <<EOF
name: t
on: [push, pull_request]
permissions:
  id-token: write
jobs:
  facts:
    runs-on: ubuntu-latest
    outputs:
      greeting: \${{ steps.x.outputs.greeting }}
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
      - run: echo hi
      - id: x
        uses: ./.github/actions/x
        with:
          who: composite
      - id: py
        uses: actions/setup-python@$pin
        with:
          python-version: "3.11"
      - name: environment
        env:
          S: \${{ secrets.MY_SECRET }}
          V: \${{ vars.MY_VAR }}
        run: |
          for k in RUNNER_OS RUNNER_TOOL_CACHE RUNNER_TEMP GITHUB_WORKSPACE GITHUB_ENV GITHUB_OUTPUT GITHUB_PATH \\
                   GITHUB_STEP_SUMMARY GITHUB_EVENT_PATH GITHUB_EVENT_NAME GITHUB_REF GITHUB_BASE_REF GITHUB_HEAD_REF \\
                   GITHUB_REPOSITORY GITHUB_RUN_ID GITHUB_TOKEN ACTIONS_RUNTIME_URL ACTIONS_RESULTS_URL \\
                   ACTIONS_CACHE_URL ACTIONS_ID_TOKEN_REQUEST_URL ACTIONS_ID_TOKEN_REQUEST_TOKEN CI GITHUB_ACTIONS \\
                   FROM_ACT_PROCESS; do
            printf 'env %s=%s\n' "\$k" "\${!k-<unset>}"
          done
          echo "runtime token set: \${ACTIONS_RUNTIME_TOKEN:+yes}"
          echo "secret sha256: \$(printf %s "\$S" | sha256sum | cut -c1-12)"
          echo "var: \$V"
          echo "token sha256: \$(printf %s '\${{ github.token }}' | sha256sum | cut -c1-12)"
          echo "setup-python output: \${{ steps.py.outputs.python-version }}"
          echo "event: \${{ github.event_name }} ref=\${{ github.ref }} pr=\${{ github.event.pull_request.number }} head=\${{ github.head_ref }} base=\${{ github.base_ref }}"
          echo "FROM_ENV_FILE=yes" >> "\$GITHUB_ENV"
      - run: echo "next step sees FROM_ENV_FILE=\$FROM_ENV_FILE"
      - name: upload (Artifact v4 protocol)
        run: echo "payload-\${{ github.run_id }}" > payload.txt && python3 artifact_v4.py upload payload payload.txt
      - name: upload and list (Artifact v3 protocol, the one of upload-artifact@v3)
        run: |
          base="\${ACTIONS_RUNTIME_URL}_apis/pipelines/workflows/\${GITHUB_RUN_ID}/artifacts?api-version=6.0-preview"
          url="\$(curl -sf -X POST "\$base" -d '{"Type":"actions_storage","Name":"v3art"}' \\
            | python3 -c 'import json, sys; print(json.load(sys.stdin)["fileContainerResourceUrl"])')"
          echo "v3 container: \$url"
          echo v3-data > v3.txt
          curl -sf -X PUT "\$url?itemPath=v3art/v3.txt" --data-binary @v3.txt && echo
          curl -sf -X PATCH "\$base&artifactName=v3art" -d '{"Size":8}' && echo
          echo "v3 list: \$(curl -sf "\$base")"
  after:
    needs: facts
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
      - run: |
          echo "needs output: \${{ needs.facts.outputs.greeting }}"
      - name: download (Artifact v4 protocol)
        run: |
          python3 artifact_v4.py download payload got.txt
          echo "artifact content: \$(cat got.txt)"
EOF
cat >"$tmp/event.json" <<'EOF'
{"number": 7, "pull_request": {"number": 7, "head": {"ref": "feature", "sha": "0000000000000000000000000000000000000001"},
 "base": {"ref": "main", "sha": "0000000000000000000000000000000000000002"}},
 "repository": {"full_name": "acme/demo", "default_branch": "main"}}
EOF
printf 'MY_SECRET=secret-in-file\n' >"$tmp/secrets"
printf 'MY_VAR=var-in-file\n' >"$tmp/vars"
(cd "$repo" && git init -q -b main && git remote add origin https://github.com/acme/demo.git && git add -A \
  && git -c user.name=t -c user.email=t@t commit -qm init)

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
run_act() { # EVENT LOG [act args...]
  local event="$1" log="$2"
  shift 2
  (cd "$repo" && ACT_DISABLE_VERSION_CHECK=1 HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home" XDG_CACHE_HOME="$tmp/home/.cache" \
    "$act" "$event" -P ubuntu-latest=-self-hosted --action-offline-mode --no-cache-server \
    -W .github/workflows/t.yaml --artifact-server-path "$tmp/artifacts" --artifact-server-addr 127.0.0.1 \
    --artifact-server-port "$port" --local-repository "actions/setup-python@$pin=$tmp/setup-python" "$@") >"$log" 2>&1 || echo "act exited with $?" >>"$log"
}
passed=0 failed=0
expect() { # LOG TEXT: the act log holds TEXT (fixed string)
  if grep -qF -- "$2" "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "MISSING in $(basename "$1"): $2" >&2; fi
}
sha() { printf %s "$1" | sha256sum | cut -c1-12; }

FROM_ACT_PROCESS=leaks-into-jobs run_act push "$tmp/push.log" -s MY_SECRET=s3cr3t-value -s GITHUB_TOKEN=ghs_fake_token --var MY_VAR=v4lue
run_act pull_request "$tmp/pr.log" -e "$tmp/event.json" --secret-file "$tmp/secrets" --var-file "$tmp/vars" \
  --env GITHUB_RUN_ID=2 --env ACTIONS_ID_TOKEN_REQUEST_URL=http://127.0.0.1:9/token --env ACTIONS_ID_TOKEN_REQUEST_TOKEN=oidc-request-token
sed 's/^/push | /' "$tmp/push.log"
sed 's/^/pr   | /' "$tmp/pr.log"

for log in "$tmp/push.log" "$tmp/pr.log"; do
  expect "$log" "Job succeeded"
  expect "$log" "| hi"
  expect "$log" "LocalRepositoryCache matched https://github.com/actions/setup-python with ref $pin to $tmp/setup-python"
  expect "$log" "stand-in setup-python: python-version=3.11 node=v"
  expect "$log" "setup-python output: 3.11"
  expect "$log" "env RUNNER_OS=Linux"
  expect "$log" "env GITHUB_REPOSITORY=acme/demo"
  expect "$log" "env RUNNER_TOOL_CACHE=$tmp/home/.cache/act/tool_cache"
  expect "$log" "env RUNNER_TEMP=$tmp/home/.cache/act/"
  expect "$log" "env GITHUB_ENV=$tmp/home/.cache/act/"
  expect "$log" "env GITHUB_OUTPUT=$tmp/home/.cache/act/"
  expect "$log" "env ACTIONS_RUNTIME_URL=http://127.0.0.1:$port/"
  expect "$log" "env ACTIONS_RESULTS_URL=http://127.0.0.1:$port/"
  expect "$log" "runtime token set: yes"
  expect "$log" "next step sees FROM_ENV_FILE=yes"
  expect "$log" "uploaded payload: "
  expect "$log" "needs output: hello from composite"
  expect "$log" "artifact content: payload-"
done
expect "$tmp/push.log" "secret sha256: $(sha s3cr3t-value)"
expect "$tmp/push.log" "token sha256: $(sha ghs_fake_token)"
expect "$tmp/push.log" "env GITHUB_TOKEN=<unset>"
expect "$tmp/push.log" "env FROM_ACT_PROCESS=leaks-into-jobs"
expect "$tmp/pr.log" "env FROM_ACT_PROCESS=<unset>"
expect "$tmp/push.log" "var: v4lue"
expect "$tmp/push.log" "event: push ref=refs/heads/main pr= head= base="
expect "$tmp/push.log" "env ACTIONS_ID_TOKEN_REQUEST_URL=<unset>"
expect "$tmp/push.log" "env ACTIONS_ID_TOKEN_REQUEST_TOKEN=<unset>"
expect "$tmp/pr.log" "artifact content: payload-2"
expect "$tmp/push.log" "v3 container: http://127.0.0.1:$port/upload/1"
expect "$tmp/push.log" "v3 list: {\"count\":2,\"value\":[{\"name\":\"payload\""
find "$tmp/artifacts" -type f | sort | sed "s|^$tmp/|artifact file \| |"
for f in 1/payload/payload.zip 2/payload/payload.zip 1/v3art/v3.txt 2/v3art/v3.txt; do
  if [[ -f "$tmp/artifacts/$f" ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "MISSING file: $f" >&2; fi
done
expect "$tmp/pr.log" "secret sha256: $(sha secret-in-file)"
expect "$tmp/pr.log" "var: var-in-file"
expect "$tmp/pr.log" "event: pull_request ref=refs/pull/7/merge pr=7 head=feature base=main"
expect "$tmp/pr.log" "env GITHUB_HEAD_REF=feature"
expect "$tmp/pr.log" "env GITHUB_BASE_REF=main"
expect "$tmp/pr.log" "env ACTIONS_ID_TOKEN_REQUEST_URL=http://127.0.0.1:9/token"
expect "$tmp/pr.log" "env ACTIONS_ID_TOKEN_REQUEST_TOKEN=oidc-request-token"
echo "act facts: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
