"""`qlikm2m items ls`: every item (apps, datasets, notes, ...) of the tenant, all pages, streamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from qlikm2m.commands.common import TenantFlags, show_listing
from qlikm2m.commands.run_options import TenantRun
from qlikm2m.commands.spaces import LimitOpt, NdjsonOpt
from qlikm2m.commands.tenant_options import runtime_of, tenant_command

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


@dataclass(frozen=True)
class LsOptions(TenantRun):
    item_types: tuple[str, ...] = ()  # resource types (app, dataset, ...); none: every type
    space: str | None = None  # a space name or id, or 'personal'
    name: str | None = None  # a part of the name
    limit: int | None = None
    ndjson: bool = False


def run_ls(options: LsOptions) -> None:
    """List items, every page streamed (items.json: GET /api/v1/items)."""
    from qlikm2m.listing import items_listing
    from qlikm2m.names import space_filter

    # The items API takes several types as one comma-separated resourceType (items.json).
    types = ",".join(options.item_types) or None
    items_listing(resource_type=types)  # a bad --type costs no request
    show_listing(
        options.runtime,
        options.tenant,
        lambda client: items_listing(
            resource_type=types, space=space_filter(client, options.space), name=options.name
        ),
        limit=options.limit,
        ndjson=options.ndjson,
    )


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
    options = LsOptions(runtime_of(ctx), tenant, tuple(item_type or ()), space, name, limit, ndjson)
    run_ls(options)


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Items of the tenant: apps, datasets, notes, ...", no_args_is_help=True)
    app.command("ls")(ls)
    root.add_typer(app, name="items")
