"""`qlikm2m apps ls` and `apps get`: apps are items of type app; their app id is `resourceId`."""

from __future__ import annotations

from typing import Annotated

import typer

from qlikm2m.commands.items import SpaceOpt
from qlikm2m.commands.spaces import LimitOpt, NdjsonOpt
from qlikm2m.commands.tenant_options import (
    TenantFlags,
    print_listing,
    print_resource,
    tenant_command,
)


def _complete_app_ids(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    from qlikm2m.commands.completion import complete_app_ids

    return complete_app_ids(ctx, incomplete)


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Qlik Sense apps.", no_args_is_help=True)

    @app.command("ls")
    @tenant_command
    def ls(
        ctx: typer.Context,
        tenant: TenantFlags,
        space: SpaceOpt = None,
        name: Annotated[
            str | None,
            typer.Option("--name", help="Only apps whose name contains TEXT.", show_default=False),
        ] = None,
        limit: LimitOpt = None,
        ndjson: NdjsonOpt = False,
    ) -> None:
        """List apps (the table's APP ID is what `reload` and `apps get` take).

        JSON output is the items API's records: the app id is `resourceId`, `id` is the item id.
        """
        from qlikm2m.listing import apps_listing

        print_listing(ctx, tenant, apps_listing(space=space, name=name), limit=limit, ndjson=ndjson)

    @app.command("get")
    @tenant_command
    def get(
        ctx: typer.Context,
        tenant: TenantFlags,
        app_id: Annotated[
            str,
            typer.Argument(
                metavar="APP_ID",
                help="The app id (resourceId).",
                autocompletion=_complete_app_ids,
            ),
        ],
    ) -> None:
        """Print one app's attributes and your privileges on it (GET /api/v1/apps/{appId})."""
        from urllib.parse import quote

        from qlikm2m.errors import UsageError

        if not app_id.strip():
            raise UsageError("The app id is empty.", hint="List app ids with: qlikm2m apps ls")
        print_resource(ctx, tenant, f"/api/v1/apps/{quote(app_id.strip(), safe='')}")

    root.add_typer(app, name="apps")
