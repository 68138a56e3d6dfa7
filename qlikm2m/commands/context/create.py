"""``context init`` (interactive, like ``qlik context init``) and ``context create`` (flags)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qlikm2m.commands.context.options import (
    ApiKeyEnvOpt,
    ApiKeyStdinOpt,
    ArgvApiKeyOpt,
    ArgvKeyOpt,
    ArgvPassphraseOpt,
    ArgvSecretOpt,
    AuthTypeOpt,
    CaBundleOpt,
    ClientIdOpt,
    CommentOpt,
    ForceOpt,
    KeyAlgOpt,
    KeyFileOpt,
    KeyIdOpt,
    KeyStdinOpt,
    NoInputOpt,
    PassphraseEnvOpt,
    ScopeOpt,
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
    CheckedKey,
    absolute_ca_bundle,
    context_view,
    credential_store,
    describe_user,
    emit,
    key_from,
    normalized_server,
    say_warnings,
    user_fields,
    verify_credentials,
    warn_file_storage,
)
from qlikm2m.commands.run_options import ContextRun
from qlikm2m.prompter import Prompter

if TYPE_CHECKING:
    from qlikm2m.contexts import AuthType, ContextsFile, SecretStorage
    from qlikm2m.runtime import Runtime

# ---- init and create -------------------------------------------------------------------------


@dataclass(frozen=True)
class Answers:
    """The settings of a new context as given by flags; None is asked for (``init``) or
    refused (``create``) where needed. ``storage``: where the secret goes."""

    server: str | None
    auth_type: AuthType | None
    client_id: str | None
    scope: str | None
    ca_bundle: str | None
    comment: str | None
    storage: SecretStorage
    secrets: SecretFlags
    key: KeyFlags = field(default_factory=KeyFlags)


def _default_name(server: str) -> str:
    from urllib.parse import urlsplit

    # host[:port]: urlsplit keeps the port only when it is not the default one after normalising.
    return urlsplit(server).netloc


def _auth_type(prompter: Prompter, answers: Answers) -> tuple[AuthType, bool]:
    """The auth type, and whether the OAuth client signs in with a private key."""
    from qlikm2m.errors import UsageError

    if answers.key.given:
        if answers.auth_type == "apikey":
            raise UsageError("A private key signs in an OAuth client, not with an API key.")
        return "oauth", True
    implied = answers.secrets.implied_auth
    if answers.client_id and implied == "apikey":
        raise UsageError("--oauth-client-id and an API key do not go together.")
    chosen = answers.auth_type or ("oauth" if answers.client_id else implied)
    if chosen is not None:
        if implied is not None and implied != chosen:
            raise UsageError(f"--auth-type {chosen} does not match the secret flag given.")
        return chosen, False
    if not prompter.runtime.can_prompt:
        prompter.missing(
            "the authentication type", "--auth-type oauth|apikey (or --oauth-client-id)"
        )
    while True:
        answer = _ask_ao(prompter)
        if answer in ("a", "api-key", "apikey", "api key"):
            return "apikey", False
        if answer in ("o", "oauth", ""):
            return "oauth", False
        if answer in ("k", "key", "private key", "private-key"):
            return "oauth", True
        prompter.say("Answer A (API key), O (OAuth client secret) or K (private key).")


_MAX_TRIES = 3


def _plain_http_twin(server: str, error: BaseException) -> str | None:
    """``http://host:port`` for a loopback ``https://`` server that answered in plain HTTP."""
    from urllib.parse import urlsplit

    from qlikm2m.errors import NetworkError
    from qlikm2m.settings import is_loopback_host

    if not (isinstance(error, NetworkError) and error.details.get("plainHttp")):
        return None
    parts = urlsplit(server)
    if parts.scheme != "https" or not is_loopback_host(parts.hostname or ""):
        return None
    return f"http://{parts.netloc}"


