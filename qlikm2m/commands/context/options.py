"""The options the context commands share, and the traps for secrets on argv."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class AuthChoice(StrEnum):
    oauth = "oauth"
    apikey = "apikey"


class StorageChoice(StrEnum):
    keyring = "keyring"
    file = "file"


_ARGV_SECRET_HELP = "Refused: a secret on the command line leaks to shell history and `ps`."  # noqa: S105

# ---- shared options --------------------------------------------------------------------------

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server", "-s", help="Tenant URL (https:// is added when missing).", show_default=False
    ),
]
AuthTypeOpt = Annotated[
    AuthChoice | None,
    typer.Option("--auth-type", help="oauth (M2M client) or apikey.", show_default=False),
]
ClientIdOpt = Annotated[
    str | None,
    typer.Option(
        "--oauth-client-id", "--client-id", help="OAuth M2M client id.", show_default=False
    ),
]
SecretStdinOpt = Annotated[
    bool,
    typer.Option("--client-secret-stdin", help="Read the OAuth client secret from stdin."),
]
SecretEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--client-secret-env",
        metavar="VAR",
        help="Read the OAuth client secret from the environment variable VAR.",
        show_default=False,
    ),
]
ApiKeyStdinOpt = Annotated[
    bool, typer.Option("--api-key-stdin", help="Read an API key from stdin (API-key auth).")
]
ApiKeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        metavar="VAR",
        help="Read an API key from the environment variable VAR (API-key auth).",
        show_default=False,
    ),
]
KeyFileOpt = Annotated[
    str | None,
    typer.Option(
        "--private-key-file",
        metavar="FILE",
        help="Sign in with this private key (PEM; private-key JWT) instead of a client secret. "
        "It is stored where secrets go (the keyring, or the 0600 file); the file is only read.",
        show_default=False,
    ),
]
KeyStdinOpt = Annotated[
    bool,
    typer.Option(
        "--private-key-stdin", help="Read the private key (PEM) from stdin (private-key JWT)."
    ),
]
KeyIdOpt = Annotated[
    str | None,
    typer.Option(
        "--key-id",
        metavar="KID",
        help="The kid the public key is registered under (default: its RFC 7638 thumbprint).",
        show_default=False,
    ),
]
KeyAlgOpt = Annotated[
    str | None,
    typer.Option(
        "--key-alg",
        metavar="ALG",
        help="RS256, RS512 or ES384 (default: RS256 for an RSA key, ES384 for P-384).",
        show_default=False,
    ),
]
PassphraseEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--private-key-passphrase-env",
        metavar="VAR",
        help="The passphrase of an encrypted private key, from the environment variable VAR. "
        "The key is stored decrypted, in the keyring.",
        show_default=False,
    ),
]
ScopeOpt = Annotated[
    str | None,
    typer.Option(
        "--scope", help="OAuth scopes, space-separated (default: the client's).", show_default=False
    ),
]
CaBundleOpt = Annotated[
    str | None,
    typer.Option(
        "--ca-bundle",
        help="PEM file of a private CA for this tenant (stored in the context).",
        show_default=False,
    ),
]
CommentOpt = Annotated[
    str | None, typer.Option("--comment", help="A note shown by `context ls`.", show_default=False)
]
StorageOpt = Annotated[
    StorageChoice | None,
    typer.Option(
        "--secret-storage",
        help="keyring (default) or file: a 0600 plaintext file in the config folder, for hosts "
        "without a keyring. Remembered per context.",
        show_default=False,
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", "-f", help="Replace an existing context without asking.")
]
NoInputOpt = Annotated[
    bool,
    typer.Option(
        "--no-input", help="Never prompt: fail at once when an answer is missing (also global)."
    ),
]
# Hidden traps for habits from other tools: the value is refused, with the safe alternatives.
ArgvSecretOpt = Annotated[
    str | None, typer.Option("--client-secret", hidden=True, help=_ARGV_SECRET_HELP)
]
ArgvApiKeyOpt = Annotated[
    str | None, typer.Option("--api-key", hidden=True, help=_ARGV_SECRET_HELP)
]
ArgvKeyOpt = Annotated[
    str | None, typer.Option("--private-key", hidden=True, help=_ARGV_SECRET_HELP)
]
ArgvPassphraseOpt = Annotated[
    str | None, typer.Option("--private-key-passphrase", hidden=True, help=_ARGV_SECRET_HELP)
]


def refuse_argv_key(private_key: str | None, passphrase: str | None) -> None:
    """A private key or its passphrase given as a value on the command line: refused."""
    from qlikm2m.errors import UsageError

    if private_key is not None or passphrase is not None:
        flag = "--private-key" if private_key is not None else "--private-key-passphrase"
        safe = (
            "--private-key-file FILE or --private-key-stdin"
            if private_key is not None
            else "--private-key-passphrase-env VAR"
        )
        raise UsageError(
            f"{flag} takes no value on the command line: it would leak into shell history "
            "and process listings.",
            hint=f"Use {safe}.",
        )


def refuse_argv_secret(client_secret: str | None, api_key: str | None) -> None:
    from qlikm2m.errors import UsageError

    if client_secret is not None or api_key is not None:
        flag = "--client-secret" if client_secret is not None else "--api-key"
        safe = (
            "--client-secret-stdin or --client-secret-env VAR"
            if client_secret is not None
            else "--api-key-stdin or --api-key-env VAR"
        )
        raise UsageError(
            f"{flag} takes no value on the command line: it would leak into shell history "
            "and process listings.",
            hint=f"Use {safe}, or leave it out to be asked for it (hidden) at a terminal.",
        )
