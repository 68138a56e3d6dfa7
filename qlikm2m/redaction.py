"""The sensitive strings of the current run, and the function that masks them in any text.

Secrets and tokens are registered the moment they are read or minted; every path that writes text a
user can see (error messages, the -v trace, tracebacks) passes it through ``redact`` as a safety net
on top of never formatting secrets in the first place.

The registry belongs to the run (``qlikm2m.runtime.open_run``, opened by ``cli.main`` for each
invocation), not to the process: a value one run registered must not mask another run's output
(in-process tests once saw ``keyring`` or ``http://`` printed as ``***`` because an earlier test had
registered them). A run masks what it registered and what its enclosing scopes registered.
"""

from __future__ import annotations

import threading

from qlikm2m.runtime import current_run

_MASK = "***"
# Shorter values would mask ordinary words; real secrets and tokens are far longer.
_MIN_LENGTH = 6
_KEY = "redaction.sensitive"


class _Registry:
    """The secrets of one run and the lock that guards them."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember ``value`` for the rest of the current run so that ``redact`` masks it."""
    if value and len(value) >= _MIN_LENGTH:
        registry = current_run().local(_KEY, _Registry)
        with registry.lock:
            registry.values.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every secret registered in this run (or an enclosing scope) replaced
    by a mask, longest first."""
    found: set[str] = set()
    for scope in current_run().chain():
        registry = scope.peek(_KEY)
        if isinstance(registry, _Registry):
            with registry.lock:
                found |= registry.values
    for value in sorted(found, key=len, reverse=True):
        if value in text:
            text = text.replace(value, _MASK)
    return text


def mask(value: str | None) -> str:
    """A display form that shows a secret exists without revealing it (last 4 chars of long ones)."""
    if not value:
        return ""
    if len(value) >= 20:
        return f"{_MASK}{value[-4:]}"
    return _MASK
