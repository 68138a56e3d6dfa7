"""`qlikm2m oauth keys|secrets|tokens`: an OAuth client's key pairs, secrets and minted tokens.

Thin: parsing and output here, the work in qlikm2m.oauth_clients and qlikm2m.assertion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qlikm2m.commands.common import TenantRun
from qlikm2m.commands.tenant_options import TenantFlags, runtime_of, tenant_command

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.oauth_clients import CreatedSecret
    from qlikm2m.runtime import Runtime

_CLIENT_HELP = "The OAuth client id (default: the client the credentials belong to)."
ClientOption = Annotated[
    str | None, typer.Option("--client", metavar="ID", help=_CLIENT_HELP, show_default=False)
]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")]


def _target(client: QlikClient, given: str | None) -> str:
    from qlikm2m.errors import UsageError

    chosen = given or client.settings.client_id.value
    if not chosen:
        raise UsageError(
            "Which OAuth client? These credentials are not an OAuth client's.",
            hint="Pass --client <client-id>.",
        )
    return chosen


def _emit(runtime: Runtime, data: Any) -> None:
    from qlikm2m.output import Output

    Output(runtime).emit(data)


@dataclass(frozen=True, kw_only=True)
class OAuthKeysGenerateOptions(TenantRun):
    out_private: Path
    alg: str = "ES384"
    bits: int = 3072
    kid: str | None = None
    register_on: str | None = None
    force: ForceOption = False


def run_keys_generate(options: OAuthKeysGenerateOptions) -> None:
    """Make a key pair and print its public JWK (register it on the OAuth client).

    ``options`` is the command line of ``keys_generate``, parsed; nothing here knows Typer.
    """
    from qlikm2m.assertion import generate_key
    from qlikm2m.oauth_clients import register_public_key, write_private_file

    tenant = options.tenant
    out_private = options.out_private
    alg = options.alg
    bits = options.bits
    kid = options.kid
    register_on = options.register_on
    force = options.force
    runtime = options.runtime
    key = generate_key(alg.upper(), bits=bits, kid=kid)
    # Saved before it is registered: a registered key always has its private half somewhere.
    write_private_file(out_private, key.private_pem(), what="private key", overwrite=force)
    jwk = key.public_jwk()
    if register_on:
        with tenant.client(runtime) as client:
            register_public_key(client, register_on, jwk)
    _emit(runtime, jwk)


@tenant_command
def keys_generate(
    ctx: typer.Context,
    tenant: TenantFlags,
    out_private: Annotated[
        Path,
        typer.Option(
            "--out-private",
            metavar="FILE",
            help="Write the private key here (PEM, PKCS#8, mode 0600). Required: the key "
            "exists nowhere else.",
            show_default=False,
        ),
    ],
    alg: Annotated[
        str,
        typer.Option(
            "--alg", metavar="ALG", help="ES384 (P-384), RS256 or RS512.", case_sensitive=False
        ),
    ] = "ES384",
    bits: Annotated[
        int, typer.Option("--bits", metavar="BITS", help="RSA key size (at least 2048).")
    ] = 3072,
    kid: Annotated[
        str | None,
        typer.Option(
            "--kid",
            metavar="KID",
            help="Key id (default: the RFC 7638 thumbprint).",
            show_default=False,
        ),
    ] = None,
    register_on: Annotated[
        str | None,
        typer.Option(
            "--register",
            metavar="CLIENT_ID",
            help="Also register the public key on this OAuth client (needs credentials "
            "that may manage OAuth clients).",
            show_default=False,
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Make a key pair and print its public JWK (register it on the OAuth client)."""
    run_keys_generate(
        OAuthKeysGenerateOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            out_private=out_private,
            alg=alg,
            bits=bits,
            kid=kid,
            register_on=register_on,
            force=force,
        )
    )


@dataclass(frozen=True, kw_only=True)
class OAuthKeysLsOptions(TenantRun):
    oauth_client: ClientOption = None


def run_keys_ls(options: OAuthKeysLsOptions) -> None:
    """List the public keys registered on the OAuth client.

    ``options`` is the command line of ``keys_ls``, parsed; nothing here knows Typer.
    """
    from qlikm2m.oauth_clients import public_keys

    tenant = options.tenant
    oauth_client = options.oauth_client
    runtime = options.runtime
    with tenant.client(runtime) as client:
        _emit(runtime, public_keys(client, _target(client, oauth_client)))


