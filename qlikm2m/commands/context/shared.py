"""What several context commands do: validate credentials, render a context, reach the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qlikm2m.prompter import Prompter

if TYPE_CHECKING:
    from qlikm2m.commands.context.prompting import KeyFlags
    from qlikm2m.contexts import AuthType, Context, CredentialType
    from qlikm2m.credstore import CredentialStore, Outcome
    from qlikm2m.runtime import Runtime

# ---- validation, saving, rendering ------------------------------------------------------------


def verify_credentials(
    runtime: Runtime,
    *,
    server: str,
    auth_type: AuthType,
    client_id: str | None,
    secret: str,
    scope: str | None,
    ca_bundle: str | None,
    credential_type: CredentialType | None = None,
    key_id: str | None = None,
    key_alg: str | None = None,
) -> dict[str, Any]:
    """Mint a token (OAuth) and call users/me: the credentials work, or nothing is saved.

    With ``credential_type="private_key"`` the secret is the (checked, unencrypted) PEM key.
    """
    from qlikm2m.client import QlikClient
    from qlikm2m.settings import explicit_settings

    settings = explicit_settings(
        server=server,
        auth_type=auth_type,
        client_id=client_id,
        secret=secret,
        scope=scope,
        ca_bundle=ca_bundle,
        source="context validation",
        credential_type=credential_type or "client_secret",
        key_id=key_id,
        key_alg=key_alg,
    )
    # No cache: a failed init must leave nothing behind, not even a token file.
    with QlikClient(settings, runtime, use_token_cache=False) as client:
        me = client.get_json("/api/v1/users/me")
    return me if isinstance(me, dict) else {}


@dataclass(frozen=True)
class CheckedKey:
    """A private key fit for Qlik Cloud, as it will be stored: unencrypted PKCS#8 PEM."""

    pem: str = field(repr=False)
    kid: str
    alg: str


def check_private_key(
    prompter: Prompter,
    pem: str,
    source: str,
    *,
    key_id: str | None,
    key_alg: str | None,
    passphrase: str | None,
) -> CheckedKey:
    """Load and check the key (ConfigError, exit 3, for a weak or unsupported one) before
    anything is stored; an encrypted key without a passphrase asks for it at a terminal.

    It is stored decrypted: the keyring protects it at rest, and a stored passphrase would sit
    next to the key anyway.
    """
    from qlikm2m.assertion import is_encrypted_pem, load_private_key
    from qlikm2m.redaction import register_secret

    if passphrase is None and is_encrypted_pem(pem) and prompter.runtime.can_prompt:
        passphrase = prompter.ask(
            "Passphrase of the private key:",
            what="the private key's passphrase",
            flags="--private-key-passphrase-env VAR",
            hidden=True,
        )
        register_secret(passphrase)
    key = load_private_key(
        pem,
        source=source,
        kid=key_id or None,
        alg=key_alg.strip().upper() if key_alg else None,
        passphrase=passphrase,
    )
    return CheckedKey(pem=key.private_pem(), kid=key.kid, alg=key.alg)


def key_from(prompter: Prompter, flags: KeyFlags) -> CheckedKey:
    """The private key the flags give, else the one whose file is asked for (three tries at a
    terminal); checked by ``check_private_key``."""
    from qlikm2m.errors import ConfigError
    from qlikm2m.settings import read_private_key_file

    runtime = prompter.runtime
    passphrase = flags.passphrase(runtime)
    given = flags.read(runtime)
    if given is not None:
        return check_private_key(
            prompter, *given, key_id=flags.key_id, key_alg=flags.key_alg, passphrase=passphrase
        )
    attempt = 1
    while True:
        path = prompter.ask(
            "Private key file:",
            what="the private key",
            flags="--private-key-file FILE or --private-key-stdin",
        )
        try:
            pem = read_private_key_file(path, f"file {path}", hint="Give a PEM file you can read.")
            return check_private_key(
                prompter,
                pem,
                f"file {path}",
                key_id=flags.key_id,
                key_alg=flags.key_alg,
                passphrase=passphrase,
            )
        except ConfigError as error:
            # At a prompt a wrong path deserves another try, not an exit.
            if attempt >= 3:
                raise
            attempt += 1
            prompter.say(f"error: {error.message}")


def user_fields(me: dict[str, Any]) -> dict[str, str]:
    return {
        key: str(me[key])
        for key in ("id", "name", "email", "subject", "clientId", "tenantId")
        if me.get(key) not in (None, "")
    }


def describe_user(me: dict[str, Any]) -> str:
    who = user_fields(me)
    label = who.get("name") or who.get("email") or who.get("subject") or who.get("id") or "?"
    extra = who.get("subject") if who.get("subject") and who.get("subject") != label else None
    return f"{label} ({extra})" if extra else label


def context_view(context: Context, current: str | None, env: Any) -> dict[str, Any]:
    from qlikm2m.secretstore import describe_location

    return {
        "name": context.name,
        "server": context.server,
        "authType": context.auth_type,
        "clientId": context.client_id,
        "scope": context.scope,
        "caBundle": context.ca_bundle,
        "comment": context.comment,
        "current": context.name == current,
        "secretStorage": context.secret_storage,
        "secretLocation": describe_location(context, env).description,
        **(
            {"credentialType": "private_key", "keyId": context.key_id, "keyAlg": context.key_alg}
            if context.holds_private_key
            else {}
        ),
    }


def emit(runtime: Runtime, data: Any, *, listing: bool = False) -> None:
    from qlikm2m.output import Output

    Output(runtime, listing=listing).emit(data)


def warn_file_storage(prompter: Prompter, context: Context, env: Any) -> None:
    from qlikm2m.secretstore import secret_file_path

    prompter.say(
        f"warning: the secret of {context.name!r} is stored unencrypted in "
        f"{secret_file_path(context.name, env)} (mode 0600), as asked with --secret-storage "
        "file: anyone who can read your files or their backups can read it."
    )


def normalized_server(prompter: Prompter, given: str | None, *, default: str | None = None) -> str:
    from qlikm2m.errors import ConfigError
    from qlikm2m.settings import normalize_server_url

    if given is not None:
        return normalize_server_url(given)
    while True:
        raw = prompter.ask(
            "Enter tenant url:", what="the tenant URL", flags="--server URL", default=default
        )
        try:
            return normalize_server_url(raw)
        except ConfigError as error:
            # At a prompt a typo deserves another try, not an exit.
            prompter.say(f"error: {error.message}")


def absolute_ca_bundle(path: str | None) -> str | None:
    if not path:
        return None
    from pathlib import Path

    from qlikm2m.errors import ConfigError

    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise ConfigError(f"The CA bundle {resolved} does not exist or is not a file.")
    return str(resolved)


def credential_store(runtime: Runtime) -> CredentialStore:
    """The store of this run's configuration folder (keyring prompts only at a terminal)."""
    from qlikm2m.credstore import CredentialStore

    return CredentialStore(runtime.env, interactive=runtime.can_prompt)


def say_warnings(prompter: Prompter, outcome: Outcome) -> None:
    for warning in outcome.warnings:
        prompter.say(f"warning: {warning}")
