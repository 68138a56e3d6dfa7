"""`qlikm2m user me`: the user the credentials act as (an M2M client's bot user)."""

from __future__ import annotations

import typer

from qlikm2m.commands.tenant_options import TenantFlags, print_resource, tenant_command


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Users of the tenant.", no_args_is_help=True)

    @app.command("me")
    @tenant_command
    def me(ctx: typer.Context, tenant: TenantFlags) -> None:
        """Print the user the credentials act as (GET /api/v1/users/me)."""
        print_resource(ctx, tenant, "/api/v1/users/me")

    root.add_typer(app, name="user")
