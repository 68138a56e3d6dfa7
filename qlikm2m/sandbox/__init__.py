"""A local Qlik Cloud tenant for tests, demos and dry runs of CI scripts (docs/sandbox.md).

Self-contained on purpose: it imports nothing from the rest of qlikm2m and only the standard
library, so it can be trusted as an independent model of the real service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qlikm2m.sandbox.config import ClientSpec, SandboxConfig, SandboxConfigError
from qlikm2m.sandbox.forcing import ForcedResponse, forced_response
from qlikm2m.sandbox.server import Sandbox

if TYPE_CHECKING:
    from qlikm2m.sandbox.remote import RemoteSandbox


def __getattr__(name: str) -> Any:
    # urllib.request is slow to import and `sandbox serve` never needs the remote controls.
    if name == "RemoteSandbox":
        from qlikm2m.sandbox.remote import RemoteSandbox

        return RemoteSandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ClientSpec",
    "ForcedResponse",
    "RemoteSandbox",
    "Sandbox",
    "SandboxConfig",
    "SandboxConfigError",
    "forced_response",
]
