"""What `qlikm2m user me` does once its command line is parsed (Typer-free, for the fast path
of qlikm2m/fast_path.py; the command itself is in qlikm2m/commands/user.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from qlikm2m.commands.common import TenantFlags, show_resource

if TYPE_CHECKING:
    from qlikm2m.runtime import Runtime


class MeOptions(NamedTuple):
    """``user me`` takes nothing of its own: the fields of every ``TenantRun``
    (qlikm2m/commands/run_options.py), as a NamedTuple for the fast path (no dataclasses)."""

    runtime: Runtime
    tenant: TenantFlags


def run_me(options: MeOptions) -> None:
    """Print the user the credentials act as (users.json: GET /api/v1/users/me)."""
    show_resource(options.runtime, options.tenant, "/api/v1/users/me")
