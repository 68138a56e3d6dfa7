"""Why a connection failed: the real cause, dug out of what requests and urllib3 nest."""

from __future__ import annotations

import re
from collections.abc import Iterator

from qlikm2m.http.error_bodies import _clean


def _cause_chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: requests and urllib3 nest the real cause deeply."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        for attribute in ("reason", "__cause__", "__context__"):
            linked = getattr(current, attribute, None)
            if isinstance(linked, BaseException):
                stack.append(linked)


def _cause_text(error: BaseException) -> str:
    import socket
    from http.client import IncompleteRead

    for cause in _cause_chain(error):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "the host name could not be resolved"
        if isinstance(cause, ConnectionResetError):
            return "the connection was reset"
        if isinstance(cause, IncompleteRead):
            # urllib3's subclass counts bytes (ints); the standard library's keeps the bytes.
            partial, missing = cause.partial, cause.expected
            got = partial if isinstance(partial, int) else len(partial)
            short = f", {missing} bytes short of its Content-Length" if missing else ""
            return f"the server closed the connection after {got} bytes of the body{short}"
    text = str(error)
    if "RemoteDisconnected" in text or "closed connection" in text.lower():
        return "the server closed the connection without answering"
    if "timed out" in text.lower():
        return "timed out"
    text = re.sub(r"<[^>]*object at 0x[0-9a-f]+>", "", text)
    return _clean(text, 200) or type(error).__name__


def _unresolved(error: BaseException) -> bool:
    """True when a host name (the tenant's, or the proxy's) did not resolve."""
    import socket

    return any(isinstance(cause, socket.gaierror) for cause in _cause_chain(error))


def _nothing_sent(error: BaseException) -> bool:
    """True when the failure happened before the request left: safe to retry any method."""
    from urllib3.exceptions import NewConnectionError

    return any(isinstance(cause, NewConnectionError) for cause in _cause_chain(error))