def _usable_storage(prompter: Prompter, storage: SecretStorage) -> SecretStorage:
    """``storage``, or the 0600 file when the keyring is unusable and the person agrees."""
    if storage != "keyring":
        return storage
    from qlikm2m.errors import KeyringError
    from qlikm2m.secretstore import KeyringAdapter

    runtime = prompter.runtime
    if not runtime.can_prompt:
        # No questions to waste: the store is checked with the rest, after the usage checks.
        return storage
    try:
        KeyringAdapter(runtime.env, interactive=runtime.can_prompt).check_available()
    except KeyringError as error:
        prompter.say(f"error: {error.message}")
        if not prompter.confirm(
            "Store the secret unencrypted in a 0600 file instead (--secret-storage file)?"
        ):
            raise
        return "file"
    return storage


def _ask_secret(prompter: Prompter, auth_type: AuthType) -> str:
    from qlikm2m.redaction import register_secret

    prompt, what, flags = secret_prompt(auth_type)
    secret = prompter.ask(prompt, what=what, flags=flags, hidden=True)
    register_secret(secret)
    return secret


def _ask_ao(prompter: Prompter) -> str:
    # qlik-cli's question (A/O), with its default shown and a third answer, K, for a client
    # that signs in with a private key; an empty answer takes OAuth (M2M) with a secret.
    return (
        prompter.read("A/O/K? (API key, OAuth client secret, or private Key) [O]:").strip().lower()
    )


def _confirm_replace(prompter: Prompter, name: str, existing: ContextsFile, force: bool) -> None:
    from qlikm2m.errors import UsageError

    if name not in existing.contexts or force:
        return
    if not prompter.runtime.can_prompt:
        raise UsageError(
            f"A context named {name!r} already exists.",
            hint=f"Pass --force to replace it (no prompt here: {prompter.why_not()}).",
        )
    if not prompter.confirm(f"Context {name!r} already exists. Overwrite it?"):
        raise UsageError(f"Kept the existing context {name!r}; nothing was changed.")


