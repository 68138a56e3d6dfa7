# Sourced by the scripts in this folder: make ./.venv exist with the project installed.
# Usage: ensure_venv [extras]   (e.g. ensure_venv test). Idempotent: reinstalls only when
# pyproject.toml changed or the extras asked for are new.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QLIKM2M_VENV:-$ROOT/.venv}"

ensure_python_venv_module() {
    if python3 -c 'import ensurepip, venv' 2>/dev/null; then
        return
    fi
    # Debian and Ubuntu ship venv's pip bootstrap separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing python3-venv (needed to create $VENV)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "python3 cannot create virtual environments: install python3-venv (sudo apt-get install python3-venv)" >&2
        exit 1
    fi
}

ensure_venv() {
    local extras="${1:-}"
    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    if [ ! -x "$VENV/bin/python" ]; then
        ensure_python_venv_module
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    fi
    local stamp="$VENV/.qlikm2m-installed-${extras:-base}"
    local want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        (cd "$ROOT" && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec")
        echo "$want" > "$stamp"
    fi
}
