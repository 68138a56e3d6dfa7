"""``qlikm2m context ...``: qlik-cli's context commands, with the secret in the OS keyring.

Secrets come only from hidden prompts, stdin (``--client-secret-stdin``, ``--api-key-stdin``) or a
named environment variable (``--client-secret-env``, ``--api-key-env``), never from argv. Core
modules are imported inside the commands so that ``--help`` stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from qlikm2m.commands.tenant_options import output_command

if TYPE_CHECKING:
    from qlikm2m.contexts import AuthType, Context, ContextsFile, SecretStorage
    from qlikm2m.runtime import Runtime


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


# ---- prompting -------------------------------------------------------------------------------


class _Prompter:
    """Asks on the terminal (prompts on stderr), or fails at once naming the flag to use."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def why_not(self) -> str:
        if self.runtime.no_input:
            return "--no-input was given"
        if self.runtime.in_ci:
            return "CI is set"
        return "stdin is not a terminal"

    def missing(self, what: str, flags: str) -> NoReturn:
        from qlikm2m.errors import UsageError

        raise UsageError(
            f"Missing {what}: pass {flags}.",
            hint=f"qlikm2m does not prompt here ({self.why_not()}).",
        )

    def ask(self, prompt: str, *, what: str, flags: str, hidden: bool = False) -> str:
        if not self.runtime.can_prompt:
            self.missing(what, flags)
        while True:
            value = self.read(prompt, hidden=hidden).strip()
            if value:
                return value

    def confirm(self, question: str) -> bool:
        answer = self.read(f"{question} [y/N]:").strip().lower()
        return answer in ("y", "yes")

    def read(self, prompt: str, *, hidden: bool = False) -> str:
        stream = self.runtime.stderr
        if hidden:
            import getpass

            # getpass talks to the terminal itself and turns echo off; Ctrl-C propagates.
            try:
                value = getpass.getpass(prompt + " ", stream=stream)
            except EOFError:  # Ctrl-D: the person gave up, as with Ctrl-C
                stream.write("\n")
                raise KeyboardInterrupt from None
        else:
            stream.write(prompt + " ")
            stream.flush()
            value = self.runtime.stdin.readline()
            if not value:  # end of input (Ctrl-D): the person gave up
                stream.write("\n")
                raise KeyboardInterrupt
        return value

    def say(self, text: str) -> None:
        self.runtime.stderr.write(text + "\n")
        self.runtime.stderr.flush()


def _runtime(ctx: typer.Context, *, no_input: bool = False) -> Runtime:
    from qlikm2m.runtime import Runtime

    runtime = ctx.ensure_object(Runtime)
    # The global --no-input must come before the command; accept it after it too.
    runtime.no_input = runtime.no_input or no_input
    return runtime


def _refuse_argv_secret(client_secret: str | None, api_key: str | None) -> None:
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


# ---- secrets from flags ----------------------------------------------------------------------


@dataclass(frozen=True)
class _SecretFlags:
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
            if runtime.stdin_is_tty:
                raise UsageError(
                    f"{stdin_flag} reads the secret from a pipe, but stdin is a terminal.",
                    hint=f'e.g. `printf %s "$SECRET" | qlikm2m context ... {stdin_flag}`, or '
                    "leave the flag out to be asked for it (hidden).",
                )
            value = runtime.stdin.readline().strip()
            if not value:
                raise UsageError(f"{stdin_flag} was given but stdin held no secret.")
        elif env_name:
            value = runtime.env.get(env_name, "").strip()
            if not value:
                raise UsageError(f"The environment variable {env_name} is not set or empty.")
        else:
            return None
        register_secret(value)
        return value


def _secret_prompt(auth_type: AuthType) -> tuple[str, str, str]:
    if auth_type == "apikey":
        return "API-key:", "the API key", "--api-key-stdin or --api-key-env VAR"
    return (
        "Client Secret:",
        "the client secret",
        "--client-secret-stdin or --client-secret-env VAR",
    )


