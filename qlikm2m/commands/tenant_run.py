"""What `qlikm2m tenant me` does once its command line is parsed (Typer-free, for the fast path
of qlikm2m/fast_path.py; the command itself is in qlikm2m/commands/tenant.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from qlikm2m.commands.common import TenantFlags, show_resource

if TYPE_CHECKING:
    from qlikm2m.runtime import Runtime


class MeOptions(NamedTuple):
    """``tenant me`` takes nothing of its own: the fields of every ``TenantRun``
    (qlikm2m/commands/run_options.py), as a NamedTuple for the fast path (no dataclasses)."""

    runtime: Runtime
    tenant: TenantFlags


def run_me(options: MeOptions) -> None:
    """Print the tenant of the credentials (tenants.json: GET /api/v1/tenants/me)."""
    show_resource(options.runtime, options.tenant, "/api/v1/tenants/me")
