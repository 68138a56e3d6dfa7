#!/usr/bin/env bash
# The benchmarks in one command: qlikm2m against Qlik's own clients, over HTTPS on loopback.
#   benchmarks/run.sh            full run, writes benchmarks/RESULTS.md (about 10 minutes)
#   benchmarks/run.sh --quick    a few runs of each, writes benchmarks/.work/RESULTS-quick.md
#   benchmarks/run.sh transfers  uploads/downloads against curl, into RESULTS.md (a few minutes)
# Other options: benchmarks/run.sh --help. Everything it installs goes under benchmarks/.work/:
# Qlik's Python SDK and @qlik/api are what we measure against, never dependencies of the project.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for arg in "$@"; do
    case "$arg" in
        -h|--help) exec python3 "$HERE/bench.py" --venv - --sdk-python - --node-dir - --help ;;
    esac
done
# The project itself, with its test extras (trustme makes the test CA), in ./.venv as the other
# scripts do; QLIKM2M_VENV points elsewhere.
source "$HERE/../scripts/_venv.sh"
ensure_venv test

# The transfer benchmarks (app delivery) need only the project, curl and GNU time:
#   benchmarks/run.sh transfers [--size-mib 1024] [--runs-small 2] [--runs-large 1]
if [ "${1:-}" = "transfers" ]; then
    shift
    exec "$VENV/bin/python" "$HERE/transfers.py" --venv "$VENV" "$@"
fi

WORK="$HERE/.work"
mkdir -p "$WORK"
QLIK_SDK_SPEC="${QLIK_SDK_SPEC:-qlik-sdk==0.17.0}"
QLIK_API_SPEC="${QLIK_API_SPEC:-@qlik/api@2.19.0}"

# (b) Qlik's Python SDK in a venv of its own: its pins (requests 2.27, urllib3 1.26) stay there.
SDK_VENV="$WORK/sdk-venv"
if [ ! -x "$SDK_VENV/bin/python" ] || [ "$(cat "$SDK_VENV/.spec" 2>/dev/null)" != "$QLIK_SDK_SPEC" ]; then
    echo "installing $QLIK_SDK_SPEC into $SDK_VENV" >&2
    rm -rf "$SDK_VENV"
    python3 -m venv "$SDK_VENV"
    "$SDK_VENV/bin/python" -m pip install -q --disable-pip-version-check "$QLIK_SDK_SPEC" 2>&1 \
        | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
    "$SDK_VENV/bin/python" -c "import qlik_sdk"
    echo "$QLIK_SDK_SPEC" > "$SDK_VENV/.spec"
fi

# (c) @qlik/api in an npm project of its own.
NODE_DIR="$WORK/node"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are needed for the @qlik/api contender (apt-get install nodejs npm)" >&2
    exit 1
fi
if [ ! -f "$NODE_DIR/node_modules/@qlik/api/package.json" ] || [ "$(cat "$NODE_DIR/.spec" 2>/dev/null)" != "$QLIK_API_SPEC" ]; then
    echo "installing $QLIK_API_SPEC into $NODE_DIR" >&2
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    printf '{"name": "qlikm2m-bench-node", "private": true, "type": "module"}\n' > "$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error "$QLIK_API_SPEC" >&2)
    echo "$QLIK_API_SPEC" > "$NODE_DIR/.spec"
fi
# Node resolves packages from the script's own folder: the script runs from the npm project.
cp "$HERE/clients/qlik_api_tenant_me.mjs" "$NODE_DIR/"

# GNU time measures the listing's peak RSS (see bench.py run_with_peak_rss).
if [ ! -x /usr/bin/time ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing GNU time" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
for tool in curl; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install $tool)" >&2; exit 1; }
done

exec "$VENV/bin/python" "$HERE/bench.py" --venv "$VENV" --sdk-python "$SDK_VENV/bin/python" \
    --node-dir "$NODE_DIR" "$@"
