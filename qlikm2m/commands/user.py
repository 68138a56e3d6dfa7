"""`qlikm2m user me`: the user the credentials act as (an M2M client's bot user)."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from qlikm2m.commands.common import TenantFlags, TenantRun, show_resource
from qlikm2m.commands.tenant_options import runtime_of, tenant_command


@dataclass(frozen=True)
class MeOptions(TenantRun):
    """``user me`` takes nothing of its own."""


def run_me(options: MeOptions) -> None:
    """Print the user the credentials act as (users.json: GET /api/v1/users/me)."""
    show_resource(options.runtime, options.tenant, "/api/v1/users/me")


@tenant_command
def me(ctx: typer.Context, tenant: TenantFlags) -> None:
    """Print the user the credentials act as (GET /api/v1/users/me)."""
    run_me(MeOptions(runtime_of(ctx), tenant))


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="Users of the tenant.", no_args_is_help=True)
    app.command("me")(me)
    root.add_typer(app, name="user")
