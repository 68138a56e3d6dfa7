"""`qlikm2m oauth keys|secrets|tokens`: an OAuth client's key pairs, secrets and minted tokens.

Thin: parsing and output here, the work in qlikm2m.oauth_clients and qlikm2m.assertion. Each
command is a module-level Typer function that builds a frozen options value and calls its
``run_*`` function, which knows nothing of Typer.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qlikm2m.commands.context.options import StorageChoice
from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.tenant_options import TenantFlags, runtime_of, tenant_command

if TYPE_CHECKING:
    from qlikm2m.assertion import SigningKey
    from qlikm2m.client import QlikClient
    from qlikm2m.contexts import SecretStorage
    from qlikm2m.credstore import CredentialStore
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


class _StoredContext:
    """The stored context a rotation (or a new key) is written to, through the credential store:
    one transaction, a new credential generation, the old tokens dropped."""

    def __init__(self, runtime: Runtime, name: str) -> None:
        from qlikm2m.credstore import CredentialStore

        self.store: CredentialStore = CredentialStore(runtime.env, interactive=runtime.can_prompt)
        self.name = name
        self.generation = self.store.load().get(name).credential_generation

    def put(self, secret: str, **changes: Any) -> None:
        from dataclasses import replace

        context = self.store.load().get(self.name)
        self.store.update(self.name, replace(context, **changes), secret)

    def changed(self) -> bool:
        """Whether a new credential was committed (asked after an interrupt: the store's
        transaction either committed or rolled back, and a commit renews the generation)."""
        from qlikm2m.errors import QlikM2MError

        try:
            return self.store.load().get(self.name).credential_generation != self.generation
        except QlikM2MError:
            return False


def _emit(runtime: Runtime, data: Any) -> None:
    from qlikm2m.output import Output

    Output(runtime).emit(data)


def _check_new_key_context(runtime: Runtime, name: str, force: bool) -> None:
    """Before a key is made for context ``name``: a valid name, and an existing context only
    with ``force``."""
    from qlikm2m.contexts import load_contexts, validate_name
    from qlikm2m.errors import UsageError

    validate_name(name)
    if name in load_contexts(runtime.env).contexts and not force:
        raise UsageError(
            f"A context named {name!r} already exists; no key was made.",
            hint=f"Rotate its key with `qlikm2m oauth keys rotate -c {name}`, or pass --force "
            "to replace its credential with the new key.",
        )


def _save_key_to_context(
    runtime: Runtime,
    tenant: TenantFlags,
    name: str,
    key: SigningKey,
    register_on: str | None,
    storage: str,
) -> None:
    """Store ``key`` in context ``name`` through the credential store: a new context for the
    tenant and client at hand, or an existing one (checked by ``_check_new_key_context``)
    whose credential it replaces."""
    from qlikm2m.contexts import Context
    from qlikm2m.credstore import CredentialStore
    from qlikm2m.errors import UsageError
    from qlikm2m.settings import normalize_server_url

    store = CredentialStore(runtime.env, interactive=runtime.can_prompt)
    existing = store.load().contexts.get(name)
    if existing is not None:
        _StoredContext(runtime, name).put(
            key.private_pem(), credential_type="private_key", key_id=key.kid, key_alg=key.alg
        )
        return
    server, client_id = tenant.server, register_on or tenant.client_id
    ca_bundle = tenant.ca_bundle or runtime.env.get("QLIK_CA_BUNDLE") or None
    if server is None or client_id is None:
        settings = tenant.settings(runtime)
        server = server or settings.server_url
        client_id = client_id or settings.client_id.value
        ca_bundle = ca_bundle or settings.ca_bundle.value
    if not client_id:
        raise UsageError(
            "Which OAuth client is the key for?",
            hint="Pass --register CLIENT_ID (or --client-id ID with --server URL).",
        )
    from pathlib import Path

    context = Context(
        name=name,
        server=normalize_server_url(server),
        auth_type="oauth",
        client_id=client_id,
        ca_bundle=str(Path(ca_bundle).expanduser().resolve()) if ca_bundle else None,
        secret_storage="file" if storage == "file" else "keyring",
        credential_type="private_key",
        key_id=key.kid,
        key_alg=key.alg,
    )
    store.save(context, key.private_pem(), make_current=False, replace_existing=False)


# ---- oauth keys ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KeysGenerateOptions(TenantRun):
    out_private: Path | None = None
    save_to_context: str | None = None
    storage: SecretStorage = "keyring"
    alg: str = "ES384"
    bits: int = 3072
    kid: str | None = None
    register_on: str | None = None
    force: bool = False


def run_keys_generate(options: KeysGenerateOptions) -> None:
    """Make a key pair; write its private half where asked (a 0600 file and/or a context through
    the credential store), optionally register its public JWK on ``register_on``
    (oauth-clients.json: PATCH of the client's ``/publicKeys``), print the JWK.

    Raises UsageError before anything is made or sent when the private key has nowhere to go,
    the file exists without ``force``, or the context exists without ``force``.
    """
    from qlikm2m.assertion import generate_key
    from qlikm2m.errors import UsageError
    from qlikm2m.oauth_clients import register_public_key, write_private_file

    runtime, tenant = options.runtime, options.tenant
    out_private, save_to_context = options.out_private, options.save_to_context
    register_on, force = options.register_on, options.force
    if out_private is None and save_to_context is None:
        raise UsageError(
            "Say where the private key goes: --out-private FILE or --save-to-context NAME.",
            hint="The key exists nowhere else: it is never printed.",
        )
    if out_private is not None and out_private.expanduser().exists() and not force:
        # Refused (UsageError) before a key is made or anything is sent.
        write_private_file(out_private, "", what="private key", overwrite=False)
    if save_to_context is not None:
        _check_new_key_context(runtime, save_to_context, force)
    key = generate_key(options.alg.upper(), bits=options.bits, kid=options.kid)
    jwk = key.public_jwk()
    with contextlib.ExitStack() as held:
        client = held.enter_context(tenant.client(runtime)) if register_on else None
        if client is not None:
            # The token for registering is taken now: the credentials may be the very
            # context the new key is about to replace.
            client.tokens.token()
        # Saved before it is registered: a registered key always has its private half
        # somewhere.
        if out_private is not None:
            write_private_file(out_private, key.private_pem(), what="private key", overwrite=force)
        if save_to_context is not None:
            _save_key_to_context(
                runtime, tenant, save_to_context, key, register_on, options.storage
            )
        if client is not None and register_on:
            register_public_key(client, register_on, jwk)
    _emit(runtime, jwk)


@tenant_command
def keys_generate(
    ctx: typer.Context,
    tenant: TenantFlags,
    out_private: Annotated[
        Path | None,
        typer.Option(
            "--out-private",
            metavar="FILE",
            help="Write the private key here (PEM, PKCS#8, mode 0600).",
            show_default=False,
        ),
    ] = None,
    save_to_context: Annotated[
        str | None,
        typer.Option(
            "--save-to-context",
            "--context-name",
            metavar="NAME",
            help="Store the private key in this context (the OS keyring, or the 0600 file "
            "with --secret-storage file): created for the tenant and client of the "
            "credentials in use (or --server and --client-id), or with --force replacing "
            "the credential of an existing one.",
            show_default=False,
        ),
    ] = None,
    secret_storage: Annotated[
        StorageChoice | None,
        typer.Option(
            "--secret-storage",
            help="Where --save-to-context keeps a new context's key: keyring (default) or "
            "file (0600, opt-in).",
            show_default=False,
        ),
    ] = None,
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
    """Make a key pair and print its public JWK (register it on the OAuth client).

    The private key goes only where asked: --out-private FILE and/or --save-to-context NAME.
    """
    run_keys_generate(
        KeysGenerateOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            out_private=out_private,
            save_to_context=save_to_context,
            storage=secret_storage.value if secret_storage else "keyring",
            alg=alg,
            bits=bits,
            kid=kid,
            register_on=register_on,
            force=force,
        )
    )


@dataclass(frozen=True, kw_only=True)
class ClientOptions(TenantRun):
    """The commands that act on one OAuth client: ``oauth_client`` None is the credentials' own."""

    oauth_client: str | None = None


def run_keys_ls(options: ClientOptions) -> None:
    """Print the public keys registered on the OAuth client (a list of JWKs)."""
    from qlikm2m.oauth_clients import public_keys

    runtime = options.runtime
    with options.tenant.client(runtime) as client:
        _emit(runtime, public_keys(client, _target(client, options.oauth_client)))


@tenant_command
def keys_ls(ctx: typer.Context, tenant: TenantFlags, oauth_client: ClientOption = None) -> None:
    """List the public keys registered on the OAuth client."""
    run_keys_ls(ClientOptions(runtime=runtime_of(ctx), tenant=tenant, oauth_client=oauth_client))


@dataclass(frozen=True, kw_only=True)
class KeysDeleteOptions(ClientOptions):
    kid: str


def run_keys_delete(options: KeysDeleteOptions) -> None:
    """Remove one public key by its kid; print ``{clientId, deleted}``."""
    from qlikm2m.oauth_clients import remove_public_key

    runtime = options.runtime
    with options.tenant.client(runtime) as client:
        target = _target(client, options.oauth_client)
        remove_public_key(client, target, options.kid)
        _emit(runtime, {"clientId": target, "deleted": options.kid})


@tenant_command
def keys_delete(
    ctx: typer.Context,
    tenant: TenantFlags,
    kid: Annotated[str, typer.Argument(metavar="KID", help="The kid of the public key to remove.")],
    oauth_client: ClientOption = None,
) -> None:
    """Remove one public key from the OAuth client by its kid (the others stay)."""
    run_keys_delete(
        KeysDeleteOptions(
            runtime=runtime_of(ctx), tenant=tenant, oauth_client=oauth_client, kid=kid
        )
    )


@dataclass(frozen=True, kw_only=True)
class KeysRotateOptions(TenantRun):
    alg: str | None = None
    bits: int = 3072
    kid: str | None = None
    out_private: Path | None = None
    force: bool = False


def run_keys_rotate(options: KeysRotateOptions) -> None:
    """Rotate the key pair the credentials sign with: new key, registered, proven, stored (the
    stored context or ``out_private``), old public key removed; print the rotation report.

    Raises UsageError for secret credentials, or when the new key has nowhere to go.
    """
    from qlikm2m.assertion import generate_key
    from qlikm2m.errors import UsageError
    from qlikm2m.oauth_clients import prove_key, rotate_key, write_private_file

    runtime, out_private, force = options.runtime, options.out_private, options.force
    with options.tenant.client(runtime) as client:
        settings = client.settings
        if not settings.uses_private_key:
            raise UsageError(
                "These credentials sign in with a client secret, not a private key.",
                hint="Rotate a secret with `qlikm2m oauth secrets rotate`; pick a context "
                "that holds a key with -c NAME.",
            )
        stored = settings.stored_context
        context = _StoredContext(runtime, stored) if stored else None
        if context is None and out_private is None:
            raise UsageError(
                "Say where the new private key goes: --out-private FILE.",
                hint="The key in use comes from the environment; a stored context (-c NAME) "
                "keeps its new key itself.",
            )
        if out_private is not None and out_private.expanduser().exists() and not force:
            raise UsageError(f"{out_private} already exists.", hint="Pass --force to replace it.")
        current = settings.signing_key()
        target = settings.client_id.value or ""
        new = generate_key((options.alg or current.alg).upper(), bits=options.bits, kid=options.kid)
        pem = new.private_pem()

        def store() -> None:
            if out_private is not None:
                write_private_file(out_private, pem, what="private key", overwrite=True)
            if context is not None:
                context.put(pem, credential_type="private_key", key_id=new.kid, key_alg=new.alg)

        def prove() -> None:
            prove_key(client, target, pem, new.kid, new.alg)

        rotation = rotate_key(
            client,
            target,
            current.kid,
            new.public_jwk(),
            store=store,
            prove=prove,
            was_stored=context.changed if context is not None else None,
        )
    report = rotation.as_dict()
    report["publicKey"] = new.public_jwk()
    if context is not None:
        report["context"] = context.name
    if out_private is not None:
        report["privateKeyFile"] = str(out_private.expanduser())
    _emit(runtime, report)


@tenant_command
def keys_rotate(
    ctx: typer.Context,
    tenant: TenantFlags,
    alg: Annotated[
        str | None,
        typer.Option(
            "--alg",
            metavar="ALG",
            help="ES384, RS256 or RS512 (default: the current key's).",
            show_default=False,
        ),
    ] = None,
    bits: Annotated[
        int, typer.Option("--bits", metavar="BITS", help="RSA key size (at least 2048).")
    ] = 3072,
    kid: Annotated[
        str | None,
        typer.Option(
            "--kid",
            metavar="KID",
            help="Key id of the new key (default: its RFC 7638 thumbprint).",
            show_default=False,
        ),
    ] = None,
    out_private: Annotated[
        Path | None,
        typer.Option(
            "--out-private",
            metavar="FILE",
            help="For a key from the environment: write the new private key here (0600).",
            show_default=False,
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Rotate the key pair the credentials sign with, without downtime.

    Makes a new key pair, registers its public key on the OAuth client, proves a token
    mints with it, stores it (in the stored context: -c NAME or the current one; or in
    --out-private FILE for a key from the environment), then removes the old public key.
    """
    run_keys_rotate(
        KeysRotateOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            alg=alg,
            bits=bits,
            kid=kid,
            out_private=out_private,
            force=force,
        )
    )


# ---- oauth secrets ---------------------------------------------------------------------------


def run_secrets_ls(options: ClientOptions) -> None:
    """Print the OAuth client's secrets: hint, createdAt, createdBy (never the secrets)."""
    from qlikm2m.oauth_clients import secret_hints

    runtime = options.runtime
    with options.tenant.client(runtime) as client:
        _emit(runtime, secret_hints(client, _target(client, options.oauth_client)))


@tenant_command
def secrets_ls(ctx: typer.Context, tenant: TenantFlags, oauth_client: ClientOption = None) -> None:
    """List the OAuth client's secrets: hint, createdAt, createdBy (never the secrets)."""
    run_secrets_ls(ClientOptions(runtime=runtime_of(ctx), tenant=tenant, oauth_client=oauth_client))


@dataclass(frozen=True, kw_only=True)
class SecretsDeleteOptions(ClientOptions):
    hint: str


def run_secrets_delete(options: SecretsDeleteOptions) -> None:
    """Delete one of the OAuth client's secrets by its hint; print ``{clientId, deleted}``."""
    from qlikm2m.oauth_clients import delete_secret

    runtime = options.runtime
    with options.tenant.client(runtime) as client:
        target = _target(client, options.oauth_client)
        delete_secret(client, target, options.hint)
        _emit(runtime, {"clientId": target, "deleted": options.hint})


@tenant_command
def secrets_delete(
    ctx: typer.Context,
    tenant: TenantFlags,
    hint: Annotated[str, typer.Argument(metavar="HINT", help="The hint of the secret to delete.")],
    oauth_client: ClientOption = None,
) -> None:
    """Delete one of the OAuth client's secrets by its hint."""
    run_secrets_delete(
        SecretsDeleteOptions(
            runtime=runtime_of(ctx), tenant=tenant, oauth_client=oauth_client, hint=hint
        )
    )


@dataclass(frozen=True, kw_only=True)
class SecretsRotateOptions(ClientOptions):
    old_hint: str | None = None
    out_secret: Path | None = None
    print_secret: bool = False
    force: bool = False


def run_secrets_rotate(options: SecretsRotateOptions) -> None:
    """Rotate a client secret: create, prove, keep (the stored context, ``out_secret`` or the
    report), delete the old one; print the rotation report.

    Raises UsageError when the new secret has nowhere (or two places) to go, or the file
    exists without ``force``; RotationError (after printing the report with the secret, under
    ``print_secret``, when it was already kept) when a step fails.
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

    out_secret, print_secret = options.out_secret, options.print_secret
    if out_secret is not None and print_secret:
        raise UsageError("Say where the new secret goes: --out-secret FILE or --print-secret.")
    if out_secret is not None and out_secret.expanduser().exists() and not options.force:
        raise UsageError(f"{out_secret} already exists.", hint="Pass --force to replace it.")
    runtime = options.runtime
    kept: dict[str, str] = {}
    with options.tenant.client(runtime) as client:
        target = _target(client, options.oauth_client)
        settings = client.settings
        own = (
            settings.kind == "oauth"
            and not settings.uses_private_key
            and settings.client_id.value == target
        )
        # The stored context whose secret is the one replaced: it must get the new one, or
        # the rotation would leave it with a deleted secret.
        context = (
            _StoredContext(runtime, settings.stored_context)
            if own and settings.stored_context
            else None
        )
        if context is None and out_secret is None and not print_secret:
            raise UsageError(
                "Say where the new secret goes: --out-secret FILE or --print-secret (one).",
                hint="It is never printed unless asked: terminals and CI logs keep what "
                "they show. A stored context (-c NAME) keeps it itself.",
            )
        in_use = settings.secret() if own and (settings.secret_at_hand or context) else None
        hints = [s["hint"] for s in secret_hints(client, target)]
        chosen = choose_old_hint(hints, in_use, options.old_hint, target)

        def store(created: CreatedSecret) -> None:
            if out_secret is not None:
                text = created.value + "\n"
                write_private_file(out_secret, text, what="new secret", overwrite=True)
            if context is not None:
                context.put(created.value)
            kept["clientSecret"] = created.value

        def was_stored(created: CreatedSecret) -> bool:
            if context is not None:
                return context.changed()
            try:
                return (
                    out_secret is not None
                    and out_secret.expanduser().read_text().strip() == created.value
                )
            except OSError:
                return False

        def prove(created: CreatedSecret) -> None:
            prove_secret(client, target, created.value)

        try:
            rotation = rotate_secret(
                client, target, chosen, store=store, prove=prove, was_stored=was_stored
            )
        except RotationError as error:
            if print_secret and error.details["rotation"]["stored"]:
                _emit(runtime, {**error.details["rotation"], "clientSecret": kept["clientSecret"]})
            raise
    report = rotation.as_dict()
    if context is not None:
        report["context"] = context.name
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

    With a stored context's secret (-c NAME, or the current context), the new secret goes
    into that context (its keyring entry or secret file, a new credential generation).
    Otherwise it goes only where asked: --out-secret FILE or --print-secret.
    """
    run_secrets_rotate(
        SecretsRotateOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            oauth_client=oauth_client,
            old_hint=old_hint,
            out_secret=out_secret,
            print_secret=print_secret,
            force=force,
        )
    )


# ---- oauth tokens ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TokensLsOptions(TenantRun):
    user_id: str | None = None
    every_user: bool = False


def run_tokens_ls(options: TokensLsOptions) -> None:
    """Print the tokens the tenant has minted (oauth-tokens.json: GET /api/v1/oauth-tokens):
    the bot user's, ``user_id``'s, or with ``every_user`` everyone's."""
    from qlikm2m.oauth_clients import own_user_id
    from qlikm2m.oauth_clients import tokens as list_tokens

    runtime = options.runtime
    with options.tenant.client(runtime) as client:
        wanted = None if options.every_user else (options.user_id or own_user_id(client))
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
        TokensLsOptions(
            runtime=runtime_of(ctx), tenant=tenant, user_id=user_id, every_user=every_user
        )
    )


def register(root: typer.Typer) -> None:
    app = typer.Typer(
        help="An OAuth client's key pairs, secrets and tokens (private-key JWT, rotation).",
        no_args_is_help=True,
    )
    keys = typer.Typer(help="Key pairs for private-key JWT.", no_args_is_help=True)
    keys.command("generate")(keys_generate)
    keys.command("ls")(keys_ls)
    keys.command("delete")(keys_delete)
    keys.command("rotate")(keys_rotate)
    secrets = typer.Typer(help="Client secrets: list, delete, rotate.", no_args_is_help=True)
    secrets.command("ls")(secrets_ls)
    secrets.command("delete")(secrets_delete)
    secrets.command("rotate")(secrets_rotate)
    tokens = typer.Typer(help="Tokens the tenant has minted.", no_args_is_help=True)
    tokens.command("ls")(tokens_ls)
    app.add_typer(keys, name="keys")
    app.add_typer(secrets, name="secrets")
    app.add_typer(tokens, name="tokens")
    root.add_typer(app, name="oauth")
