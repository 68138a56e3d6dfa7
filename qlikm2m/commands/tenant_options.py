"""The options every command shares, declared once, and where a given value lands.

Two tables: the global options (``-c``, ``-o``, ``--query``, ``-v``, ``--no-input``) and the
tenant connection options (``--server``, ``--client-id``, ...). The root command takes both
(``root_parameters``), ``@output_command`` appends the global ones to a command's signature and
``@tenant_command`` both (Typer reads ``__signature__``), so each option is accepted before and
after the command name with one declaration. The rule when both places give one: the value after
the command name wins (it is the one closest to the command); ``-v`` counts add up and flags are
on when given in either place. The same option twice in one place is a usage error (see
``qlikm2m.commands.cli_classes``). Only Typer and the standard library are imported here: this
module is loaded for ``--help``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qlikm2m.commands.common import TenantFlags as TenantFlags
from qlikm2m.commands.common import apply_global_options, show_listing, show_resource
from qlikm2m.settings import SPEC

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.listing import Listing
    from qlikm2m.runtime import Runtime
    from qlikm2m.settings import SettingSpec

_PANEL = "Tenant connection"
_OUTPUT_PANEL = "Output"


class OutputFormat(StrEnum):
    json = "json"
    yaml = "yaml"
    table = "table"
    text = "text"


def _complete_context(ctx: typer.Context, incomplete: str) -> list[str]:
    from qlikm2m.commands.completion import complete_context_names

    return complete_context_names(ctx, incomplete)


def _typer_types() -> dict[str, Any]:
    # The Python type each shared flag takes: a switch, a number of seconds, else text.
    return {
        "client_secret_stdin": bool,
        "no_token_cache": bool,
        "connect_timeout": float | None,
        "read_timeout": float | None,
    }


def _option_of(spec: SettingSpec, **extra: Any) -> tuple[str, Any, Any]:
    """The Typer option of a setting of the table in qlikm2m.settings (flag, help, metavar)."""
    assert spec.flag is not None
    assert spec.param is not None
    kind = _typer_types().get(spec.param, str | None)
    switch = kind is bool
    declarations = [spec.flag, *([spec.short_flag] if spec.short_flag else [])]
    settings: dict[str, Any] = {"help": spec.help, "rich_help_panel": _PANEL, **extra}
    if not switch:
        settings.update(metavar=spec.metavar, show_default=False)
    option = typer.Option(*declarations, **settings)
    return spec.param, Annotated[kind, option], False if switch else None


_GLOBAL_PARAMETERS: list[tuple[str, Any, Any]] = [
    _option_of(SPEC["context"], autocompletion=_complete_context),
    (
        "output_format",
        Annotated[
            OutputFormat | None,
            typer.Option(
                "--output",
                "-o",
                help="Output format: json (default), yaml, table or text (raw values) "
                "($QLIKM2M_OUTPUT).",
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
                metavar="JMESPATH",
                help="JMESPath expression applied to the result.",
                show_default=False,
                rich_help_panel=_OUTPUT_PANEL,
            ),
        ],
        None,
    ),
    (
        "verbose",
        Annotated[
            int,
            typer.Option(
                "--verbose",
                "-v",
                count=True,
                metavar="",
                show_default=False,
                help="Trace HTTP requests on stderr (secrets redacted); -vv adds the request "
                "and response headers and the traceback of any error (an unexpected one gets "
                "it with -v).",
            ),
        ],
        0,
    ),
    (
        "no_input",
        Annotated[
            bool,
            typer.Option(
                "--no-input",
                help="Never prompt: fail at once when an answer is missing.",
            ),
        ],
        False,
    ),
]


def _tenant_parameters() -> list[tuple[str, Any, Any]]:
    """Every shared connection flag, in the order of the settings table."""
    from qlikm2m.settings import SETTINGS

    return [_option_of(spec) for spec in SETTINGS if spec.flag and spec.name != "context"]


_TENANT_PARAMETERS = _tenant_parameters()

_GLOBAL_NAMES = tuple(name for name, _, _ in _GLOBAL_PARAMETERS)
_TENANT_NAMES = tuple(name for name, _, _ in _TENANT_PARAMETERS)
# The connection flags given before the command name, kept for the command to merge with its own.
_CONNECTION_KEY = "qlikm2m.connection_flags"


def valued_option_names() -> frozenset[str]:
    """Every shared option that takes a value: the word after one is not a command name."""
    names: set[str] = set()
    for _, hint, _ in _GLOBAL_PARAMETERS + _TENANT_PARAMETERS:
        info = hint.__metadata__[0]
        if not info.count and hint.__origin__ is not bool:
            # Inside Annotated, Typer takes the first flag as the "default" argument.
            names.update(d for d in (info.default, *info.param_decls) if isinstance(d, str))
    return frozenset(names)


def _extend(
    fn: Callable[..., Any], extra: list[tuple[str, Any, Any]], drop: str | None
) -> inspect.Signature:
    signature = inspect.signature(fn, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != drop]
    taken = {p.name for p in own}
    # A command that declares one of these itself (context init's --no-input) keeps its own.
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint)
        for name, hint, default in extra
        if name not in taken
    ]
    return signature.replace(parameters=[*own, *added])


def _apply_global_flags(ctx: typer.Context | None, given: dict[str, Any], *, root: bool) -> None:
    if ctx is None:
        return
    output_format = given.get("output_format")
    if output_format is not None:
        given = {**given, "output_format": output_format.value}
    apply_global_options(runtime_of(ctx), given, root=root)


def _pop(kwargs: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: kwargs.pop(name) for name in names if name in kwargs}


def _merge_connection_flags(ctx: typer.Context | None, given: dict[str, Any]) -> TenantFlags:
    before: dict[str, Any] = dict(ctx.meta.get(_CONNECTION_KEY, {})) if ctx is not None else {}
    for name, value in given.items():
        if isinstance(value, bool):
            before[name] = before.get(name, False) or value
        elif value is not None:
            before[name] = value
    return TenantFlags(**before)


def apply_root_options(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
    """Store what the root command was given: global options in the Runtime, connection options
    for the tenant command to merge with its own."""
    _apply_global_flags(ctx, _pop(kwargs, _GLOBAL_NAMES), root=True)
    connection = _pop(kwargs, _TENANT_NAMES)
    ctx.meta[_CONNECTION_KEY] = {
        name: value for name, value in connection.items() if value not in (None, False)
    }


def root_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give the root callback every shared option (before the command name); ``fn`` takes
    ``ctx`` and its own options (``--version``), and sees the shared ones in the Runtime."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        apply_root_options(kwargs["ctx"], kwargs)
        return fn(*args, **kwargs)

    wrapper.__signature__ = _extend(  # type: ignore[attr-defined]
        fn, _GLOBAL_PARAMETERS + _TENANT_PARAMETERS, None
    )
    return wrapper


def output_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the global options after the command name too (the command must take ``ctx``)."""
    own = set(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")
        _refuse_connection_flags(ctx)
        names = tuple(name for name in _GLOBAL_NAMES if name not in own)
        _apply_global_flags(ctx, _pop(kwargs, names), root=False)
        return fn(*args, **kwargs)

    wrapper.__signature__ = _extend(fn, _GLOBAL_PARAMETERS, None)  # type: ignore[attr-defined]
    return wrapper


def _flag_of(name: str) -> str:
    hint = next(hint for known, hint, _ in _TENANT_PARAMETERS if known == name)
    # Inside Annotated, Typer takes the first flag as the "default" argument.
    return str(hint.__metadata__[0].default)


def _refuse_connection_flags(ctx: typer.Context | None) -> None:
    """Connection options before the name of a command that does not talk to a tenant would be
    ignored; `qlikm2m --server URL context create` would then save a context without it."""
    given = ctx.meta.get(_CONNECTION_KEY) if ctx is not None else None
    if not given:
        return
    from qlikm2m.errors import UsageError

    flags = ", ".join(_flag_of(name) for name in given)
    verb = "applies" if len(given) == 1 else "apply"
    raise UsageError(
        f"{flags} before the command name {verb} only to commands that talk to a tenant, "
        f"not to `{ctx.command_path if ctx is not None else ''}`.",
        hint="Give it after the command name if the command takes it (see its --help).",
    )


def tenant_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the global and tenant connection options; the command receives ``tenant: TenantFlags``
    (the connection flags given before and after its name, merged)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")
        _apply_global_flags(ctx, _pop(kwargs, _GLOBAL_NAMES), root=False)
        flags = _merge_connection_flags(ctx, _pop(kwargs, _TENANT_NAMES))
        return fn(*args, tenant=flags, **kwargs)

    wrapper.__signature__ = _extend(  # type: ignore[attr-defined]
        fn, _GLOBAL_PARAMETERS + _TENANT_PARAMETERS, "tenant"
    )
    return wrapper


def runtime_of(ctx: typer.Context) -> Runtime:
    from qlikm2m.runtime import Runtime

    return ctx.ensure_object(Runtime)


def print_resource(ctx: typer.Context, tenant: TenantFlags, path: str) -> None:
    """``show_resource`` for a command that has not yet its own options and run function."""
    show_resource(runtime_of(ctx), tenant, path)


def print_listing(
    ctx: typer.Context,
    tenant: TenantFlags,
    listing: Listing | Callable[[QlikClient], Listing],
    *,
    limit: int | None,
    ndjson: bool,
) -> None:
    """``show_listing`` for a command that has not yet its own options and run function."""
    show_listing(runtime_of(ctx), tenant, listing, limit=limit, ndjson=ndjson)
