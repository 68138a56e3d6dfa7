"""``context update``: change only what is given, as one transaction of the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from qlikm2m.commands.completion import complete_context_names
from qlikm2m.commands.context.options import (
    ApiKeyEnvOpt,
    ApiKeyStdinOpt,
    ArgvApiKeyOpt,
    ArgvKeyOpt,
    ArgvPassphraseOpt,
    ArgvSecretOpt,
    AuthTypeOpt,
    ClientIdOpt,
    KeyAlgOpt,
    KeyFileOpt,
    KeyIdOpt,
    KeyStdinOpt,
    NoInputOpt,
    PassphraseEnvOpt,
    SecretEnvOpt,
    SecretStdinOpt,
    ServerOpt,
    StorageOpt,
    refuse_argv_key,
    refuse_argv_secret,
)
from qlikm2m.commands.context.prompting import (
    KeyFlags,
    SecretFlags,
    context_runtime,
    secret_prompt,
)
from qlikm2m.commands.context.shared import (
    absolute_ca_bundle,
    check_private_key,
    context_view,
    credential_store,
    describe_user,
    emit,
    key_from,
    normalized_server,
    say_warnings,
    verify_credentials,
    warn_file_storage,
)
from qlikm2m.commands.run_options import ContextRun
from qlikm2m.prompter import Prompter

if TYPE_CHECKING:
    from qlikm2m.contexts import AuthType, SecretStorage

# ---- update ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UpdateOptions(ContextRun):
    """What to change in context ``name``: None (or an empty ``secrets``/``key``) keeps the
    stored value; an empty string clears ``scope``, ``ca_bundle`` and ``comment``."""

    name: str
    server: str | None = None
    auth_type: AuthType | None = None
    client_id: str | None = None
    secrets: SecretFlags = field(default_factory=SecretFlags)
    key: KeyFlags = field(default_factory=KeyFlags)
    scope: str | None = None
    ca_bundle: str | None = None
    comment: str | None = None
    storage: SecretStorage | None = None
    prompt_secret: bool = False
    no_verify: bool = False


def run_update(options: UpdateOptions) -> None:
    """Change only what ``options`` gives, as one transaction of the store (a new secret or key
    drops the context's cached tokens), after verifying changed credentials against the tenant
    unless ``no_verify``; print the context's view with ``droppedTokens``.

    Raises UsageError for flags that do not go together or a missing secret, ConfigError for an
    unknown context, and the tenant's error when the new credentials do not sign in.
    """
    from contextlib import suppress
    from dataclasses import replace

    from qlikm2m import contexts as store
    from qlikm2m.errors import ConfigError, UsageError
    from qlikm2m.secretstore import check_storage, read_secret

    runtime, name, secrets, key = options.runtime, options.name, options.secrets, options.key
    server, auth_type, client_id = options.server, options.auth_type, options.client_id
    scope, ca_bundle, comment = options.scope, options.ca_bundle, options.comment
    storage, prompt_secret, no_verify = options.storage, options.prompt_secret, options.no_verify
    prompter = Prompter(runtime)
    secrets.check()
    key.check(secrets, describes_stored_key=True)
    old = store.load_contexts(runtime.env).get(name)
    if key.given and auth_type == "apikey":
        raise UsageError("A private key signs in an OAuth client, not with an API key.")

    implied: AuthType | None = "oauth" if key.given else secrets.implied_auth
    new_auth: AuthType = auth_type or implied or old.auth_type
    new_client_id = client_id if client_id is not None else old.client_id
    if new_auth == "oauth" and not new_client_id:
        prompter.missing("the OAuth client id", "--oauth-client-id ID")
    new = replace(
        old,
        server=normalized_server(prompter, server) if server is not None else old.server,
        auth_type=new_auth,
        client_id=new_client_id if new_auth == "oauth" else None,
        scope=(scope or None) if scope is not None else old.scope,
        ca_bundle=absolute_ca_bundle(ca_bundle) if ca_bundle is not None else old.ca_bundle,
        comment=(comment or None) if comment is not None else old.comment,
        secret_storage=storage or old.secret_storage,
    )
    if new_auth == "apikey":
        new = replace(new, scope=None)
    new_secret = None if key.given else secrets.read(runtime, new_auth)
    keeps_key = old.holds_private_key and new_auth == "oauth" and new_secret is None
    if key.given or (keeps_key and prompt_secret):
        checked = key_from(prompter, key)
        if key.key_alg is None and old.key_alg and old.key_alg != checked.alg:
            # Without --key-alg a new key keeps the old alg when it fits (an RSA key registered
            # as RS512 is replaced by another RSA key registered the same way).
            with suppress(ConfigError):
                checked = check_private_key(
                    prompter,
                    checked.pem,
                    "the new key",
                    key_id=key.key_id,
                    key_alg=old.key_alg,
                    passphrase=None,
                )
        new_secret = checked.pem
        new = replace(new, credential_type="private_key", key_id=checked.kid, key_alg=checked.alg)
    elif keeps_key and (key.key_id or key.key_alg):
        # The stored key, registered under another kid or alg: checked against the key itself.
        checked = check_private_key(
            prompter,
            read_secret(old, runtime.env, interactive=runtime.can_prompt),
            f"context {name!r}",
            key_id=key.key_id or old.key_id,
            key_alg=key.key_alg or old.key_alg,
            passphrase=None,
        )
        new = replace(new, key_id=checked.kid, key_alg=checked.alg)
    elif key.key_id or key.key_alg:
        raise UsageError(
            f"Context {name!r} holds no private key: --key-id and --key-alg describe one.",
            hint="Give the key with --private-key-file FILE or --private-key-stdin.",
        )
    elif not keeps_key:
        new = replace(new, credential_type=None, key_id=None, key_alg=None)
    if new_secret is None and prompt_secret:
        prompt, what, flags = secret_prompt(new_auth)
        new_secret = prompter.ask(prompt, what=what, flags=flags, hidden=True)
    if new_secret is None and new_auth != old.auth_type:
        _, what, flags = secret_prompt(new_auth)
        raise UsageError(
            f"Switching {name!r} to {new_auth} needs {what}.",
            hint=f"Pass {flags} or --prompt-secret.",
        )
    if new == old and new_secret is None:
        prompter.say(f"Nothing to change in {name!r}.")
        emit(runtime, context_view(old, store.load_contexts(runtime.env).current, runtime.env))
        return
    if new.secret_storage != old.secret_storage:
        check_storage(new, runtime.env, interactive=runtime.can_prompt)
    credentials_changed = new_secret is not None or (
        (new.server, new.auth_type, new.client_id, new.scope, new.ca_bundle)
        != (old.server, old.auth_type, old.client_id, old.scope, old.ca_bundle)
        or (new.credential_type, new.key_id, new.key_alg)
        != (old.credential_type, old.key_id, old.key_alg)
    )
    interactive = runtime.can_prompt
    if credentials_changed and not no_verify:
        secret = new_secret or read_secret(old, runtime.env, interactive=interactive)
        me = verify_credentials(
            runtime,
            server=new.server,
            auth_type=new.auth_type,
            client_id=new.client_id,
            secret=secret,
            scope=new.scope,
            ca_bundle=new.ca_bundle,
            credential_type=new.credential_type,
            key_id=new.key_id,
            key_alg=new.key_alg,
        )
        prompter.say(f"Authenticated as {describe_user(me)} on {new.server}.")
    if new.secret_in_file and not old.secret_in_file:
        warn_file_storage(prompter, new, runtime.env)

    outcome = credential_store(runtime).update(name, new, new_secret)
    say_warnings(prompter, outcome)
    dropped = outcome.dropped
    if dropped:
        prompter.say(f"Dropped {dropped} cached token(s) minted with the old settings.")
    prompter.say(f"Updated context {name!r}.")
    view = context_view(outcome.after.get(name), outcome.after.current, runtime.env)
    view["droppedTokens"] = dropped
    emit(runtime, view)


def update(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="The context to change.", autocompletion=complete_context_names
        ),
    ],
    server: ServerOpt = None,
    auth_type: AuthTypeOpt = None,
    client_id: ClientIdOpt = None,
    client_secret_stdin: SecretStdinOpt = False,
    client_secret_env: SecretEnvOpt = None,
    api_key_stdin: ApiKeyStdinOpt = False,
    api_key_env: ApiKeyEnvOpt = None,
    private_key_file: KeyFileOpt = None,
    private_key_stdin: KeyStdinOpt = False,
    key_id: KeyIdOpt = None,
    key_alg: KeyAlgOpt = None,
    private_key_passphrase_env: PassphraseEnvOpt = None,
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope", help="New scopes; an empty string clears them.", show_default=False
        ),
    ] = None,
    ca_bundle: Annotated[
        str | None,
        typer.Option(
            "--ca-bundle", help="New CA bundle; an empty string clears it.", show_default=False
        ),
    ] = None,
    comment: Annotated[
        str | None,
        typer.Option(
            "--comment", help="New comment; an empty string clears it.", show_default=False
        ),
    ] = None,
    secret_storage: StorageOpt = None,
    prompt_secret: Annotated[
        bool, typer.Option("--prompt-secret", help="Ask for a new secret (hidden) at the terminal.")
    ] = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Save without checking the credentials.")
    ] = False,
    no_input: NoInputOpt = False,
    client_secret: ArgvSecretOpt = None,
    api_key: ArgvApiKeyOpt = None,
    private_key: ArgvKeyOpt = None,
    private_key_passphrase: ArgvPassphraseOpt = None,
) -> None:
    """Change only what is given. A new secret or key drops the context's cached tokens.

    A private key (--private-key-file/-stdin) replaces a client secret and the other way round;
    --key-id and --key-alg alone change how a stored key is registered.
    """
    refuse_argv_secret(client_secret, api_key)
    refuse_argv_key(private_key, private_key_passphrase)
    runtime = context_runtime(ctx, no_input=no_input)
    run_update(
        UpdateOptions(
            runtime,
            name=name,
            server=server,
            auth_type=auth_type.value if auth_type else None,
            client_id=client_id,
            secrets=SecretFlags(client_secret_stdin, client_secret_env, api_key_stdin, api_key_env),
            key=KeyFlags(
                private_key_file, private_key_stdin, private_key_passphrase_env, key_id, key_alg
            ),
            scope=scope,
            ca_bundle=ca_bundle,
            comment=comment,
            storage=secret_storage.value if secret_storage else None,
            prompt_secret=prompt_secret,
            no_verify=no_verify,
        )
    )
