"""Qlik error bodies: their many shapes read into one sentence and the project's error."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from qlikm2m.errors import ApiError, AuthError, NetworkError, QlikM2MError
from qlikm2m.http.base import _path_of
from qlikm2m.redaction import redact

if TYPE_CHECKING:
    from qlikm2m.http.responses import Response


@dataclass(frozen=True)
class QlikErrorInfo:
    title: str | None = None
    detail: str | None = None
    code: str | None = None
    trace_id: str | None = None
    html: bool = False

    @property
    def text(self) -> str:
        parts = [p.rstrip(". ") for p in (self.title, self.detail) if p and p.rstrip(". ")]
        if len(parts) == 2 and parts[1].lower().startswith(parts[0].lower()):
            parts = parts[1:]
        text = ": ".join(parts)
        if self.code and text:
            text += f" ({self.code})"
        return text


def _clean(value: Any, limit: int = 300) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = " ".join(str(value).split())
    text = "".join(ch for ch in text if ch.isprintable())
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_error_body(body: bytes, content_type: str = "") -> QlikErrorInfo:
    """Read Qlik's error shape in all its variants; never raises.

    ``{"errors": [{"code", "title", "detail", "status"}], "traceId"}`` with ``status`` a number, a
    string or absent depending on the service; RFC 6749 ``error``/``error_description``; a bare
    ``message``; an HTML page from a proxy; plain text; or nothing at all.
    """
    try:
        text = body.decode("utf-8", errors="replace").strip()
    except Exception:  # pragma: no cover - bytes.decode with "replace" does not raise
        return QlikErrorInfo()
    if not text:
        return QlikErrorInfo()
    if text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if data is not None:
            return _from_json(data)
    if "html" in content_type or text[:1] == "<":
        return _from_html(text)
    first_line = text.splitlines()[0] if text.splitlines() else text
    return QlikErrorInfo(detail=_clean(first_line, 200))


def _from_json(data: Any) -> QlikErrorInfo:
    if isinstance(data, list):
        data = {"errors": data}
    if not isinstance(data, dict):
        return QlikErrorInfo(detail=_clean(data, 200))
    trace_id = _clean(data.get("traceId") or data.get("traceid"), 64)
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        return QlikErrorInfo(
            title=_clean(first.get("title")),
            detail=_clean(first.get("detail")),
            code=_clean(first.get("code"), 64),
            trace_id=trace_id,
        )
    if isinstance(data.get("error"), str):
        return QlikErrorInfo(
            title=_clean(data.get("error")),
            detail=_clean(data.get("error_description")),
            trace_id=trace_id,
        )
    if isinstance(data.get("error"), dict):
        return _from_json({"errors": [data["error"]], "traceId": data.get("traceId")})
    return QlikErrorInfo(
        title=_clean(data.get("title")),
        detail=_clean(data.get("message") or data.get("detail")),
        code=_clean(data.get("code"), 64),
        trace_id=trace_id,
    )


def _from_html(text: str) -> QlikErrorInfo:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL) or re.search(
        r"<h1[^>]*>(.*?)</h1>", text, re.IGNORECASE | re.DOTALL
    )
    title = _clean(re.sub(r"<[^>]+>", " ", match.group(1)), 120) if match else None
    return QlikErrorInfo(title=title, html=True)


def error_sentence(response: Response, info: QlikErrorInfo) -> str:
    """One sentence naming the request, the status and what the server said."""
    status = f"HTTP {response.status}" + (f" {response.reason}" if response.reason else "")
    sentence = f"{response.method} {_path_of(response.url)} failed with {status}"
    # Said once: "HTTP 404 Not Found: Item not found", not "...Not Found: Not Found: ... (HTTP-404)".
    info = replace(
        info,
        title=None if (info.title or "").lower() == (response.reason or "").lower() else info.title,
        code=None if info.code == f"HTTP-{response.status}" else info.code,
    )
    if info.html:
        said = f" ({info.title})" if info.title else ""
        sentence += f": the answer was an HTML page{said}, probably from a proxy or load balancer"
    elif info.text:
        sentence += f": {info.text}"
    if response.attempts > 1:
        sentence += f", after {response.attempts} attempts"
    return redact(sentence.rstrip(".") + ".")


def error_for(response: Response) -> QlikM2MError:
    """The project error for a final non-2xx response (after retries and redirects)."""
    info = parse_error_body(response.read_prefix(), response.content_type)
    message = error_sentence(response, info)
    details: dict[str, Any] = {"status": response.status}
    if info.code:
        details["code"] = info.code
    if info.trace_id:
        details["traceId"] = info.trace_id
    status = response.status
    if status == 401:
        return AuthError(
            message,
            hint="The tenant refused the token: check the OAuth client's scopes and that it is "
            "still enabled.",
            details=details,
        )
    if status == 429:
        wait = response.headers.get("retry-after")
        return NetworkError(
            message,
            hint="The tenant's rate limit was reached"
            + (f" (it asks to wait {wait} s)" if wait else "")
            + "; retry later, or allow a longer wait with QLIKM2M_MAX_RETRY_WAIT.",
            details=details,
        )
    if status >= 500:
        return NetworkError(
            message, hint="The tenant or a proxy is failing; retry later.", details=details
        )
    if status == 403:
        hint = "The OAuth client (or its bot user) lacks the permission or scope for this."
    elif status == 404:
        hint = "Check the path and the ids in it."
    else:
        hint = None
    return ApiError(message, hint=_CODE_HINTS.get(info.code or "", hint), details=details)


# Errors whose code says more than their status. RELOADS-005 is a 403 for an app id that matches
# nothing the client can see: a typo far more often than a missing permission (reloads.json).
_CODE_HINTS = {
    "RELOADS-005": "Check the app id: no app with this id is visible to the OAuth client "
    "(`qlikm2m apps ls` lists the ids it can see); if the id is right, give the client access "
    "to the app's space.",
}


def raise_for_status(response: Response) -> Response:
    if response.status >= 400 or response.status < 200:
        raise error_for(response)
    return response