# ---- validation, saving, rendering ------------------------------------------------------------


def _verify(
    runtime: Runtime,
    *,
    server: str,
    auth_type: AuthType,
    client_id: str | None,
    secret: str,
    scope: str | None,
    ca_bundle: str | None,
) -> dict[str, Any]:
    """Mint a token (OAuth) and call users/me: the credentials work, or nothing is saved."""
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
    )
    # No cache: a failed init must leave nothing behind, not even a token file.
    with QlikClient(settings, runtime, use_token_cache=False) as client:
        me = client.get_json("/api/v1/users/me")
    return me if isinstance(me, dict) else {}


def _who(me: dict[str, Any]) -> dict[str, str]:
    return {
        key: str(me[key])
        for key in ("id", "name", "email", "subject", "clientId", "tenantId")
        if me.get(key) not in (None, "")
    }


def _describe_user(me: dict[str, Any]) -> str:
    who = _who(me)
    label = who.get("name") or who.get("email") or who.get("subject") or who.get("id") or "?"
    extra = who.get("subject") if who.get("subject") and who.get("subject") != label else None
    return f"{label} ({extra})" if extra else label


def _context_view(context: Context, current: str | None, env: Any) -> dict[str, Any]:
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
    }


def _emit(runtime: Runtime, data: Any) -> None:
    from qlikm2m.output import Output

    Output(runtime).emit(data)


def _warn_file_storage(prompter: _Prompter, context: Context, env: Any) -> None:
    from qlikm2m.secretstore import secret_file_path

    prompter.say(
        f"warning: the secret of {context.name!r} is stored unencrypted in "
        f"{secret_file_path(context.name, env)} (mode 0600), as asked with --secret-storage "
        "file: anyone who can read your files or their backups can read it."
    )


def _drop_tokens(env: Any, context: Context) -> int:
    from qlikm2m.errors import QlikM2MError
    from qlikm2m.tokens import drop_cached_tokens

    try:
        return drop_cached_tokens(env, server=context.server, client_id=context.client_id)
    except QlikM2MError:
        # A hand-edited server that no longer parses: no token can have been cached for it.
        return 0


def _save_new(
    runtime: Runtime,
    context: Context,
    secret: str,
    *,
    make_current: bool,
    previous: Context | None,
) -> None:
    """Store the secret, then the context; undo the secret if the context cannot be written."""
    from qlikm2m import contexts as store
    from qlikm2m.secretstore import delete_secret, store_secret

    interactive = runtime.can_prompt
    store_secret(context, secret, runtime.env, interactive=interactive)

    def change(current: ContextsFile) -> ContextsFile:
        updated = current.with_context(context)
        return updated.with_current(context.name) if make_current else updated

    try:
        store.update_contexts(runtime.env, change)
    except BaseException:
        if previous is None:
            from contextlib import suppress

            from qlikm2m.errors import QlikM2MError

            with suppress(QlikM2MError):
                delete_secret(context, runtime.env, interactive=interactive)
        raise
    if previous is not None:
        if previous.secret_storage != context.secret_storage:
            from contextlib import suppress

            from qlikm2m.errors import QlikM2MError

            with suppress(QlikM2MError):
                delete_secret(previous, runtime.env, interactive=interactive)
        _drop_tokens(runtime.env, previous)


# ---- init and create -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answers:
    server: str | None
    auth_type: AuthType | None
    client_id: str | None
    scope: str | None
    ca_bundle: str | None
    comment: str | None
    storage: SecretStorage
    secrets: _SecretFlags


def _default_name(server: str) -> str:
    from urllib.parse import urlsplit

    # host[:port]: urlsplit keeps the port only when it is not the default one after normalising.
    return urlsplit(server).netloc