@tenant_command
def keys_ls(ctx: typer.Context, tenant: TenantFlags, oauth_client: ClientOption = None) -> None:
    """List the public keys registered on the OAuth client."""
    run_keys_ls(
        OAuthKeysLsOptions(runtime=runtime_of(ctx), tenant=tenant, oauth_client=oauth_client)
    )


@dataclass(frozen=True, kw_only=True)
class OAuthSecretsLsOptions(TenantRun):
    oauth_client: ClientOption = None


def run_secrets_ls(options: OAuthSecretsLsOptions) -> None:
    """List the OAuth client's secrets: hint, createdAt, createdBy (never the secrets).

    ``options`` is the command line of ``secrets_ls``, parsed; nothing here knows Typer.
    """
    from qlikm2m.oauth_clients import secret_hints

    tenant = options.tenant
    oauth_client = options.oauth_client
    runtime = options.runtime
    with tenant.client(runtime) as client:
        _emit(runtime, secret_hints(client, _target(client, oauth_client)))


@tenant_command
def secrets_ls(ctx: typer.Context, tenant: TenantFlags, oauth_client: ClientOption = None) -> None:
    """List the OAuth client's secrets: hint, createdAt, createdBy (never the secrets)."""
    run_secrets_ls(
        OAuthSecretsLsOptions(runtime=runtime_of(ctx), tenant=tenant, oauth_client=oauth_client)
    )


@dataclass(frozen=True, kw_only=True)
class OAuthSecretsDeleteOptions(TenantRun):
    hint: str
    oauth_client: ClientOption = None


def run_secrets_delete(options: OAuthSecretsDeleteOptions) -> None:
    """Delete one of the OAuth client's secrets by its hint.

    ``options`` is the command line of ``secrets_delete``, parsed; nothing here knows Typer.
    """
    from qlikm2m.oauth_clients import delete_secret

    tenant = options.tenant
    hint = options.hint
    oauth_client = options.oauth_client
    runtime = options.runtime
    with tenant.client(runtime) as client:
        target = _target(client, oauth_client)
        delete_secret(client, target, hint)
        _emit(runtime, {"clientId": target, "deleted": hint})


@tenant_command
def secrets_delete(
    ctx: typer.Context,
    tenant: TenantFlags,
    hint: Annotated[str, typer.Argument(metavar="HINT", help="The hint of the secret to delete.")],
    oauth_client: ClientOption = None,
) -> None:
    """Delete one of the OAuth client's secrets by its hint."""
    run_secrets_delete(
        OAuthSecretsDeleteOptions(
            runtime=runtime_of(ctx), tenant=tenant, hint=hint, oauth_client=oauth_client
        )
    )


@dataclass(frozen=True, kw_only=True)
class OAuthSecretsRotateOptions(TenantRun):
    oauth_client: ClientOption = None
    old_hint: str | None = None
    out_secret: Path | None = None
    print_secret: bool = False
    force: ForceOption = False


def run_secrets_rotate(options: OAuthSecretsRotateOptions) -> None:
    """Rotate a client secret without downtime: create, prove, keep, delete the old one.

    ``options`` is the command line of ``secrets_rotate``, parsed; nothing here knows Typer.
    """
    from qlikm2m.errors import UsageError
    from qlikm2m.oauth_clients import (
        RotationError,
        choose_old_hint,
        prove_secret,
        rotate_secret,
        secret_hints,
        write_private_file,
    )

    tenant = options.tenant
    oauth_client = options.oauth_client
    old_hint = options.old_hint
    out_secret = options.out_secret
    print_secret = options.print_secret
    force = options.force
    if (out_secret is None) == (not print_secret):
        raise UsageError(
            "Say where the new secret goes: --out-secret FILE or --print-secret (one).",
            hint="It is never printed unless asked: terminals and CI logs keep what they show.",
        )
    if out_secret is not None and out_secret.expanduser().exists() and not force:
        raise UsageError(f"{out_secret} already exists.", hint="Pass --force to replace it.")
    runtime = options.runtime
    kept: dict[str, str] = {}

    def store(created: CreatedSecret) -> None:
        if out_secret is not None:
            text = created.value + "\n"
            write_private_file(out_secret, text, what="new secret", overwrite=True)
        kept["clientSecret"] = created.value

    with tenant.client(runtime) as client:
        target = _target(client, oauth_client)
        settings = client.settings
        in_use = (
            settings.secret()
            if settings.kind == "oauth"
            and not settings.uses_private_key
            and settings.client_id.value == target
            and settings.secret_at_hand
            else None
        )
        hints = [s["hint"] for s in secret_hints(client, target)]
        chosen = choose_old_hint(hints, in_use, old_hint, target)

        def prove(created: CreatedSecret) -> None:
            prove_secret(client, target, created.value)

        try:
            rotation = rotate_secret(client, target, chosen, store=store, prove=prove)
        except RotationError as error:
            if print_secret and error.details["rotation"]["stored"]:
                _emit(runtime, {**error.details["rotation"], "clientSecret": kept["clientSecret"]})
            raise
    report = rotation.as_dict()
    if print_secret:
        report["clientSecret"] = kept["clientSecret"]
    elif out_secret is not None:
        report["secretFile"] = str(out_secret.expanduser())
    _emit(runtime, report)


