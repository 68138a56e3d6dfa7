"""The spaces, items and apps listings: their queries, their table columns and the --limit cut.

A listing follows every page by default (qlik-cli's silent one-page stop is the bug this avoids);
``--limit`` stops early, and ``LimitedItems.cut`` tells whether anything was left behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qlikm2m.errors import UsageError

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.runtime import Runtime

MAX_PAGE_SIZE = 100  # the items and users APIs refuse more; spaces documents no maximum
SPACE_TYPES = ("shared", "managed", "data")

Record = Mapping[str, Any]

_TYPE_WORD = re.compile(r"^[a-z][a-z0-9-]*(?:,[a-z][a-z0-9-]*)*$")


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[Record], str]


@dataclass(frozen=True)
class Listing:
    """One listing request: what to fetch and how a person sees each record."""

    noun: str  # "spaces", "items", "apps": for messages
    path: str
    params: Mapping[str, str]
    columns: tuple[Column, ...]

    def with_page_size(self, limit: int | None) -> dict[str, str]:
        """The query for the first page; ``links.next.href`` carries it on to the next ones."""
        return {**self.params, "limit": str(page_size(limit))}

    def row(self, record: Record) -> list[str]:
        return [column.value(record) for column in self.columns]

    @property
    def headers(self) -> list[str]:
        return [column.title for column in self.columns]


def page_size(limit: int | None) -> int:
    # Asking for one more than --limit lets the first page itself tell whether the cut dropped
    # anything, without a second request.
    if limit is None:
        return MAX_PAGE_SIZE
    return max(1, min(MAX_PAGE_SIZE, limit + 1))


def check_limit(limit: int | None) -> int | None:
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1.", hint="Leave it out to list everything.")
    return limit


def _text(key: str) -> Callable[[Record], str]:
    def value(record: Record) -> str:
        found = record.get(key)
        return "" if found is None else str(found)

    return value


def _space_of(record: Record) -> str:
    # Items in a personal space have no spaceId; the API's own filter word for them is "personal".
    space = record.get("spaceId")
    return str(space) if space else "personal"


def _updated(key: str) -> Callable[[Record], str]:
    def value(record: Record) -> str:
        return short_time(record.get(key))

    return value


def short_time(value: object) -> str:
    """``2024-05-01T12:34:56.789Z`` as ``2024-05-01 12:34``; anything else as it is."""
    text = "" if value is None else str(value)
    match = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})", text)
    return f"{match.group(1)} {match.group(2)}" if match else text


def _item_type(record: Record) -> str:
    kind = str(record.get("resourceType") or "")
    sub = record.get("resourceSubType")
    return f"{kind}/{sub}" if sub else kind


def spaces_listing(*, space_type: str | None = None, name: str | None = None) -> Listing:
    params: dict[str, str] = {}
    if space_type:
        # The spaces API takes several types as one comma list (spaces.json, GET /spaces).
        for one in space_type.split(","):
            if one not in SPACE_TYPES:
                raise UsageError(
                    f"--type {one!r} is not a space type.",
                    hint=f"Use one of: {', '.join(SPACE_TYPES)}.",
                )
        params["type"] = space_type
    if name:
        params["name"] = name
    columns = (
        Column("NAME", _text("name")),
        Column("ID", _text("id")),
        Column("TYPE", _text("type")),
        Column("UPDATED", _updated("updatedAt")),
    )
    return Listing("spaces", "/api/v1/spaces", params, columns)


def items_listing(
    *, resource_type: str | None = None, space: str | None = None, name: str | None = None
) -> Listing:
    params: dict[str, str] = {}
    if resource_type:
        # The API takes a comma list, with optional [subtype] filters; keep to what a flag needs.
        if not _TYPE_WORD.match(resource_type):
            raise UsageError(
                f"--type {resource_type!r} is not an item type.",
                hint="Item types look like app, dataset, note, automation (comma-separate several).",
            )
        params["resourceType"] = resource_type
    if space:
        params["spaceId"] = space
    if name:
        params["name"] = name
    columns = (
        Column("NAME", _text("name")),
        Column("ID", _text("id")),
        Column("TYPE", _item_type),
        Column("SPACE", _space_of),
        Column("UPDATED", _updated("updatedAt")),
    )
    return Listing("items", "/api/v1/items", params, columns)


def apps_listing(*, space: str | None = None, name: str | None = None) -> Listing:
    """Apps are items of type app; the id a person needs (for reload, apps get) is resourceId."""
    items = items_listing(resource_type="app", space=space, name=name)
    columns = (
        Column("NAME", _text("name")),
        Column("APP ID", _text("resourceId")),
        Column("TYPE", _item_type),
        Column("SPACE", _space_of),
        Column("UPDATED", _updated("updatedAt")),
    )
    return Listing("apps", items.path, items.params, columns)


@dataclass
class LimitedItems:
    """Iterates at most ``limit`` records; after the end, ``cut`` says whether more were left."""

    source: Iterable[Record]
    limit: int | None
    cut: bool = False
    count: int = 0

    def __iter__(self) -> Iterator[Record]:
        iterator = iter(self.source)
        try:
            for record in iterator:
                if self.limit is not None and self.count >= self.limit:
                    # One record past the limit proves there was more; stop before fetching further.
                    self.cut = True
                    return
                self.count += 1
                yield record
        finally:
            close = getattr(iterator, "close", None)
            if callable(close):
                close()

    def cut_message(self, noun: str) -> str:
        return (
            f"showing the first {self.count} {noun}; more exist "
            "(raise --limit, or drop it to list them all)"
        )


# --- rendering ----------------------------------------------------------------------------------


def choose_format(runtime: Runtime, *, ndjson: bool) -> str:
    """``ndjson``, ``table``, ``text``, ``json`` or ``yaml``: a table at a terminal by default."""
    from qlikm2m.output import chosen_format

    if ndjson:
        if runtime.output_explicit and runtime.output != "json":
            raise UsageError(f"--ndjson cannot be combined with -o {runtime.output}.")
        return "ndjson"
    return chosen_format(runtime, listing=True)


def _picked_records(result: Any, records: list[Record]) -> bool:
    """True when a query returned some of the records themselves (a filter, a slice, a sort)."""
    if not isinstance(result, list) or not result:
        return False
    originals = {id(record) for record in records}
    return all(id(item) in originals for item in result)


def emit_listing(
    runtime: Runtime, listing: Listing, records: LimitedItems, *, ndjson: bool = False
) -> int:
    """Print a listing as it arrives in the chosen format; note a --limit cut on stderr."""
    from qlikm2m.output import Output, terminal_width, write_table

    chosen = choose_format(runtime, ndjson=ndjson)
    output = Output(runtime, listing=True)
    if chosen == "ndjson":
        count = output.ndjson(records)
    elif chosen == "table" and runtime.query is None:
        rows = (listing.row(record) for record in records)
        count = write_table(
            runtime.stdout,
            listing.headers,
            rows,
            bold=runtime.color_for(runtime.stdout),
            width=terminal_width(runtime),
        )
        if count == 0:
            runtime.stderr.write(f"no {listing.noun} found\n")
    elif chosen == "text" and runtime.query is None:
        count = output.text_lines(records)
    elif chosen == "json" and output.streams_array:
        count = output.json_array(records)
    else:
        # A --query shapes the whole list: it is applied before any format, tables included.
        collected = list(records)
        count = len(collected)
        result = output.apply_query(collected)
        if chosen == "table" and _picked_records(result, collected):
            # A filter keeps whole records: they keep the listing's own columns.
            write_table(
                runtime.stdout,
                listing.headers,
                (listing.row(record) for record in result),
                bold=runtime.color_for(runtime.stdout),
                width=terminal_width(runtime),
            )
        else:
            output.emit(result, queried=True)
    if records.cut:
        runtime.stderr.write(f"note: {records.cut_message(listing.noun)}\n")
        runtime.stderr.flush()
    return count


def fetch(client: QlikClient, listing: Listing, limit: int | None) -> LimitedItems:
    """The records of a listing, every page unless ``limit``, fetched lazily as they are read."""
    return LimitedItems(client.paginate(listing.path, listing.with_page_size(limit)), limit)
