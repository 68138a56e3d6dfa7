"""The largest page each Qlik list endpoint allows, for `api --paginate` without a ``limit``.

A list read at the API's default page size (10 or 20 items) costs ten times the requests of one
read at its maximum; a user who did not choose a page size should not pay for that. Only
endpoints whose spec states a maximum are listed: asking for more than an endpoint allows is a
400, so an endpoint not listed keeps the API's own default.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

# (path template, maximum ``limit``), from the ``limit`` query parameter's ``maximum`` in
# /work/shared/qlik-specs: api-keys.json, apps.json, data-files.json, groups.json, items.json,
# oauth-clients.json, oauth-tokens.json, reload-tasks.json, reloads.json, users.json (GET list
# operations). spaces.json states a default (10) but no maximum, so spaces are not listed.
_MAXIMA: tuple[tuple[str, int], ...] = (
    ("/api/v1/api-keys", 100),
    ("/api/v1/apps/{}/report-filters", 100),
    ("/api/v1/apps/{}/evaluations", 100),
    ("/api/v1/data-files", 1000),
    ("/api/v1/data-files/connections", 1000),
    ("/api/v1/groups", 100),
    ("/api/v1/items", 100),
    ("/api/v1/items/{}/collections", 100),
    ("/api/v1/items/{}/publisheditems", 100),
    ("/api/v1/oauth-clients", 100),
    ("/api/v1/oauth-tokens", 100),
    ("/api/v1/reload-tasks", 100),
    ("/api/v1/reloads", 100),
    ("/api/v1/users", 100),
)

_PATTERNS = tuple(
    (re.compile("^" + re.escape(template).replace(r"\{\}", "[^/]+") + "/?$"), maximum)
    for template, maximum in _MAXIMA
)


def largest_page(url: str) -> int | None:
    """The ``limit`` maximum of the list at ``url`` (a full URL or a path), or None if unknown."""
    path = urlsplit(url).path
    for pattern, maximum in _PATTERNS:
        if pattern.match(path):
            return maximum
    return None


def with_largest_page(url: str, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``params`` plus ``limit=<maximum>`` when the list's maximum is known and no limit is given.

    A ``limit`` in ``params`` or in the URL's own query is the user's choice and is kept.
    """
    if any(key == "limit" for key, _ in params):
        return params
    if any(key == "limit" for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)):
        return params
    maximum = largest_page(url)
    if maximum is None:
        return params
    return [*params, ("limit", str(maximum))]
