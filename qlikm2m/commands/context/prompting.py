"""Questions at the terminal, and secrets from flags (stdin or a named variable, never argv)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from qlikm2m.contexts import AuthType
    from qlikm2m.runtime import Runtime

# ---- the runtime of a context command ------------------------------------------------------


def context_runtime(ctx: typer.Context, *, no_input: bool = False) -> Runtime:
    from qlikm2m.runtime import Runtime

    runtime = ctx.ensure_object(Runtime)
    # The global --no-input must come before the command; accept it after it too.
    runtime.no_input = runtime.no_input or no_input
    return runtime


# ---- secrets from flags ----------------------------------------------------------------------


@dataclass(frozen=True)
class SecretFlags:
    client_secret_stdin: bool = False
    client_secret_env: str | None = None
    api_key_stdin: bool = False
    api_key_env: str | None = None

    @property
    def implied_auth(self) -> AuthType | None:
        if self.api_key_stdin or self.api_key_env:
            return "apikey"
        if self.client_secret_stdin or self.client_secret_env:
            return "oauth"
        return None

    def check(self) -> None:
        from qlikm2m.errors import UsageError

        given = [
            flag
            for flag, on in (
                ("--client-secret-stdin", self.client_secret_stdin),
                ("--client-secret-env", self.client_secret_env),
                ("--api-key-stdin", self.api_key_stdin),
                ("--api-key-env", self.api_key_env),
            )
            if on
        ]
        if len(given) > 1:
            raise UsageError(f"Give the secret one way only, not {' and '.join(given)}.")

    def read(self, runtime: Runtime, auth_type: AuthType) -> str | None:
        """The secret the flags point at, or None when no flag gave one."""
        from qlikm2m.errors import UsageError
        from qlikm2m.redaction import register_secret

        self.check()
        implied = self.implied_auth
        if implied is not None and implied != auth_type:
            kind = "an API key" if implied == "apikey" else "a client secret"
            raise UsageError(f"This is an {auth_type} context, but {kind} was given.")
        stdin_flag = "--api-key-stdin" if auth_type == "apikey" else "--client-secret-stdin"
        env_name = self.api_key_env if auth_type == "apikey" else self.client_secret_env
        if self.api_key_stdin or self.client_secret_stdin:
            from qlikm2m.settings import read_stdin_secret

            value = read_stdin_secret(
                runtime,
                stdin_flag,
                hint=f'e.g. `printf %s "$SECRET" | qlikm2m context ... {stdin_flag}`, or '
                "leave the flag out to be asked for it (hidden).",
            )
        elif env_name:
            from qlikm2m.settings import strip_secret

            value = strip_secret(runtime.env.get(env_name, ""))
            if not value:
                raise UsageError(f"The environment variable {env_name} is not set or empty.")
        else:
            return None
        register_secret(value)
        return value


@dataclass(frozen=True)
class KeyFlags:
    """Where a private key comes from (a file or stdin, never argv) and how it is registered."""

    file: str | None = None
    stdin: bool = False
    passphrase_env: str | None = None
    key_id: str | None = None
    key_alg: str | None = None

    @property
    def given(self) -> bool:
        return self.file is not None or self.stdin

    def check(self, secrets: SecretFlags, *, describes_stored_key: bool = False) -> None:
        """Refuse flags that do not go together; ``describes_stored_key``: --key-id/--key-alg
        alone are fine (``context update`` of a context that holds a key)."""
        from qlikm2m.errors import UsageError

        if self.file is not None and self.stdin:
            raise UsageError("Give the private key one way only: --private-key-file or -stdin.")
        if self.given and secrets.implied_auth is not None:
            raise UsageError(
                "A private key and a client secret or API key do not go together.",
                hint="A context signs in with one credential.",
            )
        describes = self.key_id or self.key_alg
        if (self.passphrase_env or (describes and not describes_stored_key)) and not self.given:
            raise UsageError(
                "--key-id, --key-alg and --private-key-passphrase-env describe a private key: "
                "give it with --private-key-file FILE or --private-key-stdin."
            )

    def read(self, runtime: Runtime) -> tuple[str, str] | None:
        """(PEM text, where it came from) from the flags, or None when none was given."""
        from qlikm2m.settings import MAX_KEY_FILE, read_private_key_file

        if self.file is not None:
            source = f"--private-key-file {self.file}"
            return read_private_key_file(
                self.file, source, hint="Give a PEM file you can read."
            ), source
        if not self.stdin:
            return None
        from qlikm2m.assertion import register_key_text
        from qlikm2m.errors import UsageError

        if runtime.stdin_is_tty or runtime.stdin is None:
            raise UsageError(
                "--private-key-stdin reads the key from a pipe, but stdin is a terminal.",
                hint="e.g. `qlikm2m context ... --private-key-stdin < key.pem`, or use "
                "--private-key-file FILE.",
            )
        try:
            text = runtime.stdin.read(MAX_KEY_FILE + 1)
        except (OSError, ValueError, UnicodeDecodeError):
            raise UsageError(
                "--private-key-stdin was given but stdin is not readable text."
            ) from None
        if len(text) > MAX_KEY_FILE:
            raise UsageError("--private-key-stdin: the key on stdin is too large.")
        if not text.strip():
            raise UsageError("--private-key-stdin was given but stdin held no key.")
        register_key_text(text)
        return text, "--private-key-stdin"

    def passphrase(self, runtime: Runtime) -> str | None:
        from qlikm2m.errors import UsageError
        from qlikm2m.redaction import register_secret

        if self.passphrase_env is None:
            return None
        value = runtime.env.get(self.passphrase_env, "")
        if not value:
            raise UsageError(f"The environment variable {self.passphrase_env} is not set or empty.")
        register_secret(value)
        return value


def secret_prompt(auth_type: AuthType) -> tuple[str, str, str]:
    if auth_type == "apikey":
        return "API-key:", "the API key", "--api-key-stdin or --api-key-env VAR"
    return (
        "Client Secret:",
        "the client secret",
        "--client-secret-stdin or --client-secret-env VAR",
    )
