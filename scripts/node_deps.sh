#!/usr/bin/env bash
# Install @qlik/api (npm) into ./.cache/node for the test that runs a Node script under
# `qlikm2m exec` (tests/e2e/test_exec_node.py). Tests reach only 127.0.0.1, so the registry is
# contacted here (CI runs this before the tests), never by a test. Idempotent: reinstalls only
# when the pinned version changes. Needs node and npm (apt-get install nodejs npm).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIR="${QLIKM2M_NODE_DIR:-$ROOT/.cache/node}"
# The version the benchmarks measure (benchmarks/run.sh): one @qlik/api for both.
QLIK_API_SPEC="${QLIK_API_SPEC:-@qlik/api@2.19.0}"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are needed (apt-get install nodejs npm)" >&2
    exit 1
fi
if [ -f "$NODE_DIR/node_modules/@qlik/api/package.json" ] && [ "$(cat "$NODE_DIR/.spec" 2>/dev/null)" = "$QLIK_API_SPEC" ]; then
    exit 0
fi
echo "installing $QLIK_API_SPEC into $NODE_DIR" >&2
rm -rf "$NODE_DIR"
mkdir -p "$NODE_DIR"
printf '{"name": "qlikm2m-test-node", "private": true, "type": "module"}\n' > "$NODE_DIR/package.json"
(cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error "$QLIK_API_SPEC" >&2)
echo "$QLIK_API_SPEC" > "$NODE_DIR/.spec"