def _normalized_server(prompter: _Prompter, given: str | None) -> str:
    from qlikm2m.errors import ConfigError
    from qlikm2m.settings import normalize_server_url

    if given is not None:
        return normalize_server_url(given)
    while True:
        raw = prompter.ask("Enter tenant url:", what="the tenant URL", flags="--server URL")
        try:
            return normalize_server_url(raw)
        except ConfigError as error:
            # At a prompt a typo deserves another try, not an exit.
            prompter.say(f"error: {error.message}")


def _auth_type(prompter: _Prompter, answers: _Answers) -> AuthType:
    from qlikm2m.errors import UsageError

    implied = answers.secrets.implied_auth
    if answers.client_id and implied == "apikey":
        raise UsageError("--oauth-client-id and an API key do not go together.")
    chosen = answers.auth_type or ("oauth" if answers.client_id else implied)
    if chosen is not None:
        if implied is not None and implied != chosen:
            raise UsageError(f"--auth-type {chosen} does not match the secret flag given.")
        return chosen
    if not prompter.runtime.can_prompt:
        prompter.missing(
            "the authentication type", "--auth-type oauth|apikey (or --oauth-client-id)"
        )
    while True:
        answer = _ask_ao(prompter)
        if answer in ("a", "api-key", "apikey", "api key"):
            return "apikey"
        if answer in ("o", "oauth", ""):
            return "oauth"
        prompter.say("Answer A (API key) or O (OAuth client).")


def _ask_ao(prompter: _Prompter) -> str:
    # qlik-cli's question; an empty answer takes the default, OAuth (M2M), unlike ask().
    return prompter.read("A/O?:").strip().lower()


def _confirm_replace(prompter: _Prompter, name: str, existing: ContextsFile, force: bool) -> None:
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
    answers: _Answers,
    force: bool,
    verify: bool,
    make_current: bool,
) -> None:
    """The shared body of ``init`` and ``create``: ask, check, validate, then save."""
    from qlikm2m.contexts import Context, load_contexts, validate_name
    from qlikm2m.secretstore import check_storage

    prompter = _Prompter(runtime)
    answers.secrets.check()
    existing = load_contexts(runtime.env)  # a broken file stops us before any question
    if name is not None:
        validate_name(name)
        _confirm_replace(prompter, name, existing, force)
    server = _normalized_server(prompter, answers.server)
    if name is None:
        name = validate_name(_default_name(server))
        _confirm_replace(prompter, name, existing, force)
    auth_type = _auth_type(prompter, answers)
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
        ca_bundle=_absolute(answers.ca_bundle),
        comment=answers.comment or None,
        secret_storage=answers.storage,
    )
    secret = answers.secrets.read(runtime, auth_type)
    prompt, what, flags = _secret_prompt(auth_type)
    if secret is None and not runtime.can_prompt:
        prompter.missing(what, flags)
    # Before the secret is typed: a keyring that cannot be used must not waste the effort.
    location = check_storage(context, runtime.env, interactive=runtime.can_prompt)
    if secret is None:
        secret = prompter.ask(prompt, what=what, flags=flags, hidden=True)
        from qlikm2m.redaction import register_secret

        register_secret(secret)
    me: dict[str, Any] | None = None
    if verify:
        me = _verify(
            runtime,
            server=server,
            auth_type=auth_type,
            client_id=client_id,
            secret=secret,
            scope=context.scope,
            ca_bundle=context.ca_bundle,
        )
        prompter.say(f"Authenticated as {_describe_user(me)} on {server}.")
    if context.secret_in_file:
        _warn_file_storage(prompter, context, runtime.env)
    _save_new(
        runtime,
        context,
        secret,
        make_current=make_current,
        previous=existing.contexts.get(name),
    )
    current = name if make_current else existing.current
    note = " and made it the current context" if make_current else ""
    prompter.say(f"Saved context {name!r}{note}; its secret is in the {location.description}.")
    view = _context_view(context, current, runtime.env)
    if me is not None:
        view["authenticatedAs"] = _who(me)
    view["verified"] = me is not None
    if runtime.stdout_is_tty and not runtime.output_explicit:
        # A person at a terminal has just read the two lines above; the record is for scripts
        # (a pipe) and for whoever asks with -o.
        return
    _emit(runtime, view)


