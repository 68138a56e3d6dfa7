"""`qlikm2m tenant me`: the tenant the credentials belong to."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from qlikm2m.commands.common import TenantFlags, TenantRun, show_resource
from qlikm2m.commands.tenant_options import runtime_of, tenant_command


@dataclass(frozen=True)
class MeOptions(TenantRun):
    """``tenant me`` takes nothing of its own."""


def run_me(options: MeOptions) -> None:
    """Print the tenant of the credentials (tenants.json: GET /api/v1/tenants/me)."""
    show_resource(options.runtime, options.tenant, "/api/v1/tenants/me")


@tenant_command
def me(ctx: typer.Context, tenant: TenantFlags) -> None:
    """Print the tenant of the credentials (GET /api/v1/tenants/me)."""
    run_me(MeOptions(runtime_of(ctx), tenant))


def register(root: typer.Typer) -> None:
    app = typer.Typer(help="The tenant itself.", no_args_is_help=True)
    app.command("me")(me)
    root.add_typer(app, name="tenant")
