"""A process-wide list of sensitive strings, and the function that masks them in any text.

Secrets and tokens are registered the moment they are read or minted; every path that writes text a
user can see (error messages, the -v trace, tracebacks) passes it through ``redact`` as a safety net
on top of never formatting secrets in the first place.
"""

from __future__ import annotations

import threading

_MASK = "***"
# Shorter values would mask ordinary words; real secrets and tokens are far longer.
_MIN_LENGTH = 6

_lock = threading.Lock()
_sensitive: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that ``redact`` masks it wherever it appears."""
    if value and len(value) >= _MIN_LENGTH:
        with _lock:
            _sensitive.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by a mask, longest first."""
    with _lock:
        values = sorted(_sensitive, key=len, reverse=True)
    for value in values:
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
