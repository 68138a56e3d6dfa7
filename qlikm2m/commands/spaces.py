"""`qlikm2m spaces`: list spaces (all pages, streamed), create them, assign users and groups."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from qlikm2m.commands.tenant_options import (
    TenantFlags,
    print_listing,
    runtime_of,
    tenant_command,
)


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


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Spaces of the tenant.", no_args_is_help=True)

    @app.command("ls")
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
            typer.Option(
                "--name", help="Only spaces whose name contains TEXT.", show_default=False
            ),
        ] = None,
        limit: LimitOpt = None,
        ndjson: NdjsonOpt = False,
    ) -> None:
        """List spaces: a table on a terminal, a JSON array (or NDJSON) for scripts."""
        from qlikm2m.listing import spaces_listing

        types = ",".join(one.value for one in space_type) if space_type else None
        listing = spaces_listing(space_type=types, name=name)
        print_listing(ctx, tenant, listing, limit=limit, ndjson=ndjson)

    @app.command("create")
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
            typer.Option(
                "--ensure", help="A space of that name and type already there is success."
            ),
        ] = False,
    ) -> None:
        """Create a space (POST /api/v1/spaces).

        Prints {action: created|existing, space}. Without --ensure an existing name is exit 5.
        """
        from qlikm2m.delivery import create_space
        from qlikm2m.output import Output

        runtime = runtime_of(ctx)
        output = Output(runtime)
        with tenant.client(runtime) as client:
            record = create_space(
                client, name, space_type.value, description=description, ensure=ensure
            )
            output.emit(record)

    @app.command("assign")
    @tenant_command
    def assign(
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
        ensure: Annotated[
            bool, typer.Option("--ensure", help="Already assigned is success.")
        ] = False,
    ) -> None:
        """Assign a user or a group to a space with roles (POST /spaces/{id}/assignments).

        Prints {action: created|existing, assignment}. Without --ensure, already assigned is
        exit 5.
        """
        from qlikm2m.delivery import assign as run_assign
        from qlikm2m.errors import UsageError
        from qlikm2m.names import resolve_space
        from qlikm2m.output import Output

        if (user is None) == (group is None):
            raise UsageError("Give either --user ID or --group ID.")
        if not roles:
            raise UsageError("Give at least one --role.")
        runtime = runtime_of(ctx)
        output = Output(runtime)
        with tenant.client(runtime) as client:
            space_id = str(resolve_space(client, space)["id"])
            kind, assignee = ("user", user) if user is not None else ("group", group)
            assert assignee is not None
            output.emit(
                run_assign(client, space_id, kind, assignee.strip(), list(roles), ensure=ensure)
            )

    root.add_typer(app, name="spaces")