def _absolute(path: str | None) -> str | None:
    if not path:
        return None
    from pathlib import Path

    from qlikm2m.errors import ConfigError

    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise ConfigError(f"The CA bundle {resolved} does not exist or is not a file.")
    return str(resolved)


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
    scope: ScopeOpt = None,
    ca_bundle: CaBundleOpt = None,
    comment: CommentOpt = None,
    secret_storage: StorageOpt = None,
    force: ForceOpt = False,
    no_input: NoInputOpt = False,
    client_secret: ArgvSecretOpt = None,
    api_key: ArgvApiKeyOpt = None,
) -> None:
    """Set up a context interactively, like `qlik context init`: validated, then made current.

    Asks for the tenant URL, A(PI key) or O(Auth), then the client id and secret (hidden) or the
    API key (hidden); every question can be answered by its flag. Nothing is saved unless a
    token can be minted and users/me answers.
    """
    _refuse_argv_secret(client_secret, api_key)
    runtime = _runtime(ctx, no_input=no_input)
    _establish(
        runtime,
        name=name,
        answers=_Answers(
            server=server,
            auth_type=auth_type.value if auth_type else None,
            client_id=client_id,
            scope=scope,
            ca_bundle=ca_bundle,
            comment=comment,
            storage=secret_storage.value if secret_storage else "keyring",
            secrets=_SecretFlags(
                client_secret_stdin, client_secret_env, api_key_stdin, api_key_env
            ),
        ),
        force=force,
        verify=True,
        make_current=True,
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
) -> None:
    """Create a context from flags (for scripts); the secret from stdin, a variable or a prompt."""
    _refuse_argv_secret(client_secret, api_key)
    runtime = _runtime(ctx, no_input=no_input)
    prompter = _Prompter(runtime)
    if server is None:
        prompter.missing("the tenant URL", "--server URL")
    secrets = _SecretFlags(client_secret_stdin, client_secret_env, api_key_stdin, api_key_env)
    if auth_type is None and client_id is None and secrets.implied_auth is None:
        prompter.missing(
            "the credentials",
            "--oauth-client-id ID (with --client-secret-stdin or --client-secret-env VAR) or "
            "--api-key-stdin",
        )
    _establish(
        runtime,
        name=name,
        answers=_Answers(
            server=server,
            auth_type=auth_type.value if auth_type else None,
            client_id=client_id,
            scope=scope,
            ca_bundle=ca_bundle,
            comment=comment,
            storage=secret_storage.value if secret_storage else "keyring",
            secrets=secrets,
        ),
        force=force,
        verify=not no_verify,
        make_current=use,
    )


# ---- update ----------------------------------------------------------------------------------


