"""`qlikm2m spaces`: list spaces (all pages, streamed), create them, assign users and groups."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import typer

from qlikm2m.commands.common import TenantFlags, show_listing
from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.tenant_options import runtime_of, tenant_command


class SpaceType(StrEnum):
    shared = "shared"
    managed = "managed"
    data = "data"


LIMIT_HELP = "Stop after N results (a note on stderr says when more exist). Default: all pages."
NDJSON_HELP = "One JSON object per line, printed as pages arrive (constant memory)."
# The options every listing shares (spaces, items and apps ls).
LimitOpt = Annotated[
    int | None, typer.Option("--limit", metavar="N", help=LIMIT_HELP, show_default=False)
]
NdjsonOpt = Annotated[bool, typer.Option("--ndjson", help=NDJSON_HELP)]


@dataclass(frozen=True)
class LsOptions(TenantRun):
    space_types: tuple[str, ...] = ()  # shared, managed, data; none: every type
    name: str | None = None  # a part of the name
    limit: int | None = None
    ndjson: bool = False


def run_ls(options: LsOptions) -> None:
    """List spaces, every page streamed (spaces.json: GET /api/v1/spaces)."""
    from qlikm2m.listing import spaces_listing

    types = ",".join(options.space_types) or None
    listing = spaces_listing(space_type=types, name=options.name)
    show_listing(
        options.runtime, options.tenant, listing, limit=options.limit, ndjson=options.ndjson
    )


@tenant_command
def ls(
    ctx: typer.Context,
    tenant: TenantFlags,
    space_type: Annotated[
        list[SpaceType] | None,
        typer.Option(
            "--type", help="Only spaces of this type (repeat for several).", show_default=False
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Only spaces whose name contains TEXT.", show_default=False),
    ] = None,
    limit: LimitOpt = None,
    ndjson: NdjsonOpt = False,
) -> None:
    """List spaces: a table on a terminal, a JSON array (or NDJSON) for scripts."""
    types = tuple(one.value for one in space_type or ())
    run_ls(LsOptions(runtime_of(ctx), tenant, types, name, limit, ndjson))


@dataclass(frozen=True)
class CreateOptions(TenantRun):
    name: str = ""
    space_type: str = "shared"
    description: str | None = None
    ensure: bool = False  # an existing space of that name and type is success


def run_create(options: CreateOptions) -> None:
    """Create a space (spaces.json: POST /api/v1/spaces) and print {action, space}."""
    from qlikm2m.delivery import create_space
    from qlikm2m.output import Output

    output = Output(options.runtime)
    with options.tenant.client(options.runtime) as client:
        record = create_space(
            client,
            options.name,
            options.space_type,
            description=options.description,
            ensure=options.ensure,
        )
        output.emit(record)


@tenant_command
def create(
    ctx: typer.Context,
    tenant: TenantFlags,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The space's name (unique).")],
    space_type: Annotated[
        SpaceType, typer.Option("--type", help="shared, managed or data.", show_default=False)
    ],
    description: Annotated[
        str | None, typer.Option("--description", help="A description.", show_default=False)
    ] = None,
    ensure: Annotated[
        bool,
        typer.Option("--ensure", help="A space of that name and type already there is success."),
    ] = False,
) -> None:
    """Create a space (POST /api/v1/spaces).

    Prints {action: created|existing, space}. Without --ensure an existing name is exit 5.
    """
    run_create(CreateOptions(runtime_of(ctx), tenant, name, space_type.value, description, ensure))


@dataclass(frozen=True)
class AssignOptions(TenantRun):
    space: str = ""  # a name or an id
    user: str | None = None
    group: str | None = None
    roles: tuple[str, ...] = ()
    ensure: bool = False  # already assigned is success


def run_assign(options: AssignOptions) -> None:
    """Assign a user or a group to a space with roles (spaces.json: POST
    /api/v1/spaces/{spaceId}/assignments) and print {action, assignment}. UsageError (exit 2)
    unless exactly one of user and group and at least one role are given."""
    from qlikm2m.delivery import assign
    from qlikm2m.errors import UsageError
    from qlikm2m.names import resolve_space
    from qlikm2m.output import Output

    if (options.user is None) == (options.group is None):
        raise UsageError("Give either --user ID or --group ID.")
    if not options.roles:
        raise UsageError("Give at least one --role.")
    output = Output(options.runtime)
    with options.tenant.client(options.runtime) as client:
        space_id = str(resolve_space(client, options.space)["id"])
        kind, assignee = (
            ("user", options.user) if options.user is not None else ("group", options.group)
        )
        assert assignee is not None
        output.emit(
            assign(
                client, space_id, kind, assignee.strip(), list(options.roles), ensure=options.ensure
            )
        )


@tenant_command
def assign_command(
    ctx: typer.Context,
    tenant: TenantFlags,
    space: Annotated[str, typer.Argument(metavar="SPACE", help="The space (name or id).")],
    user: Annotated[
        str | None, typer.Option("--user", help="A user id to assign.", show_default=False)
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="A group id to assign.", show_default=False)
    ] = None,
    roles: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="A role (repeatable): consumer, contributor, producer, publisher, ... as "
            "the space type allows.",
            show_default=False,
        ),
    ] = None,
    ensure: Annotated[bool, typer.Option("--ensure", help="Already assigned is success.")] = False,
) -> None:
    """Assign a user or a group to a space with roles (POST /spaces/{id}/assignments).

    Prints {action: created|existing, assignment}. Without --ensure, already assigned is
    exit 5.
    """
    run_assign(
        AssignOptions(runtime_of(ctx), tenant, space, user, group, tuple(roles or ()), ensure)
    )


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Spaces of the tenant.", no_args_is_help=True)
    app.command("ls")(ls)
    app.command("create")(create)
    app.command("assign")(assign_command)
    root.add_typer(app, name="spaces")
