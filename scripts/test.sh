#!/usr/bin/env bash
# Install qlikm2m with its test extras into ./.venv and run the whole test suite.
# Keyring tests need a real Secret Service: when gnome-keyring and dbus are installed (as root on
# Debian/Ubuntu this script installs them, with strace and nodejs for the transaction and exec
# tests), the suite runs inside a private D-Bus session with an unlocked gnome-keyring, so
# nothing touches the user's own keyring. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"

# What the tests need from the system, by the command that shows it is there: gnome-keyring and
# dbus (keyring tests), strace (transaction tests, issue 9), node/npm (the exec test, issue 13).
# Only what is missing is installed: this image's nodejs (nodesource) bundles npm, and Debian's
# npm package would conflict with it.
missing=()
command -v dbus-run-session >/dev/null || missing+=(dbus dbus-user-session)
command -v gnome-keyring-daemon >/dev/null || missing+=(gnome-keyring libsecret-1-0)
command -v strace >/dev/null || missing+=(strace)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} for the keyring, transaction and exec tests" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# @qlik/api into ./.cache/node: tests reach only 127.0.0.1, so the registry is contacted here.
if command -v npm >/dev/null; then
    "$ROOT/scripts/node_deps.sh" || echo "warning: @qlik/api could not be installed: the Node exec test will be skipped" >&2
fi
ensure_venv test
cd "$ROOT"

PYTEST=("$VENV/bin/python" -m pytest "$@")
if command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then
    # shellcheck disable=SC2016  # expanded by the inner shell, inside the private session
    exec dbus-run-session -- bash -c '
        set -euo pipefail
        # A throwaway keyring in a throwaway home: created and unlocked with a known password.
        export XDG_DATA_HOME="$(mktemp -d)"
        eval "$(printf "qlikm2m-test" | gnome-keyring-daemon --unlock --components=secrets)"
        export GNOME_KEYRING_CONTROL QLIKM2M_TEST_SECRET_SERVICE=1
        exec "$@"' bash "${PYTEST[@]}"
else
    echo "warning: no dbus-run-session/gnome-keyring-daemon: the real-keyring tests will be skipped" >&2
    exec "${PYTEST[@]}"
fi
