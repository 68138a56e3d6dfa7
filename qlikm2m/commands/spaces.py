"""`qlikm2m spaces ls`: every space of the tenant, all pages, streamed."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from qlikm2m.commands.tenant_options import TenantFlags, print_listing, tenant_command


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

    root.add_typer(app, name="spaces")
