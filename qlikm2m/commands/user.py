"""`qlikm2m user me`: the user the credentials act as (an M2M client's bot user)."""

from __future__ import annotations

import typer

from qlikm2m.commands.common import TenantFlags
from qlikm2m.commands.tenant_options import runtime_of, tenant_command
from qlikm2m.commands.user_run import MeOptions as MeOptions
from qlikm2m.commands.user_run import run_me as run_me


@tenant_command
def me(ctx: typer.Context, tenant: TenantFlags) -> None:
    """Print the user the credentials act as (GET /api/v1/users/me)."""
    run_me(MeOptions(runtime_of(ctx), tenant))


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Users of the tenant.", no_args_is_help=True)
    app.command("me")(me)
    root.add_typer(app, name="user")
