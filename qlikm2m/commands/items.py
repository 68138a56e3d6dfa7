"""`qlikm2m items ls`: every item (apps, datasets, notes, ...) of the tenant, all pages, streamed."""

from __future__ import annotations

from typing import Annotated

import typer

from qlikm2m.commands.spaces import LimitOpt, NdjsonOpt
from qlikm2m.commands.tenant_options import TenantFlags, print_listing, tenant_command

SpaceOpt = Annotated[
    str | None,
    typer.Option(
        "--space",
        metavar="SPACE",
        help="Only items in this space: a space name or id, or 'personal' (a name that matches "
        "no space, or several, is exit 5).",
        show_default=False,
    ),
]


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Items of the tenant: apps, datasets, notes, ...", no_args_is_help=True)

    @app.command("ls")
    @tenant_command
    def ls(
        ctx: typer.Context,
        tenant: TenantFlags,
        item_type: Annotated[
            list[str] | None,
            typer.Option(
                "--type",
                metavar="TYPE",
                help="Only items of this resource type: app, dataset, note, automation, ... "
                "(repeat or comma-separate several).",
                show_default=False,
            ),
        ] = None,
        space: SpaceOpt = None,
        name: Annotated[
            str | None,
            typer.Option("--name", help="Only items whose name contains TEXT.", show_default=False),
        ] = None,
        limit: LimitOpt = None,
        ndjson: NdjsonOpt = False,
    ) -> None:
        """List items: a table on a terminal, a JSON array (or NDJSON) for scripts."""
        from qlikm2m.listing import items_listing
        from qlikm2m.names import space_filter

        # The items API takes several types as one comma-separated resourceType (items.json).
        types = ",".join(item_type) if item_type else None
        items_listing(resource_type=types)  # a bad --type costs no request
        print_listing(
            ctx,
            tenant,
            lambda client: items_listing(
                resource_type=types, space=space_filter(client, space), name=name
            ),
            limit=limit,
            ndjson=ndjson,
        )

    root.add_typer(app, name="items")
