"""The access token written for shells, CI systems and credential-helper protocols.

Tokens are opaque (Qlik documents no alphabet), so every form quotes defensively and refuses a
value it cannot carry safely rather than emitting a line that a shell would split or expand.
Used by ``auth token --format``; knows nothing of Typer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from qlikm2m.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from qlikm2m.tokens import Token

ENV_NAME = "QLIK_ACCESS_TOKEN"
SERVER_ENV_NAME = "QLIK_SERVER"
GITHUB_ENV = "GITHUB_ENV"
PROCESS_VERSION = 1
# Characters every form can carry without quoting (base64url, JWT, URL characters).
_PLAIN = re.compile(r"^[A-Za-z0-9._~+/=:@,-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def iso8601(epoch: float | None) -> str | None:
    """``2026-01-31T12:00:00Z`` (UTC, seconds), or None for an unknown expiry."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _refuse(form: str, why: str) -> UsageError:
    return UsageError(
        f"The access token cannot be written safely as {form}: it {why}.",
        hint="Use --format raw or json, which carry any value.",
    )


def _one_line(value: str, form: str) -> str:
    if _CONTROL.search(value):
        raise _refuse(form, "holds a line break or control character")
    return value


def powershell(value: str) -> str:
    """``$env:QLIK_ACCESS_TOKEN = '...'``: a single-quoted string expands nothing; ' is doubled."""
    value = _one_line(value, "PowerShell")
    # PowerShell also treats the typographic single quotes as quote characters.
    quoted = re.sub(r"(['\u2018\u2019\u201a\u201b])", r"\1\1", value)
    return f"$env:{ENV_NAME} = '{quoted}'"


def fish(value: str) -> str:
    """``set -gx QLIK_ACCESS_TOKEN '...'``: in fish single quotes only \\ and ' are escapes."""
    value = _one_line(value, "fish")
    quoted = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"set -gx {ENV_NAME} '{quoted}'"


def cmd(value: str) -> str:
    """``set "QLIK_ACCESS_TOKEN=..."``: the quotes around the whole assignment keep & | < > ^
    literal; cmd has no way to quote " % or ! (delayed expansion), so those are refused."""
    value = _one_line(value, "cmd")
    for char in ('"', "%", "!"):
        if char in value:
            raise _refuse("cmd", f"holds {char!r}, which cmd.exe cannot quote")
    return f'set "{ENV_NAME}={value}"'


def _dotenv_value(value: str) -> str:
    value = _one_line(value, "dotenv")
    if _PLAIN.match(value):
        return value
    # Single quotes are literal in python-dotenv, Node's dotenv and docker compose; docker run
    # --env-file takes values verbatim, which the unquoted form above serves for usual tokens.
    if "'" in value:
        raise _refuse("dotenv", "holds both characters that need quoting and a single quote")
    return f"'{value}'"


def dotenv(value: str, server: str) -> str:
    """``QLIK_SERVER=...`` and ``QLIK_ACCESS_TOKEN=...`` lines of a .env file."""
    return f"{SERVER_ENV_NAME}={_dotenv_value(server)}\n{ENV_NAME}={_dotenv_value(value)}"


def process(token: Token, server: str) -> dict[str, Any]:
    """The credential-helper document: ``{"version": 1, "accessToken", "tokenType": "Bearer",
    "expiresAt": ISO 8601 UTC or null, "server"}`` (documented in docs/other-tools.md)."""
    return {
        "version": PROCESS_VERSION,
        "accessToken": token.value,
        "tokenType": "Bearer",
        "expiresAt": iso8601(token.expires_at),
        "server": server,
    }


def github_env_path(env: Mapping[str, str]) -> str:
    """The file $GITHUB_ENV names; ConfigError (exit 3) when it is unset or empty."""
    path = (env.get(GITHUB_ENV) or "").strip()
    if not path:
        raise ConfigError(
            f"${GITHUB_ENV} is not set: --format github only works in a GitHub Actions step.",
            hint="Outside GitHub Actions use --format env, dotenv or raw.",
        )
    return path


def github(value: str, env: Mapping[str, str], stdout: IO[str]) -> str:
    """GitHub Actions: print ``::add-mask::TOKEN`` on stdout (flushed) *before* appending
    ``QLIK_ACCESS_TOKEN=TOKEN`` to the file $GITHUB_ENV names, so the runner masks the token in
    every later log line. Returns that file's path.

    Raises ConfigError (exit 3) when GITHUB_ENV is unset or the file cannot be appended to, and
    UsageError (exit 2) for a token with a line break (it would inject variables).
    """
    path = github_env_path(env)
    value = _one_line(value, "a GitHub Actions variable")
    stdout.write(f"::add-mask::{value}\n")
    stdout.flush()
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{ENV_NAME}={value}\n")
    except OSError as error:
        raise ConfigError(
            f"Cannot append to ${GITHUB_ENV} ({path}): {error.strerror or error}.",
            hint="The runner creates that file for each step; do not set GITHUB_ENV yourself.",
        ) from None
    return path
