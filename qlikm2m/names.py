"""Names where people use names: a space or an app given by name (or id) resolves to one record.

A name that matches nothing, or more than one thing, is an ApiError (exit 5) that lists the
candidates, so a CI job never acts on a guess. Ids are tried first when a value looks like one
(24 hex digits for a space, a GUID for an app), names otherwise; each costs one request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from qlikm2m.errors import ApiError, UsageError

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient

SPACE_ID = re.compile(r"^[0-9a-fA-F]{24}$")
APP_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
PERSONAL = "personal"
MAX_LISTED = 10


@dataclass(frozen=True)
class AppRef:
    """An app as the items API lists it: app id (``resourceId``), name, space (None: personal)."""

    id: str
    name: str
    space_id: str | None
    item: Mapping[str, Any]


def _candidates(records: Iterable[Mapping[str, Any]], *keys: str) -> list[dict[str, Any]]:
    # A key "id=resourceId" shows the record's resourceId as "id".
    pairs = [(key.split("=")[0], key.split("=")[-1]) for key in keys]
    return [{shown: record.get(source) for shown, source in pairs} for record in records]


def _listed(candidates: list[dict[str, Any]]) -> str:
    shown = [", ".join(f"{k} {v}" for k, v in c.items() if v) for c in candidates[:MAX_LISTED]]
    more = len(candidates) - MAX_LISTED
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _pick(
    what: str,
    value: str,
    found: Sequence[Mapping[str, Any]],
    *,
    name_key: str,
    keys: tuple[str, ...],
) -> Mapping[str, Any]:
    """One record whose name is ``value``: exact case first, then any case; else an ApiError."""
    exact = [r for r in found if r.get(name_key) == value]
    folded = [r for r in found if str(r.get(name_key, "")).casefold() == value.casefold()]
    matches = exact or folded
    if len(matches) == 1:
        return matches[0]
    if matches:
        candidates = _candidates(matches, *keys)
        raise ApiError(
            f"{len(matches)} {what}s are named {value!r}: {_listed(candidates)}.",
            hint=f"Give the {what} id instead of its name.",
            details={"candidates": candidates},
        )
    candidates = _candidates(found, *keys)
    similar = f" Similar names: {_listed(candidates)}." if candidates else ""
    raise ApiError(
        f"No {what} is named {value!r}.{similar}",
        hint=f"Check the name (or give the {what} id); list them with: qlikm2m {what}s ls",
        details={"candidates": candidates},
    )


def resolve_space(client: QlikClient, value: str) -> Mapping[str, Any]:
    """The space record whose id or name is ``value`` (GET /api/v1/spaces[/{spaceId}])."""
    value = value.strip()
    if not value:
        raise UsageError("The space is empty.", hint="Give a space name or id.")
    if SPACE_ID.match(value):
        response = client.request("GET", f"/api/v1/spaces/{quote(value)}", check=False)
        if response.status == 200:
            record = response.json()
            if isinstance(record, dict):
                return record
        if response.status != 404:
            from qlikm2m.http import raise_for_status

            raise_for_status(response)
        response.read_prefix()
    # The spaces API filters by substring: the exact match is ours to pick.
    found = list(client.paginate("/api/v1/spaces", {"name": value, "limit": "100"}))
    return _pick("space", value, found, name_key="name", keys=("id", "name", "type"))


def space_filter(client: QlikClient, value: str | None) -> str | None:
    """A ``--space`` filter as the items API takes it: a space id, or ``personal``."""
    if value is None:
        return None
    if value.strip().lower() == PERSONAL:
        return PERSONAL
    return str(resolve_space(client, value)["id"])


def _app_ref(item: Mapping[str, Any]) -> AppRef:
    return AppRef(
        id=str(item.get("resourceId") or ""),
        name=str(item.get("name") or ""),
        space_id=str(item["spaceId"]) if item.get("spaceId") else None,
        item=item,
    )


def find_apps(client: QlikClient, name: str, space_id: str | None = None) -> list[AppRef]:
    """Apps named exactly ``name`` (any case), optionally in one space (GET /api/v1/items)."""
    params = {"resourceType": "app", "name": name, "limit": "100"}
    if space_id:
        params["spaceId"] = space_id
    found = client.paginate("/api/v1/items", params)
    return [
        _app_ref(item) for item in found if str(item.get("name", "")).casefold() == name.casefold()
    ]


def resolve_app(client: QlikClient, value: str, *, space_id: str | None = None) -> AppRef:
    """The app whose id or name is ``value`` (in ``space_id`` when given), via the items API."""
    value = value.strip()
    if not value:
        raise UsageError("The app is empty.", hint="Give an app name or id.")
    by_id = _app_by_id(client, value) if APP_ID.match(value) else None
    if by_id is not None:
        return by_id
    params = {"resourceType": "app", "name": value, "limit": "100"}
    if space_id:
        params["spaceId"] = space_id
    found = list(client.paginate("/api/v1/items", params))
    try:
        return _app_ref(
            _pick("app", value, found, name_key="name", keys=("id=resourceId", "name", "spaceId"))
        )
    except ApiError:
        # Not a name: it may still be an id in a form we did not recognise.
        by_id = None if APP_ID.match(value) else _app_by_id(client, value)
        if by_id is not None:
            return by_id
        raise


def _app_by_id(client: QlikClient, app_id: str) -> AppRef | None:
    page = client.get_json(
        "/api/v1/items", {"resourceType": "app", "resourceId": app_id, "limit": "1"}
    )
    data = page.get("data") if isinstance(page, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return _app_ref(data[0])
    return None
