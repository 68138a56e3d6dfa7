"""`qlikm2m auth token|status|revoke`: the token itself, where settings come from, revocation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qlikm2m.commands.common import TenantFlags
from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.tenant_options import runtime_of, tenant_command

if TYPE_CHECKING:
    from qlikm2m.tokens import Token


class TokenFormat(StrEnum):
    raw = "raw"
    json = "json"
    header = "header"
    env = "env"
    dotenv = "dotenv"
    powershell = "powershell"
    fish = "fish"
    cmd = "cmd"
    github = "github"
    process = "process"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _token_facts(token: Token, now: float) -> dict[str, Any]:
    remaining = token.remaining(now)
    return {
        "origin": token.origin,
        "expiresAt": _iso(token.expires_at),
        "expiresIn": None if remaining is None else max(0, int(remaining)),
        "scope": token.scope,
    }


@dataclass(frozen=True)
class TokenOptions(TenantRun):
    token_format: TokenFormat = TokenFormat.raw


def run_token(options: TokenOptions) -> None:
    """Print a valid access token in ``options.token_format``, from the cache while it is fresh
    (oauth.json: POST /oauth/token when it is not)."""
    import json
    import time

    from qlikm2m import token_formats
    from qlikm2m.output import Output

    shell_forms = {
        TokenFormat.powershell: token_formats.powershell,
        TokenFormat.fish: token_formats.fish,
        TokenFormat.cmd: token_formats.cmd,
    }
    runtime, tenant, token_format = options.runtime, options.tenant, options.token_format
    output = Output(runtime)
    if token_format is TokenFormat.github:
        token_formats.github_env_path(runtime.env)  # no token minted outside GitHub Actions
    with tenant.client(runtime) as client:
        current = client.tokens.token()
        server = client.settings.server_url
    if token_format is TokenFormat.raw:
        output.emit_text(current.value)
    elif token_format is TokenFormat.header:
        output.emit_text(f"Authorization: Bearer {current.value}")
    elif token_format is TokenFormat.env:
        output.emit_text(f"QLIK_ACCESS_TOKEN={current.value}")
    elif token_format in shell_forms:
        output.emit_text(shell_forms[token_format](current.value))
    elif token_format is TokenFormat.dotenv:
        output.emit_text(token_formats.dotenv(current.value, server))
    elif token_format is TokenFormat.github:
        written = token_formats.github(current.value, runtime.env, runtime.stdout)
        runtime.stderr.write(f"QLIK_ACCESS_TOKEN (masked) appended to {written}\n")
    elif token_format is TokenFormat.process:
        output.emit_text(json.dumps(token_formats.process(current, server)))
    else:
        facts = _token_facts(current, time.time())
        output.emit({"accessToken": current.value, "tokenType": "Bearer", **facts})


@tenant_command
def token(
    ctx: typer.Context,
    tenant: TenantFlags,
    token_format: Annotated[
        TokenFormat,
        typer.Option(
            "--format",
            "-f",
            help="raw (the token), json, header (`Authorization: Bearer ...`), env "
            "(`QLIK_ACCESS_TOKEN=...`), dotenv (QLIK_SERVER and QLIK_ACCESS_TOKEN lines), "
            "powershell, fish, cmd, github (masks the token, then appends it to $GITHUB_ENV) "
            "or process (credential-helper JSON: version, accessToken, expiresAt, server).",
            case_sensitive=False,
        ),
    ] = TokenFormat.raw,
) -> None:
    """Print a valid access token, from the cache while it is fresh.

    For other tools: curl -H "$(qlikm2m auth token --format header)" "$QLIK_SERVER/api/v1/..."
    """
    run_token(TokenOptions(runtime_of(ctx), tenant, token_format))


@dataclass(frozen=True)
class StatusOptions(TenantRun):
    """``auth status`` takes nothing of its own."""


def run_status(options: StatusOptions) -> int:
    """Print the resolved settings with their sources, the token's expiry and a check of
    users/me (users.json: GET /api/v1/users/me); the check's exit code (0 when it passed)."""
    import time

    from qlikm2m.client import QlikClient
    from qlikm2m.errors import QlikM2MError
    from qlikm2m.output import Output

    runtime, tenant = options.runtime, options.tenant
    output = Output(runtime)
    settings = tenant.settings(runtime)
    check: dict[str, Any]
    exit_code = 0
    with QlikClient(settings, runtime) as client:
        try:
            user = client.get_json("/api/v1/users/me")
            user = user if isinstance(user, dict) else {}
            check = {
                "ok": True,
                "user": {k: user.get(k) for k in ("id", "name", "subject", "clientId")},
            }
        except QlikM2MError as error:
            check = {"ok": False, "error": error.message, "exitCode": int(error.exit_code)}
            exit_code = int(error.exit_code)
        used = client.tokens.last
    token_info = _token_facts(used, time.time()) if used else None
    output.emit({"settings": settings.describe(), "token": token_info, "check": check})
    return exit_code


@tenant_command
def status(ctx: typer.Context, tenant: TenantFlags) -> None:
    """Show the resolved settings and their sources, the token's expiry, and check users/me."""
    exit_code = run_status(StatusOptions(runtime_of(ctx), tenant))
    if exit_code:
        raise typer.Exit(exit_code)


@dataclass(frozen=True)
class RevokeOptions(TenantRun):
    """``auth revoke`` takes nothing of its own."""


def run_revoke(options: RevokeOptions) -> None:
    """Revoke the cached tokens of these credentials (oauth.json: POST /oauth/revoke) and drop
    them locally; print the counts. UsageError (exit 2) for an API key."""
    import time

    from qlikm2m.client import QlikClient
    from qlikm2m.errors import AuthError, UsageError
    from qlikm2m.output import Output
    from qlikm2m.tokens import Token, cached_tokens, drop_cached_tokens

    runtime, tenant = options.runtime, options.tenant
    output = Output(runtime)
    settings = tenant.settings(runtime)
    if settings.kind == "apikey":
        raise UsageError(
            "API keys are not revoked with OAuth; delete the key in the tenant's management "
            "console (or DELETE /api/v1/api-keys/{id})."
        )
    if settings.kind == "token":
        candidates = [Token(value=settings.secret(), origin="env")]
    else:
        candidates = cached_tokens(
            runtime.env, server=settings.server_url, client_id=settings.client_id.value
        )
    now = time.time()
    revoked = already_invalid = 0
    with QlikClient(settings, runtime) as client:
        for candidate in candidates:
            remaining = candidate.remaining(now)
            if remaining is not None and remaining <= 0:
                continue
            try:
                client.tokens.revoke(candidate)
                revoked += 1
            except AuthError:
                already_invalid += 1
    dropped = 0
    if settings.kind == "oauth":
        dropped = drop_cached_tokens(
            runtime.env, server=settings.server_url, client_id=settings.client_id.value
        )
    output.emit({"revoked": revoked, "alreadyInvalid": already_invalid, "dropped": dropped})


@tenant_command
def revoke(ctx: typer.Context, tenant: TenantFlags) -> None:
    """Revoke the cached tokens of these credentials at the tenant and drop them locally."""
    run_revoke(RevokeOptions(runtime_of(ctx), tenant))


def register(root: typer.Typer) -> None:
    app = typer.Typer(
        help="Tokens: print one, check the credentials, revoke.", no_args_is_help=True
    )
    app.command("token")(token)
    app.command("status")(status)
    app.command("revoke")(revoke)
    root.add_typer(app, name="auth")
