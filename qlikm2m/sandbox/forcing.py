"""Forced responses: what tests make the sandbox answer instead of the real thing, on demand."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_PATTERN = b"qlikm2m-sandbox-stream-" * 2849  # ~64 KiB of filler, reused for every chunk


@dataclass
class ForcedResponse:
    """One canned answer for the next `times` requests matching `match`.

    `match` is "METHOD /path/prefix" ("*" or no method for any), or None for every API request.
    A body may be bytes, text, or a JSON value; `stream_bytes` generates a body of that many bytes
    without holding it in memory; `stall_after` sends that many body bytes and then stalls for
    `stall` seconds (None: until the sandbox stops) before closing the connection; `drop` closes
    the connection without any answer; `delay` waits before answering. `reset_after` lets an
    upload (a tus PATCH) deliver that many body bytes to the tenant, which keeps them, and then
    resets the connection without an answer: a connection dropped mid-upload.
    """

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    content_type: str | None = None
    delay: float = 0.0
    stream_bytes: int | None = None
    stall_after: int | None = None
    stall: float | None = None
    drop: bool = False
    reset_after: int | None = None
    chunked: bool = False
    match: str | None = None
    times: int | None = 1
    method: str = field(init=False, default="*")
    prefix: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.match:
            method, sep, prefix = self.match.strip().partition(" ")
            if not sep:
                method, prefix = ("*", method) if method.startswith("/") else (method, "/")
            self.method = method.upper()
            self.prefix = prefix.strip() or "/"
        else:
            self.method, self.prefix = "*", "/"
        if self.times is not None and self.times < 1:
            raise ValueError("times must be at least 1 (or None for until cleared)")
        if self.reset_after is not None and self.reset_after < 0:
            raise ValueError("reset_after must be 0 or more")
        if self.stream_bytes is not None and self.stream_bytes < 0:
            raise ValueError("stream_bytes must be 0 or more")

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and path.startswith(self.prefix)

    @property
    def length(self) -> int:
        return self.stream_bytes if self.stream_bytes is not None else len(self.body)

    def chunks(self) -> Iterator[bytes]:
        if self.stream_bytes is None:
            if self.body:
                yield self.body
            return
        remaining = self.stream_bytes
        while remaining > 0:
            piece = _PATTERN[: min(remaining, len(_PATTERN))]
            remaining -= len(piece)
            yield piece


def forced_response(
    *,
    status: int | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    body: bytes | str | dict[str, Any] | list[Any] | None = None,
    content_type: str | None = None,
    location: str | None = None,
    **options: Any,
) -> ForcedResponse:
    """Build a ForcedResponse from friendly arguments (used by the Python and HTTP controls).

    A JSON value is sent as application/json, other bodies as text/plain unless `content_type`
    or a Content-Type header says otherwise; an empty body has no content type.
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    if isinstance(body, (dict, list)):
        raw = json.dumps(body).encode()
        content_type = content_type or "application/json"
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = body or b""
    if location is not None:
        pairs.append(("Location", location))
        status = status or 302
    if content_type is None and raw and not any(k.lower() == "content-type" for k, _ in pairs):
        content_type = "text/plain; charset=utf-8"
    return ForcedResponse(
        status=status or 200, headers=pairs, body=raw, content_type=content_type, **options
    )


def forced_from_json(spec: Mapping[str, Any]) -> ForcedResponse:
    """The HTTP control's JSON form; `body_base64` carries bytes that are not text."""
    fields = dict(spec)
    if "body_base64" in fields:
        fields["body"] = base64.b64decode(fields.pop("body_base64"))
    allowed = {
        "status", "headers", "body", "content_type", "location", "delay", "stream_bytes",
        "stall_after", "stall", "drop", "reset_after", "chunked", "match", "times",
    }  # fmt: skip
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"unknown forced-response fields: {', '.join(unknown)}")
    return forced_response(**fields)


class ForcedQueue:
    """First matching entry wins; an entry is used `times` times, then dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[ForcedResponse] = []

    def add(self, entry: ForcedResponse) -> None:
        with self._lock:
            self._entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def take(self, method: str, path: str) -> ForcedResponse | None:
        with self._lock:
            for entry in self._entries:
                if entry.matches(method, path):
                    if entry.times is not None:
                        entry.times -= 1
                        if entry.times == 0:
                            self._entries.remove(entry)
                    return entry
        return None
