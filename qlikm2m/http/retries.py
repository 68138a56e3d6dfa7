"""Retry timing: Retry-After, backoff, and the failures the transport may retry."""

from __future__ import annotations

from collections.abc import Callable

from qlikm2m.errors import QlikM2MError

_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 8.0


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``retry-after`` header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, rand: Callable[[], float] | None = None) -> float:
    """Exponential backoff with jitter: between half and all of 0.5 s * 2^attempt (capped)."""
    if rand is None:
        import random

        rand = random.random
    base = min(_BACKOFF_CAP, _BACKOFF_BASE * (2.0**attempt))
    return base * (0.5 + rand() / 2)


class _Failure:
    def __init__(self, error: QlikM2MError) -> None:
        self._error = error
        self.unsent = False

    @property
    def message(self) -> str:
        return self._error.message

    def error(self, attempts: int) -> QlikM2MError:
        if attempts > 1:
            self._error.message = self._error.message.rstrip(".") + f" (after {attempts} attempts)."
        return self._error


class _Retryable(_Failure):
    def __init__(self, error: QlikM2MError, *, unsent: bool) -> None:
        super().__init__(error)
        self.unsent = unsent
