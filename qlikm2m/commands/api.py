"""`qlikm2m api`: a raw, authenticated passthrough to any endpoint, in the spirit of `gh api`.

The command line only: what the command does lives in qlikm2m/commands/api_run.py.
"""

from __future__ import annotations

from typing import Annotated

import typer

from qlikm2m.commands.api_run import ApiOptions as ApiOptions
from qlikm2m.commands.api_run import parse_headers as parse_headers
from qlikm2m.commands.api_run import parse_params as parse_params
from qlikm2m.commands.api_run import run_api as run_api
from qlikm2m.commands.tenant_options import TenantFlags, runtime_of, tenant_command


@tenant_command
def api(
    ctx: typer.Context,
    tenant: TenantFlags,
    path: Annotated[
        str, typer.Argument(help="API path: /api/v1/items, v1/items, or a tenant URL.")
    ],
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            "-X",
            metavar="METHOD",
            help="HTTP method (default GET, or POST when a body is given).",
            show_default=False,
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-q",
            metavar="KEY=VALUE",
            help="Query parameter key=value (repeatable).",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", metavar="JSON", help="JSON request body.", show_default=False),
    ] = None,
    body_file: Annotated[
        str | None,
        typer.Option(
            "--body-file",
            metavar="FILE",
            help="Send this file as the body ('-' for stdin).",
            show_default=False,
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            metavar="'NAME: VALUE'",
            help="Extra header 'Name: value' (repeatable).",
            show_default=False,
        ),
    ] = None,
    paginate: Annotated[
        bool,
        typer.Option(
            "--paginate", help="Follow links.next to the end; print one array of all items."
        ),
    ] = False,
    ndjson: Annotated[
        bool,
        typer.Option(
            "--ndjson", help="Print every item of every page as one JSON line, as they arrive."
        ),
    ] = False,
    include: Annotated[
        bool,
        typer.Option("--include", "-i", help="Print the status line and headers on stderr."),
    ] = False,
    output_file: Annotated[
        str | None,
        typer.Option(
            "--output-file",
            metavar="FILE",
            help="Write the response body to this file (binary-safe, streamed).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Call any endpoint of the tenant with the right token.

    Examples: `qlikm2m api v1/items -q resourceType=app --paginate`,
    `qlikm2m api -X POST v1/reloads -d '{"appId": "..."}'`.
    """
    run_api(
        ApiOptions(
            runtime=runtime_of(ctx),
            tenant=tenant,
            path=path,
            method=method,
            param=param,
            data=data,
            body_file=body_file,
            header=header,
            paginate=paginate,
            ndjson=ndjson,
            include=include,
            output_file=output_file,
        )
    )


def register(root: typer.Typer) -> None:
    root.command("api")(api)
