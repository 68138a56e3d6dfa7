"""The options every command that talks to a tenant shares, declared once.

``@tenant_command`` appends them to a command's signature (Typer reads ``__signature__``) and
hands the command one ``TenantFlags`` value instead of a dozen parameters. Only Typer and the
standard library are imported here: this module is loaded for ``--help``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.listing import Listing
    from qlikm2m.runtime import Runtime
    from qlikm2m.settings import ResolvedSettings

_PANEL = "Tenant connection"
_OUTPUT_PANEL = "Output"


class OutputFormat(StrEnum):
    json = "json"
    yaml = "yaml"
    table = "table"


@dataclass(frozen=True)
class TenantFlags:
    """The connection flags of one invocation, passed as-is to ``resolve_settings``."""

    server: str | None = None
    client_id: str | None = None
    client_secret_stdin: bool = False
    scope: str | None = None
    ca_bundle: str | None = None
    impersonate: str | None = None
    no_token_cache: bool = False
    connect_timeout: float | None = None
    read_timeout: float | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def settings(self, runtime: Runtime) -> ResolvedSettings:
        from qlikm2m.settings import resolve_settings

        return resolve_settings(runtime, **self.as_kwargs())

    def client(self, runtime: Runtime) -> QlikClient:
        from qlikm2m.client import QlikClient

        return QlikClient(self.settings(runtime), runtime)


_TENANT_PARAMETERS: list[tuple[str, Any, Any]] = [
    (
        "server",
        Annotated[
            str | None,
            typer.Option(
                "--server",
                help="Tenant URL, e.g. https://tenant.eu.qlikcloud.com ($QLIK_SERVER).",
                show_default=False,
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
    (
        "client_id",
        Annotated[
            str | None,
            typer.Option(
                "--client-id",
                help="OAuth client id ($QLIK_CLIENT_ID); its secret comes from $QLIK_CLIENT_SECRET "
                "or --client-secret-stdin.",
                show_default=False,
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
    (
        "client_secret_stdin",
        Annotated[
            bool,
            typer.Option(
                "--client-secret-stdin",
                help="Read the client secret from the first line of stdin (never from argv).",
                rich_help_panel=_PANEL,
            ),
        ],
        False,
    ),
    (
        "scope",
        Annotated[
            str | None,
            typer.Option(
                "--scope",
                help="Space-separated OAuth scopes ($QLIK_SCOPE).",
                show_default=False,
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
    (
        "ca_bundle",
        Annotated[
            str | None,
            typer.Option(
                "--ca-bundle",
                help="Extra CA certificates (PEM) trusted besides the system store "
                "($QLIK_CA_BUNDLE).",
                show_default=False,
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
    (
        "impersonate",
        Annotated[
            str | None,
            typer.Option(
                "--impersonate",
                help="Act as a user: subject:<subject> or userId:<id> (user-impersonation grant).",
                show_default=False,
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
    (
        "no_token_cache",
        Annotated[
            bool,
            typer.Option(
                "--no-token-cache",
                help="Mint a token for this command only ($QLIKM2M_NO_TOKEN_CACHE=1).",
                rich_help_panel=_PANEL,
            ),
        ],
        False,
    ),
    (
        "connect_timeout",
        Annotated[
            float | None,
            typer.Option(
                "--connect-timeout",
                help="Seconds to wait for a connection ($QLIKM2M_CONNECT_TIMEOUT, default 10).",
                show_default=False,
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
    (
        "read_timeout",
        Annotated[
            float | None,
            typer.Option(
                "--read-timeout",
                help="Seconds to wait for data from the server ($QLIKM2M_READ_TIMEOUT, "
                "default 60).",
                show_default=False,
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
]

_OUTPUT_PARAMETERS: list[tuple[str, Any, Any]] = [
    (
        "output_format",
        Annotated[
            OutputFormat | None,
            typer.Option(
                "--output",
                "-o",
                help="Output format: json (default), yaml or table ($QLIKM2M_OUTPUT).",
                show_default=False,
                case_sensitive=False,
                rich_help_panel=_OUTPUT_PANEL,
            ),
        ],
        None,
    ),
    (
        "jmespath_query",
        Annotated[
            str | None,
            typer.Option(
                "--query",
                help="JMESPath expression applied to the result.",
                show_default=False,
                rich_help_panel=_OUTPUT_PANEL,
            ),
        ],
        None,
    ),
]

# qlik-cli takes --context anywhere on the line; so do the commands that talk to a tenant.
_CONTEXT_PARAMETER: list[tuple[str, Any, Any]] = [
    (
        "context_name",
        Annotated[
            str | None,
            typer.Option(
                "--context",
                "-c",
                help="Use this context for this command only (also before the command name).",
                show_default=False,
                rich_help_panel=_PANEL,
            ),
        ],
        None,
    ),
]

_TENANT_NAMES = tuple(name for name, _, _ in _TENANT_PARAMETERS)


def _extend(
    fn: Callable[..., Any], extra: list[tuple[str, Any, Any]], drop: str | None
) -> inspect.Signature:
    signature = inspect.signature(fn, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != drop]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint)
        for name, hint, default in extra
    ]
    return signature.replace(parameters=[*own, *added])


def _apply_output_flags(kwargs: dict[str, Any]) -> None:
    output_format = kwargs.pop("output_format", None)
    jmespath_query = kwargs.pop("jmespath_query", None)
    ctx = kwargs.get("ctx")
    if ctx is None:
        return
    from qlikm2m.runtime import Runtime

    runtime = ctx.ensure_object(Runtime)
    # Given after the command name they win over the same options given before it.
    if output_format is not None:
        runtime.output_flag = output_format.value
    if jmespath_query is not None:
        runtime.query = jmespath_query


def _apply_context_flag(kwargs: dict[str, Any]) -> None:
    context_name = kwargs.pop("context_name", None)
    ctx = kwargs.get("ctx")
    if context_name is not None and ctx is not None:
        # After the command name it wins over the same option before it, as -o does.
        runtime_of(ctx).context = context_name


def output_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``-o``/``--query`` after the command name too (the command must take ``ctx``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _apply_output_flags(kwargs)
        return fn(*args, **kwargs)

    wrapper.__signature__ = _extend(fn, _OUTPUT_PARAMETERS, None)  # type: ignore[attr-defined]
    return wrapper


def tenant_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the tenant connection and output options; the command receives ``tenant: TenantFlags``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _apply_output_flags(kwargs)
        _apply_context_flag(kwargs)
        flags = TenantFlags(**{name: kwargs.pop(name) for name in _TENANT_NAMES})
        return fn(*args, tenant=flags, **kwargs)

    wrapper.__signature__ = _extend(  # type: ignore[attr-defined]
        fn, _CONTEXT_PARAMETER + _TENANT_PARAMETERS + _OUTPUT_PARAMETERS, "tenant"
    )
    return wrapper


def runtime_of(ctx: typer.Context) -> Runtime:
    from qlikm2m.runtime import Runtime

    return ctx.ensure_object(Runtime)


def print_resource(ctx: typer.Context, tenant: TenantFlags, path: str) -> None:
    """GET one resource and print it; the output is set up first, so a bad --query costs no
    request."""
    from qlikm2m.output import Output

    runtime = runtime_of(ctx)
    output = Output(runtime)
    with tenant.client(runtime) as client:
        output.emit(client.get_json(path))


def print_listing(
    ctx: typer.Context, tenant: TenantFlags, listing: Listing, *, limit: int | None, ndjson: bool
) -> None:
    """Every page of ``listing`` (or the first ``limit`` items), streamed to the output."""
    from qlikm2m.listing import check_limit, emit_listing, fetch

    runtime = runtime_of(ctx)
    check_limit(limit)
    with tenant.client(runtime) as client:
        emit_listing(runtime, listing, fetch(client, listing, limit), ndjson=ndjson)