def update(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The context to change.")],
    server: ServerOpt = None,
    auth_type: AuthTypeOpt = None,
    client_id: ClientIdOpt = None,
    client_secret_stdin: SecretStdinOpt = False,
    client_secret_env: SecretEnvOpt = None,
    api_key_stdin: ApiKeyStdinOpt = False,
    api_key_env: ApiKeyEnvOpt = None,
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
) -> None:
    """Change only what is given. A new secret drops the context's cached tokens."""
    from dataclasses import replace

    from qlikm2m import contexts as store
    from qlikm2m.errors import UsageError
    from qlikm2m.secretstore import (
        check_storage,
        copy_secret,
        delete_secret,
        read_secret,
        store_secret,
    )

    _refuse_argv_secret(client_secret, api_key)
    runtime = _runtime(ctx, no_input=no_input)
    prompter = _Prompter(runtime)
    secrets = _SecretFlags(client_secret_stdin, client_secret_env, api_key_stdin, api_key_env)
    secrets.check()
    old = store.load_contexts(runtime.env).get(name)

    new_auth: AuthType = auth_type.value if auth_type else (secrets.implied_auth or old.auth_type)
    new_client_id = client_id if client_id is not None else old.client_id
    if new_auth == "oauth" and not new_client_id:
        prompter.missing("the OAuth client id", "--oauth-client-id ID")
    new = replace(
        old,
        server=_normalized_server(prompter, server) if server is not None else old.server,
        auth_type=new_auth,
        client_id=new_client_id if new_auth == "oauth" else None,
        scope=(scope or None) if scope is not None else old.scope,
        ca_bundle=_absolute(ca_bundle) if ca_bundle is not None else old.ca_bundle,
        comment=(comment or None) if comment is not None else old.comment,
        secret_storage=secret_storage.value if secret_storage else old.secret_storage,
    )
    if new_auth == "apikey":
        new = replace(new, scope=None)
    new_secret = secrets.read(runtime, new_auth)
    if new_secret is None and prompt_secret:
        prompt, what, flags = _secret_prompt(new_auth)
        new_secret = prompter.ask(prompt, what=what, flags=flags, hidden=True)
    if new_secret is None and new_auth != old.auth_type:
        _, what, flags = _secret_prompt(new_auth)
        raise UsageError(
            f"Switching {name!r} to {new_auth} needs {what}.",
            hint=f"Pass {flags} or --prompt-secret.",
        )
    if new == old and new_secret is None:
        prompter.say(f"Nothing to change in {name!r}.")
        _emit(runtime, _context_view(old, store.load_contexts(runtime.env).current, runtime.env))
        return
    if new.secret_storage != old.secret_storage:
        check_storage(new, runtime.env, interactive=runtime.can_prompt)
    credentials_changed = new_secret is not None or (
        (new.server, new.auth_type, new.client_id, new.scope, new.ca_bundle)
        != (old.server, old.auth_type, old.client_id, old.scope, old.ca_bundle)
    )
    interactive = runtime.can_prompt
    if credentials_changed and not no_verify:
        secret = new_secret or read_secret(old, runtime.env, interactive=interactive)
        me = _verify(
            runtime,
            server=new.server,
            auth_type=new.auth_type,
            client_id=new.client_id,
            secret=secret,
            scope=new.scope,
            ca_bundle=new.ca_bundle,
        )
        prompter.say(f"Authenticated as {_describe_user(me)} on {new.server}.")
    if new.secret_in_file and not old.secret_in_file:
        _warn_file_storage(prompter, new, runtime.env)

    if new_secret is not None:
        store_secret(new, new_secret, runtime.env, interactive=interactive)
    elif new.secret_storage != old.secret_storage:
        copy_secret(old, new, runtime.env, interactive=interactive)

    def change(current: ContextsFile) -> ContextsFile:
        current.get(name)  # removed meanwhile by another process: say so rather than resurrect it
        return current.with_context(new)

    result = store.update_contexts(runtime.env, change)
    if new.secret_storage != old.secret_storage:
        delete_secret(old, runtime.env, interactive=interactive)
    dropped = _drop_tokens(runtime.env, old) if credentials_changed else 0
    if dropped:
        prompter.say(f"Dropped {dropped} cached token(s) minted with the old settings.")
    prompter.say(f"Updated context {name!r}.")
    view = _context_view(new, result.current, runtime.env)
    view["droppedTokens"] = dropped
    _emit(runtime, view)


# ---- listing and selection -------------------------------------------------------------------


def ls(ctx: typer.Context) -> None:
    """List contexts: name, server, auth type, whether current, comment."""
    from qlikm2m.contexts import load_contexts

    runtime = _runtime(ctx)
    contexts = load_contexts(runtime.env)
    rows = [
        {
            "name": context.name,
            "server": context.server,
            "authType": context.auth_type,
            "current": context.name == contexts.current,
            "comment": context.comment or "",
        }
        for context in sorted(contexts.contexts.values(), key=lambda c: c.name)
    ]
    _emit(runtime, rows)


