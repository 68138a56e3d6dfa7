"""`qlikm2m tenant me`: the tenant the credentials belong to."""

from __future__ import annotations

import typer

from qlikm2m.commands.tenant_options import TenantFlags, print_resource, tenant_command


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="The tenant itself.", no_args_is_help=True)

    @app.command("me")
    @tenant_command
    def me(ctx: typer.Context, tenant: TenantFlags) -> None:
        """Print the tenant of the credentials (GET /api/v1/tenants/me)."""
        print_resource(ctx, tenant, "/api/v1/tenants/me")

    root.add_typer(app, name="tenant")
