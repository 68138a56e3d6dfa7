"""What `qlikm2m tenant me` does once its command line is parsed (Typer-free, for the fast path
of qlikm2m/fast_path.py; the command itself is in qlikm2m/commands/tenant.py)."""

from __future__ import annotations

from dataclasses import dataclass

from qlikm2m.commands.common import TenantRun, show_resource


@dataclass(frozen=True)
class MeOptions(TenantRun):
    """``tenant me`` takes nothing of its own."""


def run_me(options: MeOptions) -> None:
    """Print the tenant of the credentials (tenants.json: GET /api/v1/tenants/me)."""
    show_resource(options.runtime, options.tenant, "/api/v1/tenants/me")
