"""Listing queries, table rows and the --limit cut, without HTTP."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from harness import make_runtime

from qlikm2m.errors import UsageError
from qlikm2m.listing import (
    MAX_PAGE_SIZE,
    LimitedItems,
    apps_listing,
    check_limit,
    choose_format,
    emit_listing,
    items_listing,
    page_size,
    short_time,
    spaces_listing,
)


class Pages:
    """Yields records page by page and counts the pages it had to fetch, like the client does."""

    def __init__(self, total: int, size: int) -> None:
        self.total = total
        self.size = size
        self.pages_fetched = 0
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for start in range(0, self.total, self.size):
                self.pages_fetched += 1
                for n in range(start, min(start + self.size, self.total)):
                    yield {"id": f"i{n}"}
        finally:
            self.closed = True


@pytest.mark.parametrize(
    ("limit", "size"), [(None, MAX_PAGE_SIZE), (1, 2), (10, 11), (99, 100), (100, 100), (5000, 100)]
)
def test_page_size_asks_one_more_than_the_limit_within_the_maximum(
    limit: int | None, size: int
) -> None:
    assert page_size(limit) == size


def test_without_limit_everything_comes_through_and_nothing_is_cut() -> None:
    pages = Pages(total=250, size=100)
    limited = LimitedItems(pages, None)
    ids = [record["id"] for record in limited]
    assert ids == [f"i{n}" for n in range(250)]
    assert not limited.cut
    assert pages.pages_fetched == 3


def test_limit_cuts_and_says_so_without_fetching_another_page() -> None:
    pages = Pages(total=500, size=page_size(10))
    limited = LimitedItems(pages, 10)
    ids = [record["id"] for record in limited]
    assert ids == [f"i{n}" for n in range(10)]
    assert limited.cut
    assert pages.pages_fetched == 1
    assert pages.closed
    assert limited.cut_message("items") == (
        "showing the first 10 items; more exist (raise --limit, or drop it to list them all)"
    )


def test_limit_equal_to_the_total_is_not_a_cut() -> None:
    limited = LimitedItems(Pages(total=10, size=page_size(10)), 10)
    assert len(list(limited)) == 10
    assert not limited.cut


def test_limit_above_the_total_is_not_a_cut() -> None:
    limited = LimitedItems(Pages(total=7, size=page_size(50)), 50)
    assert len(list(limited)) == 7
    assert not limited.cut


def test_limit_across_pages() -> None:
    pages = Pages(total=1000, size=page_size(250))
    limited = LimitedItems(pages, 250)
    assert len(list(limited)) == 250
    assert limited.cut
    assert pages.pages_fetched == 3


def test_check_limit() -> None:
    assert check_limit(None) is None
    assert check_limit(3) == 3
    with pytest.raises(UsageError, match="--limit"):
        check_limit(0)


def test_spaces_query_and_columns() -> None:
    listing = spaces_listing(space_type="managed", name="fin")
    assert listing.path == "/api/v1/spaces"
    assert listing.with_page_size(None) == {"type": "managed", "name": "fin", "limit": "100"}
    assert listing.headers == ["NAME", "ID", "TYPE", "UPDATED"]
    row = listing.row(
        {"name": "Finance", "id": "s1", "type": "managed", "updatedAt": "2024-05-01T12:34:56Z"}
    )
    assert row == ["Finance", "s1", "managed", "2024-05-01 12:34"]
    with pytest.raises(UsageError, match="space type"):
        spaces_listing(space_type="personal")


def test_items_query_and_columns() -> None:
    listing = items_listing(resource_type="app,dataset", space="personal", name="sales")
    assert listing.path == "/api/v1/items"
    assert listing.with_page_size(5) == {
        "resourceType": "app,dataset",
        "spaceId": "personal",
        "name": "sales",
        "limit": "6",
    }
    assert listing.headers == ["NAME", "ID", "TYPE", "SPACE", "UPDATED"]
    personal = {"name": "Sales", "id": "it1", "resourceType": "app", "updatedAt": "x"}
    assert listing.row(personal) == ["Sales", "it1", "app", "personal", "x"]
    shared = {**personal, "spaceId": "sp9", "resourceSubType": "qvd"}
    assert listing.row(shared)[2:4] == ["app/qvd", "sp9"]
    with pytest.raises(UsageError, match="item type"):
        items_listing(resource_type="app&x=1")


def test_apps_are_app_items_shown_by_their_app_id() -> None:
    listing = apps_listing(space="sp1")
    assert listing.path == "/api/v1/items"
    assert listing.params == {"resourceType": "app", "spaceId": "sp1"}
    assert listing.headers[1] == "APP ID"
    row = listing.row({"name": "Sales", "id": "item-1", "resourceId": "app-1", "spaceId": "sp1"})
    assert row[:2] == ["Sales", "app-1"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [("2024-05-01T12:34:56.789Z", "2024-05-01 12:34"), ("yesterday", "yesterday"), (None, "")],
)
def test_short_time(value: object, shown: str) -> None:
    assert short_time(value) == shown


# --- rendering ----------------------------------------------------------------------------------


class Watched(io.StringIO):
    """A stdout that records how many records had been fetched when each write happened."""

    def __init__(self, pulled: list[int], tty: bool = False) -> None:
        super().__init__()
        self.pulled = pulled
        self.tty = tty
        self.writes_at: list[int] = []

    def write(self, text: str) -> int:
        self.writes_at.append(self.pulled[0])
        return super().write(text)

    def isatty(self) -> bool:
        return self.tty


def _source(total: int, pulled: list[int]) -> Iterator[dict[str, Any]]:
    for n in range(total):
        pulled[0] += 1
        yield {"id": f"i{n}", "name": f"item {n}", "resourceType": "app", "updatedAt": "x"}


@pytest.mark.parametrize(
    ("tty", "output", "ndjson", "expected"),
    [
        (False, None, True, "ndjson"),
        (False, None, False, "json"),
        (True, None, False, "table"),
        (False, "table", False, "table"),
        (False, "text", False, "text"),
    ],
)
def test_output_streams_before_the_last_record_is_fetched(
    tty: bool, output: str | None, ndjson: bool, expected: str
) -> None:
    pulled = [0]
    stdout = Watched(pulled, tty=tty)
    runtime = make_runtime(stdout=stdout, NO_COLOR="1", output=output)
    assert choose_format(runtime, ndjson=ndjson) == expected
    listing = items_listing()
    count = emit_listing(runtime, listing, LimitedItems(_source(500, pulled), None), ndjson=ndjson)
    assert count == 500
    # Something was written while at most about a page had been fetched.
    assert min(stdout.writes_at) <= MAX_PAGE_SIZE + 1
    assert max(stdout.writes_at) == 500
    text = stdout.getvalue()
    if expected == "ndjson":
        assert [json.loads(line)["id"] for line in text.splitlines()] == [
            f"i{n}" for n in range(500)
        ]
    elif expected == "json":
        assert [record["id"] for record in json.loads(text)] == [f"i{n}" for n in range(500)]
    elif expected == "text":
        lines = text.splitlines()
        assert len(lines) == 500
        assert lines[0].split("\t") == ["i0", "item 0", "app", "x"]
    else:
        lines = text.splitlines()
        assert lines[0].split() == ["NAME", "ID", "TYPE", "SPACE", "UPDATED"]
        assert len(lines) == 501
        assert lines[1].split() == ["item", "0", "i0", "app", "personal", "x"]


def test_a_query_collects_then_applies_to_the_whole_list() -> None:
    pulled = [0]
    stdout = Watched(pulled, tty=True)
    runtime = make_runtime(stdout=stdout, NO_COLOR="1", query="length(@)")
    assert choose_format(runtime, ndjson=False) == "json"
    emit_listing(runtime, items_listing(), LimitedItems(_source(250, pulled), None))
    assert json.loads(stdout.getvalue()) == 250


def test_the_cut_note_goes_to_stderr_after_the_data() -> None:
    pulled = [0]
    stdout = Watched(pulled)
    runtime = make_runtime(stdout=stdout, NO_COLOR="1")
    emit_listing(runtime, spaces_listing(), LimitedItems(_source(50, pulled), 5))
    assert len(json.loads(stdout.getvalue())) == 5
    assert isinstance(runtime.stderr, io.StringIO)
    assert runtime.stderr.getvalue() == (
        "note: showing the first 5 spaces; more exist (raise --limit, or drop it to list them all)\n"
    )


def test_ndjson_with_another_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--ndjson"):
        choose_format(make_runtime(stdout=io.StringIO(), NO_COLOR="1", output="yaml"), ndjson=True)


@pytest.mark.parametrize("output", ["table", "text", "yaml"])
def test_a_query_applies_to_every_format(output: str) -> None:
    """`apps ls --query "[?name=='item 3']" -o table` shows one row, not every record."""
    pulled = [0]
    stdout = Watched(pulled, tty=True)
    runtime = make_runtime(stdout=stdout, NO_COLOR="1", output=output, query="[?name=='item 3']")
    emit_listing(runtime, items_listing(), LimitedItems(_source(20, pulled), None))
    text = stdout.getvalue()
    assert "i3" in text
    assert "i4" not in text
    assert "item 1" not in text
