"""The HTTP layer's shared values: options, body limits and URL helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple, TypeAlias
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import requests

Params = Mapping[str, str] | Sequence[tuple[str, str]] | None
# The requests.Session that qlikm2m.library.session() hands out, named here so that requests is
# imported in the qlikm2m.http package only.
RequestsSession: TypeAlias = "requests.Session"

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Bodies read whole (JSON pages, objects) are bounded: a hostile or broken server must not make
# us hold hundreds of MB. Error bodies need far less to say what went wrong.
MAX_JSON_BODY = 64 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024
MAX_REDIRECTS = 10
CHUNK_SIZE = 64 * 1024


class HttpOptions(NamedTuple):
    """Timeouts (seconds), retries and the extra CA bundle of one transport. A NamedTuple, not a
    frozen dataclass: built on every command's path, at a fifth of the import cost (issue 14)."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retry_wait: float = 60.0
    max_retries: int = 4
    ca_bundle: str | None = None


@lru_cache(maxsize=256)
def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the default port filled in: what "same origin" compares.

    Cached: a listing asks it several times a page of the same URLs (the tenant's, the page's).
    Raises ValueError for a port that is not a number, as ``urlsplit`` does.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` shown as ``***@``: proxy URLs often carry a password."""
    from urllib.parse import urlunsplit

    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, f"***@{netloc}", parts.path, "", ""))


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path or "/"