def use(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The context to make current.")],
) -> None:
    """Make NAME the current context (--context / QLIK_CONTEXT still win per command)."""
    from qlikm2m.contexts import update_contexts

    runtime = _runtime(ctx)
    update_contexts(runtime.env, lambda current: current.with_current(name))
    _Prompter(runtime).say(f"Switched to context {name!r}.")


def current(ctx: typer.Context) -> None:
    """Print the name of the current context (exit 3 when none is set)."""
    from qlikm2m.contexts import load_contexts
    from qlikm2m.errors import ConfigError

    runtime = _runtime(ctx)
    contexts = load_contexts(runtime.env)
    if contexts.current is None:
        raise ConfigError(
            "No current context is set.",
            hint="Pick one with `qlikm2m context use NAME` (see `qlikm2m context ls`).",
        )
    if runtime.output_explicit:
        _emit(runtime, {"name": contexts.current})
    else:
        runtime.stdout.write(contexts.current + "\n")


def clear(ctx: typer.Context) -> None:
    """Unset the current context (the contexts themselves are kept)."""
    from qlikm2m.contexts import update_contexts

    runtime = _runtime(ctx)
    update_contexts(runtime.env, lambda current: current.with_current(None))
    _Prompter(runtime).say("No context is current now.")


def get(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="Context (default: --context, $QLIK_CONTEXT, then the current one).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show a context: its settings with the secret masked, where the secret is, each value's source."""
    from dataclasses import replace

    from qlikm2m.contexts import load_contexts
    from qlikm2m.errors import ConfigError, QlikM2MError
    from qlikm2m.settings import resolve_settings

    runtime = _runtime(ctx)
    contexts = load_contexts(runtime.env)
    chosen = (
        name or runtime.context or runtime.env.get("QLIK_CONTEXT", "").strip() or contexts.current
    )
    if not chosen:
        raise ConfigError(
            "No context given and none is current.",
            hint="Name one (`qlikm2m context get NAME`) or set one with `qlikm2m context use NAME`.",
        )
    context = contexts.get(chosen)
    view = _context_view(context, contexts.current, runtime.env)
    try:
        # Without NAME, resolve exactly as any command would (--context, $QLIK_CONTEXT, current).
        resolved = resolve_settings(replace(runtime, context=name) if name else runtime)
        rows = resolved.describe()
        for row in rows:
            if name and row["name"] == "context":
                row["source"] = "argument NAME"
        view["settings"] = rows
    except QlikM2MError as error:
        view["settings"] = []
        view["settingsError"] = error.message
    _emit(runtime, view)


# ---- removal and renaming --------------------------------------------------------------------


def rm(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The context to delete.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", "-f", help="Delete the context even if its keyring entry cannot be removed."
        ),
    ] = False,
) -> None:
    """Delete a context, its keyring entry (or secret file) and its cached tokens.

    The tokens stay while another context uses the same client on the same tenant.
    """
    from qlikm2m.contexts import load_contexts, update_contexts
    from qlikm2m.errors import KeyringError
    from qlikm2m.secretstore import delete_secret

    runtime = _runtime(ctx)
    prompter = _Prompter(runtime)
    context = load_contexts(runtime.env).get(name)
    try:
        secret_deleted = delete_secret(context, runtime.env, interactive=runtime.can_prompt)
    except KeyringError as error:
        if not force:
            error.hint = (
                f"{error.hint} Or pass --force to delete the context anyway and remove its "
                "keyring entry later yourself."
            )
            raise
        prompter.say(f"warning: the keyring entry of {name!r} was not removed: {error.message}")
        secret_deleted = False
    remaining = update_contexts(
        runtime.env, lambda current: current.without(name) if name in current.contexts else current
    )
    # Tokens are cached per credential set, not per context: while another context still uses
    # this client on this server, its token stays (dropping it would only cost them a new one).
    sharing = sorted(
        other.name
        for other in remaining.contexts.values()
        if (other.server, other.client_id) == (context.server, context.client_id)
    )
    dropped = 0 if sharing else _drop_tokens(runtime.env, context)
    prompter.say(f"Deleted context {name!r}.")
    if sharing:
        prompter.say(f"Kept its cached token: {', '.join(map(repr, sharing))} use the same client.")
    _emit(runtime, {"removed": name, "secretDeleted": secret_deleted, "droppedTokens": dropped})