def _establish(
    runtime: Runtime,
    *,
    name: str | None,
    answers: Answers,
    force: bool,
    verify: bool,
    make_current: bool,
) -> None:
    """The shared body of ``init`` and ``create``: ask, check, validate, then save."""
    from qlikm2m.contexts import Context, load_contexts, validate_name
    from qlikm2m.errors import AuthError, NetworkError
    from qlikm2m.secretstore import check_storage

    prompter = Prompter(runtime)
    answers.secrets.check()
    answers.key.check(answers.secrets)
    existing = load_contexts(runtime.env)  # a broken file stops us before any question
    if name is not None:
        validate_name(name)
        _confirm_replace(prompter, name, existing, force)
    # Before any question: a keyring that cannot be used must not waste the answers.
    storage = _usable_storage(prompter, answers.storage)
    server = normalized_server(prompter, answers.server)
    named = name is not None
    if name is None:
        name = validate_name(_default_name(server))
        _confirm_replace(prompter, name, existing, force)
    auth_type, holds_key = _auth_type(prompter, answers)
    client_id = None
    if auth_type == "oauth":
        client_id = answers.client_id or prompter.ask(
            "Client ID:", what="the OAuth client id", flags="--oauth-client-id ID"
        )
    context = Context(
        name=name,
        server=server,
        auth_type=auth_type,
        client_id=client_id,
        scope=answers.scope or None if auth_type == "oauth" else None,
        ca_bundle=absolute_ca_bundle(answers.ca_bundle),
        comment=answers.comment or None,
        secret_storage=storage,
    )
    key: CheckedKey | None = None
    if holds_key:
        # Checked before anything is asked of the store: a weak key is exit 3, nothing stored.
        key = key_from(prompter, answers.key) if answers.key.given else None
        secret = key.pem if key is not None else None
    else:
        secret = answers.secrets.read(runtime, auth_type)
    secret_asked = secret is None
    _, what, flags = secret_prompt(auth_type)
    if secret is None and not runtime.can_prompt:
        prompter.missing(what, flags)
    location = check_storage(context, runtime.env, interactive=runtime.can_prompt)
    if holds_key and key is None:
        key = key_from(prompter, answers.key)
    if key is not None:
        secret = key.pem
        context = replace(context, credential_type="private_key", key_id=key.kid, key_alg=key.alg)
    if secret is None:
        secret = _ask_secret(prompter, auth_type)
    me: dict[str, Any] | None = None
    attempt = 1
    while verify:
        try:
            me = verify_credentials(
                runtime,
                server=context.server,
                auth_type=auth_type,
                client_id=context.client_id,
                secret=secret,
                scope=context.scope,
                ca_bundle=context.ca_bundle,
                credential_type=context.credential_type,
                key_id=context.key_id,
                key_alg=context.key_alg,
            )
            break
        except (AuthError, NetworkError) as error:
            plain = _plain_http_twin(context.server, error)
            if plain is not None:
                # The sandbox (and other loopback servers) speak plain http: no question needed.
                prompter.say(f"{context.server} answers in plain HTTP: using {plain}.")
                context = replace(context, server=plain)
                continue
            # Like `gh auth login`: ask again only for what was wrong, and only what was asked.
            url_asked = answers.server is None
            can_retry = runtime.can_prompt and attempt < _MAX_TRIES
            if not can_retry or not (
                (isinstance(error, AuthError) and secret_asked)
                or (isinstance(error, NetworkError) and url_asked)
            ):
                raise
            attempt += 1
            prompter.say(f"error: {error.message}")
            if isinstance(error, AuthError):
                if auth_type == "oauth" and answers.client_id is None:
                    asked = prompter.ask(
                        "Client ID:",
                        what="the OAuth client id",
                        flags="--oauth-client-id ID",
                        default=context.client_id,
                    )
                    context = replace(context, client_id=asked)
                if holds_key:
                    key = key_from(
                        prompter, KeyFlags(key_id=answers.key.key_id, key_alg=answers.key.key_alg)
                    )
                    secret = key.pem
                    context = replace(context, key_id=key.kid, key_alg=key.alg)
                else:
                    secret = _ask_secret(prompter, auth_type)
            else:
                server = normalized_server(prompter, None, default=context.server)
                context = replace(context, server=server)
                if not named:
                    renamed = validate_name(_default_name(server))
                    if renamed != context.name:
                        _confirm_replace(prompter, renamed, existing, force)
                        context = replace(context, name=renamed)
    if me is not None:
        prompter.say(f"Authenticated as {describe_user(me)} on {context.server}.")
    name = context.name
    if context.secret_in_file:
        warn_file_storage(prompter, context, runtime.env)
    outcome = credential_store(runtime).save(
        context,
        secret,
        make_current=make_current,
        replace_existing=force or name in existing.contexts,
    )
    say_warnings(prompter, outcome)
    context = outcome.after.contexts[name]
    current = name if make_current else existing.current
    note = " and made it the current context" if make_current else ""
    held = "private key" if context.holds_private_key else "secret"
    prompter.say(f"Saved context {name!r}{note}; its {held} is in the {location.description}.")
    view = context_view(context, current, runtime.env)
    if me is not None:
        view["authenticatedAs"] = user_fields(me)
    view["verified"] = me is not None
    if runtime.stdout_is_tty and not runtime.output_explicit:
        # A person at a terminal has just read the two lines above; the record is for scripts
        # (a pipe) and for whoever asks with -o.
        return
    emit(runtime, view)


@dataclass(frozen=True, kw_only=True)
class InitOptions(ContextRun):
    """``name`` None: asked for, the tenant's host by default."""

    name: str | None = None
    answers: Answers
    force: bool = False


def run_init(options: InitOptions) -> None:
    """Set up a context, asking at the terminal for whatever ``answers`` leaves open (or
    refusing, naming the flag, when nobody can answer); saved only once a token mints and
    users/me answers, then made current. Prints the context's view."""
    _establish(
        options.runtime,
        name=options.name,
        answers=options.answers,
        force=options.force,
        verify=True,
        make_current=True,
    )


