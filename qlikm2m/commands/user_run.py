"""What `qlikm2m user me` does once its command line is parsed (Typer-free, for the fast path
of qlikm2m/fast_path.py; the command itself is in qlikm2m/commands/user.py)."""

from __future__ import annotations

from dataclasses import dataclass

from qlikm2m.commands.common import TenantRun, show_resource


@dataclass(frozen=True)
class MeOptions(TenantRun):
    """``user me`` takes nothing of its own."""


def run_me(options: MeOptions) -> None:
    """Print the user the credentials act as (users.json: GET /api/v1/users/me)."""
    show_resource(options.runtime, options.tenant, "/api/v1/users/me")
