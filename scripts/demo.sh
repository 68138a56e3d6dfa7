#!/usr/bin/env bash
# The main job in one command: install qlikm2m into ./.venv, then run `tenant me` and `user me`.
# With QLIK_SERVER, QLIK_CLIENT_ID and QLIK_CLIENT_SECRET already set, it talks to that tenant;
# otherwise it starts the built-in sandbox tenant on a free loopback port and stops it afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ensure_venv
QLIKM2M="$VENV/bin/qlikm2m"

# Keep the demo's token cache and contexts away from the user's own.
export QLIKM2M_CACHE_DIR="${QLIKM2M_CACHE_DIR:-$(mktemp -d)}"
export QLIKM2M_CONFIG_DIR="${QLIKM2M_CONFIG_DIR:-$(mktemp -d)}"

sandbox_pid=""
cleanup() {
    if [ -n "$sandbox_pid" ]; then
        kill -TERM "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

if [ -z "${QLIK_SERVER:-}" ] || [ -z "${QLIK_CLIENT_ID:-}" ] || [ -z "${QLIK_CLIENT_SECRET:-}" ]; then
    echo "No QLIK_SERVER/QLIK_CLIENT_ID/QLIK_CLIENT_SECRET set: using the built-in sandbox tenant." >&2
    fifo="$(mktemp -u)"
    mkfifo "$fifo"
    "$QLIKM2M" sandbox serve --port 0 >"$fifo" &
    sandbox_pid=$!
    exec 3<"$fifo"
    rm -f "$fifo"
    # The sandbox prints its export-ready settings first; read until the client secret line.
    while IFS= read -r -t 30 line <&3; do
        case "$line" in
            QLIK_*=*) export "${line?}" ;;
        esac
        case "$line" in QLIK_CLIENT_SECRET=*) break ;; esac
    done
    [ -n "${QLIK_CLIENT_SECRET:-}" ] || { echo "the sandbox did not start" >&2; exit 1; }
fi

echo "+ qlikm2m tenant me" >&2
"$QLIKM2M" tenant me
echo "+ qlikm2m user me" >&2
"$QLIKM2M" user me
