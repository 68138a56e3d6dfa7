"""qlikm2m: a command-line tool for Qlik Cloud machine-to-machine OAuth clients, and a small
Python library over the same contexts and token cache (docs/library.md).

The library's names are loaded on first use (PEP 562), so ``qlikm2m --version`` and the CLI's
start-up import nothing of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from qlikm2m.library import (
        ApiError,
        AuthError,
        Client,
        ConfigError,
        NetworkError,
        QlikAuth,
        QlikM2MError,
        paginate,
        session,
        token,
    )

__all__ = [
    "ApiError",
    "AuthError",
    "Client",
    "ConfigError",
    "NetworkError",
    "QlikAuth",
    "QlikM2MError",
    "__version__",
    "paginate",
    "session",
    "token",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from qlikm2m import library

        return getattr(library, name)
    raise AttributeError(f"module 'qlikm2m' has no attribute {name!r}")