def rename(
    ctx: typer.Context,
    old_name: Annotated[str, typer.Argument(metavar="OLD", help="The current name.")],
    new_name: Annotated[str, typer.Argument(metavar="NEW", help="The new name.")],
    force: ForceOpt = False,
) -> None:
    """Rename a context; its secret moves to the new name. Cached tokens stay valid."""
    from dataclasses import replace

    from qlikm2m.contexts import load_contexts, update_contexts, validate_name
    from qlikm2m.errors import ConfigError, KeyringError, UsageError
    from qlikm2m.secretstore import copy_secret, delete_secret

    runtime = _runtime(ctx)
    prompter = _Prompter(runtime)
    validate_name(new_name)
    if old_name == new_name:
        raise UsageError("The old and new names are the same.")
    contexts = load_contexts(runtime.env)
    old = contexts.get(old_name)
    if new_name in contexts.contexts and not force:
        raise UsageError(
            f"A context named {new_name!r} already exists.", hint="Pass --force to replace it."
        )
    replaced = contexts.contexts.get(new_name)
    new = replace(old, name=new_name)
    interactive = runtime.can_prompt
    copy_secret(old, new, runtime.env, interactive=interactive)

    def change(current: ContextsFile) -> ContextsFile:
        if old_name not in current.contexts:
            raise ConfigError(f"Context {old_name!r} was removed meanwhile; nothing renamed.")
        moved = current.without(old_name).with_context(new)
        return moved.with_current(new_name) if current.current == old_name else moved

    try:
        result = update_contexts(runtime.env, change)
    except BaseException:
        if replaced is None:
            from contextlib import suppress

            with suppress(KeyringError, ConfigError):
                delete_secret(new, runtime.env, interactive=interactive)
        raise
    try:
        delete_secret(old, runtime.env, interactive=interactive)
    except KeyringError as error:
        prompter.say(
            f"warning: the old keyring entry of {old_name!r} was not removed: {error.message}"
        )
    if replaced is not None and replaced.secret_storage != new.secret_storage:
        from contextlib import suppress

        with suppress(KeyringError, ConfigError):
            delete_secret(replaced, runtime.env, interactive=interactive)
    prompter.say(
        f"Renamed {old_name!r} to {new_name!r}. Cached tokens are keyed by tenant and client, not "
        "by context name, so they stay valid for the new name."
    )
    view = _context_view(new, result.current, runtime.env)
    view["renamedFrom"] = old_name
    _emit(runtime, view)


# ---- import from qlik-cli --------------------------------------------------------------------


