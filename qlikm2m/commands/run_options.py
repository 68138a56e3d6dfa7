"""What a command's options value starts from: ``TenantRun`` and ``ContextRun``.

A command's Typer function parses its command line into a frozen dataclass extending one of
these and hands it to its ``run_*`` function (qlikm2m/commands/common.py tells the shape). Kept
apart from ``common`` so that the launcher's fast path, which imports ``common``, imports no
``dataclasses`` (issue 14): the hottest commands' options are NamedTuples with these fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qlikm2m.commands.common import TenantFlags
    from qlikm2m.runtime import Runtime


@dataclass(frozen=True)
class TenantRun:
    """What every command that talks to a tenant runs with: where it runs (the streams, the
    environment and the global options, in ``runtime``) and its connection flags. A command's
    options dataclass extends this with its own."""

    runtime: Runtime
    tenant: TenantFlags


@dataclass(frozen=True)
class ContextRun:
    """What a command on the stored contexts (``context ...``) runs with: where it runs (the
    streams, the environment and the global options). It talks to no tenant unless asked to
    verify credentials, so it carries no connection flags. Its options dataclass extends this."""

    runtime: Runtime
