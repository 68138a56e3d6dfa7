"""Cursor pagination the way Qlik's list endpoints do it: opaque `next` cursors in absolute links."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode


class CursorError(ValueError):
    """A `next` cursor that this sandbox did not issue for this list."""


@dataclass(frozen=True)
class Cursors:
    """Signed cursors: clients must follow the links, never compute them (nor can they)."""

    key: bytes

    def encode(self, kind: str, position: int) -> str:
        payload = f"{kind}:{position}".encode()
        tag = hmac.new(self.key, payload, hashlib.sha256).digest()[:9]
        return base64.urlsafe_b64encode(tag + payload).decode().rstrip("=")

    def decode(self, kind: str, cursor: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError) as error:
            raise CursorError("malformed cursor") from error
        tag, payload = raw[:9], raw[9:]
        expected = hmac.new(self.key, payload, hashlib.sha256).digest()[:9]
        if not hmac.compare_digest(tag, expected):
            raise CursorError("unknown cursor")
        found_kind, _, position = payload.decode(errors="replace").rpartition(":")
        if found_kind != kind or not position.isdigit():
            raise CursorError("cursor of another list")
        return int(position)


@dataclass(frozen=True)
class Page:
    data: list[Any]  # dicts, or JSON text of each entry
    links: dict[str, dict[str, str]]


def take_page(
    scan: Callable[[int], Iterator[tuple[int, Any]]],
    *,
    start: int,
    limit: int,
    kind: str,
    cursors: Cursors,
    self_url: str,
    base_path_url: str,
    query_pairs: Sequence[tuple[str, str]],
) -> Page:
    """Collect up to `limit` entries from `scan(start)`; link to the next page when more remain.

    `scan` yields (position, entry) in list order from a position on; the next cursor records
    where the first entry of the following page sits, so a page never repeats or skips one.
    """
    data: list[Any] = []
    next_position: int | None = None
    for position, entry in scan(start):
        if len(data) == limit:
            next_position = position
            break
        data.append(entry)
    links = {"self": {"href": self_url}}
    if next_position is not None:
        kept = [(k, v) for k, v in query_pairs if k not in ("next", "prev")]
        kept.append(("next", cursors.encode(kind, next_position)))
        links["next"] = {"href": f"{base_path_url}?{urlencode(kept, quote_via=quote)}"}
    return Page(data, links)
