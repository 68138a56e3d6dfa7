"""`qlikm2m tenant me`: the tenant the credentials belong to."""

from __future__ import annotations

import typer

from qlikm2m.commands.common import TenantFlags
from qlikm2m.commands.tenant_options import runtime_of, tenant_command
from qlikm2m.commands.tenant_run import MeOptions as MeOptions
from qlikm2m.commands.tenant_run import run_me as run_me


@tenant_command
def me(ctx: typer.Context, tenant: TenantFlags) -> None:
    """Print the tenant of the credentials (GET /api/v1/tenants/me)."""
    run_me(MeOptions(runtime_of(ctx), tenant))


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="The tenant itself.", no_args_is_help=True)
    app.command("me")(me)
    root.add_typer(app, name="tenant")
