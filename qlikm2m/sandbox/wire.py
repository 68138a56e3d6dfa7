"""Small wire-format helpers: timestamps, JSON bodies and Qlik's per-service error shapes."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

# Each Qlik service shapes `errors[].status` its own way (see qlik-wire-notes.md and the specs):
# a number in users, a string in oauth and tenants, absent elsewhere; items adds meta flags.
Service = Literal[
    "oauth", "users", "tenants", "spaces", "items", "apps", "reloads", "temp-contents",
    "data-files", "other",
]  # fmt: skip

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


@dataclass
class Response:
    """A complete answer, or with `stream` a body of `stream_length` bytes sent as it is read
    (downloads of temporary contents); stalled bodies are forced responses, not this."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterable[bytes] | None = None
    stream_length: int = 0


def iso(ts: float) -> str:
    """Qlik's timestamp format: UTC with milliseconds and a Z."""
    whole_ms = round(ts * 1000)
    t = time.gmtime(whole_ms // 1000)
    millis = whole_ms % 1000
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{millis:03d}Z"
    )


def json_text(value: str) -> str:
    """`value` escaped for use between double quotes in JSON text."""
    return json.dumps(value)[1:-1]


def iso_date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def trace_id() -> str:
    return secrets.token_hex(16)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, dumps(obj), JSON_TYPE, list(headers or []))


def page_body(entries: list[Any], links: dict[str, Any], **extra: Any) -> bytes:
    """A list page; entries may be dicts or JSON text already (see TenantState.item_json)."""
    data = ",".join(
        e if isinstance(e, str) else json.dumps(e, separators=(",", ":")) for e in entries
    )
    tail = "".join(
        f",{json.dumps(k)}:{json.dumps(v, separators=(',', ':'))}" for k, v in extra.items()
    )
    return f'{{"data":[{data}],"links":{json.dumps(links, separators=(",", ":"))}{tail}}}'.encode()


def error_body(
    service: Service,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    parameter: str | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "title": title}
    if detail:
        error["detail"] = detail
    if service == "users":
        error["status"] = status
    elif service in ("oauth", "tenants"):
        error["status"] = str(status)
    if parameter:
        if service == "spaces":
            error["meta"] = {"source": {"parameter": parameter}}
        elif service in ("users", "tenants", "apps"):
            error["source"] = {"parameter": parameter}
    if service == "items":
        error["meta"] = {
            "fault": status >= 500,
            "temporary": status in (429, 503),
            "timeout": False,
        }
    if service == "data-files":
        # data-files.json ErrorResponse: only `errors`, and no other property is allowed.
        return {"errors": [error]}
    return {"errors": [error], "traceId": trace_id()}


def error_response(
    service: Service,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    parameter: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    body = error_body(service, status, code, title, detail, parameter=parameter)
    return json_response(status, body, headers)


def redirect_response(status: int, location: str) -> Response:
    # Go's http.Redirect body, which is what Qlik's services send with their 301/302.
    reason = "Moved Permanently" if status == 301 else "Found"
    body = f'<a href="{location}">{reason}</a>.\n\n'.encode()
    return Response(status, body, HTML_TYPE, [("Location", location)])