@tenant_command
def secrets_rotate(
    ctx: typer.Context,
    tenant: TenantFlags,
    oauth_client: ClientOption = None,
    old_hint: Annotated[
        str | None,
        typer.Option(
            "--old-hint",
            metavar="HINT",
            help="The secret to replace (default: the only one, or the one in use).",
            show_default=False,
        ),
    ] = None,
    out_secret: Annotated[
        Path | None,
        typer.Option(
            "--out-secret",
            metavar="FILE",
            help="Write the new secret to this file (mode 0600).",
            show_default=False,
        ),
    ] = None,
    print_secret: Annotated[
        bool,
        typer.Option(
            "--print-secret",
            help="Put the new secret in the JSON report on stdout (for a pipe into a "
            "secret store).",
        ),
    ] = False,
    force: ForceOption = False,
) -> None:
    """Rotate a client secret without downtime: create, prove, keep, delete the old one.

    The new secret goes only where asked: --out-secret FILE or --print-secret.
    """
    run_secrets_rotate(
        OAuthSecretsRotateOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            oauth_client=oauth_client,
            old_hint=old_hint,
            out_secret=out_secret,
            print_secret=print_secret,
            force=force,
        )
    )


@dataclass(frozen=True, kw_only=True)
class OAuthTokensLsOptions(TenantRun):
    user_id: str | None = None
    every_user: bool = False


def run_tokens_ls(options: OAuthTokensLsOptions) -> None:
    """List the tokens the tenant has minted (GET /api/v1/oauth-tokens), to see what to revoke.

    ``options`` is the command line of ``tokens_ls``, parsed; nothing here knows Typer.
    """
    from qlikm2m.oauth_clients import own_user_id
    from qlikm2m.oauth_clients import tokens as list_tokens

    tenant = options.tenant
    user_id = options.user_id
    every_user = options.every_user
    runtime = options.runtime
    with tenant.client(runtime) as client:
        wanted = None if every_user else (user_id or own_user_id(client))
        _emit(runtime, list(list_tokens(client, wanted)))


@tenant_command
def tokens_ls(
    ctx: typer.Context,
    tenant: TenantFlags,
    user_id: Annotated[
        str | None,
        typer.Option(
            "--user-id",
            metavar="ID",
            help="Tokens of this user (default: the bot user).",
            show_default=False,
        ),
    ] = None,
    every_user: Annotated[
        bool, typer.Option("--all", help="Tokens of every user (TenantAdmin).")
    ] = False,
) -> None:
    """List the tokens the tenant has minted (GET /api/v1/oauth-tokens), to see what to revoke."""
    run_tokens_ls(
        OAuthTokensLsOptions(
            runtime=runtime_of(ctx), tenant=tenant, user_id=user_id, every_user=every_user
        )
    )


def register(root: typer.Typer) -> None:
    app = typer.Typer(
        help="An OAuth client's key pairs, secrets and tokens (private-key JWT, rotation).",
        no_args_is_help=True,
    )
    keys = typer.Typer(help="Key pairs for private-key JWT.", no_args_is_help=True)
    secrets = typer.Typer(help="Client secrets: list, delete, rotate.", no_args_is_help=True)
    tokens = typer.Typer(help="Tokens the tenant has minted.", no_args_is_help=True)

    keys.command("generate")(keys_generate)
    keys.command("ls")(keys_ls)
    secrets.command("ls")(secrets_ls)
    secrets.command("delete")(secrets_delete)
    secrets.command("rotate")(secrets_rotate)
    tokens.command("ls")(tokens_ls)

    app.add_typer(keys, name="keys")
    app.add_typer(secrets, name="secrets")
    app.add_typer(tokens, name="tokens")
    root.add_typer(app, name="oauth")