def init(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="Context name (default: the tenant's host[:port]).",
            show_default=False,
        ),
    ] = None,
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
    scope: ScopeOpt = None,
    ca_bundle: CaBundleOpt = None,
    comment: CommentOpt = None,
    secret_storage: StorageOpt = None,
    force: ForceOpt = False,
    no_input: NoInputOpt = False,
    client_secret: ArgvSecretOpt = None,
    api_key: ArgvApiKeyOpt = None,
    private_key: ArgvKeyOpt = None,
    private_key_passphrase: ArgvPassphraseOpt = None,
) -> None:
    """Set up a context interactively, like `qlik context init`: validated, then made current.

    Asks for the tenant URL, A(PI key), O(Auth client secret) or K (an OAuth client's private
    key), then the client id and secret (hidden), the private key's file, or the API key
    (hidden); every question can be answered by its flag. Nothing is saved unless a token can be
    minted and users/me answers.
    """
    refuse_argv_secret(client_secret, api_key)
    refuse_argv_key(private_key, private_key_passphrase)
    runtime = context_runtime(ctx, no_input=no_input)
    run_init(
        InitOptions(
            runtime,
            name=name,
            answers=Answers(
                server=server,
                auth_type=auth_type.value if auth_type else None,
                client_id=client_id,
                scope=scope,
                ca_bundle=ca_bundle,
                comment=comment,
                storage=secret_storage.value if secret_storage else "keyring",
                secrets=SecretFlags(
                    client_secret_stdin, client_secret_env, api_key_stdin, api_key_env
                ),
                key=KeyFlags(
                    private_key_file,
                    private_key_stdin,
                    private_key_passphrase_env,
                    key_id,
                    key_alg,
                ),
            ),
            force=force,
        )
    )


@dataclass(frozen=True, kw_only=True)
class CreateOptions(ContextRun):
    name: str
    answers: Answers
    force: bool = False
    verify: bool = True
    use: bool = False


def run_create(options: CreateOptions) -> None:
    """Create context ``name`` from ``answers`` (the secret from its flags or a prompt at a
    terminal); verified against the tenant unless ``verify`` is off, made current with ``use``.
    Raises UsageError naming the flags when the tenant URL or the credentials are missing."""
    runtime, answers = options.runtime, options.answers
    prompter = Prompter(runtime)
    if answers.server is None:
        prompter.missing("the tenant URL", "--server URL")
    if (
        answers.auth_type is None
        and answers.client_id is None
        and answers.secrets.implied_auth is None
        and not answers.key.given
    ):
        prompter.missing(
            "the credentials",
            "--oauth-client-id ID (with --client-secret-stdin, --client-secret-env VAR or "
            "--private-key-file FILE) or --api-key-stdin",
        )
    _establish(
        runtime,
        name=options.name,
        answers=answers,
        force=options.force,
        verify=options.verify,
        make_current=options.use,
    )


def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Context name.")],
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
    scope: ScopeOpt = None,
    ca_bundle: CaBundleOpt = None,
    comment: CommentOpt = None,
    secret_storage: StorageOpt = None,
    force: ForceOpt = False,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Save without minting a token and calling users/me.")
    ] = False,
    use: Annotated[bool, typer.Option("--use", help="Also make it the current context.")] = False,
    no_input: NoInputOpt = False,
    client_secret: ArgvSecretOpt = None,
    api_key: ArgvApiKeyOpt = None,
    private_key: ArgvKeyOpt = None,
    private_key_passphrase: ArgvPassphraseOpt = None,
) -> None:
    """Create a context from flags (for scripts); the secret from stdin, a variable or a prompt,
    or a private key from a file or stdin (private-key JWT)."""
    refuse_argv_secret(client_secret, api_key)
    refuse_argv_key(private_key, private_key_passphrase)
    run_create(
        CreateOptions(
            context_runtime(ctx, no_input=no_input),
            name=name,
            answers=Answers(
                server=server,
                auth_type=auth_type.value if auth_type else None,
                client_id=client_id,
                scope=scope,
                ca_bundle=ca_bundle,
                comment=comment,
                storage=secret_storage.value if secret_storage else "keyring",
                secrets=SecretFlags(
                    client_secret_stdin, client_secret_env, api_key_stdin, api_key_env
                ),
                key=KeyFlags(
                    private_key_file, private_key_stdin, private_key_passphrase_env, key_id, key_alg
                ),
            ),
            force=force,
            verify=not no_verify,
            use=use,
        )
    )
