"""`qlikm2m items ls`: every item (apps, datasets, notes, ...) of the tenant, all pages, streamed."""

from __future__ import annotations

from typing import Annotated

import typer

from qlikm2m.commands.spaces import LimitOpt, NdjsonOpt
from qlikm2m.commands.tenant_options import TenantFlags, runtime_of, tenant_command

SpaceOpt = Annotated[
    str | None,
    typer.Option(
        "--space",
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
            str | None,
            typer.Option(
                "--type",
                help="Only items of this resource type: app, dataset, note, automation, ... "
                "(comma-separate several).",
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
        from qlikm2m.listing import check_limit, emit_listing, fetch, items_listing
        from qlikm2m.names import space_filter
        from qlikm2m.output import Output

        runtime = runtime_of(ctx)
        check_limit(limit)
        items_listing(resource_type=item_type)  # a bad --type costs no request
        Output(runtime)  # nor does a bad --query
        with tenant.client(runtime) as client:
            listing = items_listing(
                resource_type=item_type, space=space_filter(client, space), name=name
            )
            emit_listing(runtime, listing, fetch(client, listing, limit), ndjson=ndjson)

    root.add_typer(app, name="items")