def import_qlik_cli(
    ctx: typer.Context,
    path: Annotated[
        str | None,
        typer.Argument(
            metavar="PATH",
            help="qlik-cli's contexts file (default: ~/.qlik/contexts.yml).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be imported; change nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Replace qlikm2m contexts of the same name.")
    ] = False,
    secret_storage: StorageOpt = None,
) -> None:
    """Import qlik-cli's contexts (API key and M2M OAuth); secrets go to the keyring.

    The qlik-cli file is only read, never changed. Nothing is verified against the tenants.
    """
    from contextlib import suppress
    from pathlib import Path

    from qlikm2m.contexts import load_contexts, update_contexts
    from qlikm2m.errors import QlikM2MError
    from qlikm2m.qlikcli_import import default_path, read_qlik_cli_contexts
    from qlikm2m.secretstore import check_storage, delete_secret, describe_location, store_secret

    runtime = _runtime(ctx)
    prompter = _Prompter(runtime)
    interactive = runtime.can_prompt
    source = Path(path).expanduser() if path else default_path(runtime.env)
    storage: SecretStorage = secret_storage.value if secret_storage else "keyring"
    found = read_qlik_cli_contexts(source, secret_storage=storage)
    existing = load_contexts(runtime.env)
    skipped = [{"name": entry.name, "reason": entry.reason} for entry in found.skipped]
    chosen = []
    for candidate in found.candidates:
        if candidate.context.name in existing.contexts and not force:
            skipped.append(
                {
                    "name": candidate.context.name,
                    "reason": "a qlikm2m context of that name exists (--force replaces it)",
                }
            )
        else:
            chosen.append(candidate)
    make_current = (
        existing.current is None
        and found.current is not None
        and any(candidate.context.name == found.current for candidate in chosen)
    )
    storage_problem: QlikM2MError | None = None
    if chosen and dry_run:
        # A dry run lists what it would do, then fails the way the import would (exit 7 with
        # the remedies) when the secrets could not be stored.
        try:
            check_storage(chosen[0].context, runtime.env, interactive=runtime.can_prompt)
        except QlikM2MError as problem:
            storage_problem = problem
    if chosen and not dry_run:
        check_storage(chosen[0].context, runtime.env, interactive=runtime.can_prompt)
        if storage == "file":
            prompter.say(
                "warning: the imported secrets are stored unencrypted in 0600 files, as asked "
                "with --secret-storage file."
            )
        stored: list[Context] = []

        def change(current: ContextsFile) -> ContextsFile:
            for candidate in chosen:
                current = current.with_context(candidate.context)
            if make_current and current.current is None and found.current is not None:
                current = current.with_current(found.current)
            return current

        try:
            for candidate in chosen:
                store_secret(
                    candidate.context, candidate.secret, runtime.env, interactive=interactive
                )
                stored.append(candidate.context)
            update_contexts(runtime.env, change)
        except BaseException:
            # All or nothing: secrets stored for names that were new are taken back out.
            for context in stored:
                if context.name not in existing.contexts:
                    with suppress(QlikM2MError):
                        delete_secret(context, runtime.env, interactive=interactive)
            raise
    imported = [
        {
            "name": candidate.context.name,
            "server": candidate.context.server,
            "authType": candidate.context.auth_type,
            "secretLocation": describe_location(candidate.context, runtime.env).description,
            "notes": list(candidate.notes),
        }
        for candidate in chosen
    ]
    verb = "Would import" if dry_run else "Imported"
    prompter.say(f"{verb} {len(imported)} context(s) from {source}; skipped {len(skipped)}.")
    for entry in skipped:
        prompter.say(f"  skipped {entry['name']!r}: {entry['reason']}")
    if chosen and not dry_run:
        prompter.say(
            f"qlik-cli still keeps these secrets in plaintext in {source}; remove them there once "
            "you no longer use qlik-cli."
        )
    _emit(
        runtime,
        {
            "source": str(source),
            "dryRun": dry_run,
            "imported": imported,
            "skipped": skipped,
            "current": found.current if make_current else None,
        },
    )
    if storage_problem is not None:
        raise storage_problem


def register(root: typer.Typer) -> None:
    app = typer.Typer(
        name="context",
        help="Named tenant settings (like qlik-cli's contexts), with secrets in the OS keyring.",
        no_args_is_help=True,
    )
    app.command("init")(output_command(init))
    app.command("create")(output_command(create))
    app.command("update")(output_command(update))
    app.command("ls")(output_command(ls))
    app.command("use")(output_command(use))
    app.command("current")(output_command(current))
    app.command("clear")(output_command(clear))
    app.command("get")(output_command(get))
    app.command("rm")(output_command(rm))
    app.command("rename")(output_command(rename))
    app.command("import-qlik-cli")(output_command(import_qlik_cli))
    root.add_typer(app, name="context")
