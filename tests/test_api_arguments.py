"""`api -q` and `-H` arguments: what is let through can be sent; the rest is a usage error (exit 2)
before any request, never an "unexpected" exit 1 from the HTTP library."""

from __future__ import annotations

import pytest
import requests

from qlikm2m.commands.api import parse_headers, parse_params
from qlikm2m.errors import ExitCode, UsageError


def test_headers_are_name_and_trimmed_value() -> None:
    assert parse_headers(
        ["X-Trace: 1", "Accept:text/csv", "X-Empty:", "X-Latin: café\tau lait"]
    ) == {
        "X-Trace": "1",
        "Accept": "text/csv",
        "X-Empty": "",
        "X-Latin": "café\tau lait",
    }


@pytest.mark.parametrize(
    ("argument", "says"),
    [
        ("X-Trace 1", "is not 'Name: value'"),
        (": 1", "is not 'Name: value'"),
        ("X Trace: 1", "is not 'Name: value'"),
        ("X-€: 1", "is not 'Name: value'"),
        ("Ü: 1", "is not 'Name: value'"),
        ("X-A: one\r\nX-B: two", "spans lines"),
        ("authorization: Bearer x", "sets the Authorization header itself"),
        ("X-A: €", "cannot carry"),
        ("X-A: a\x00b", "cannot carry"),
        ("X-A: a\x7fb", "cannot carry"),
        ("X-A: \udcff", "cannot carry"),
    ],
)
def test_headers_http_cannot_send_are_usage_errors(argument: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as caught:
        parse_headers([argument])
    assert caught.value.exit_code == ExitCode.USAGE


def test_accepted_headers_go_through_the_http_library() -> None:
    headers = parse_headers(["X-Latin: café", "X-Symbols!#$%&'*+.^_`|~: ok"])
    prepared = requests.Request("GET", "https://tenant.example.com/", headers=headers).prepare()
    # What http.client does when it sends them: names ASCII, values Latin-1.
    for name, value in prepared.headers.items():
        name.encode("ascii")
        value.encode("latin-1")


def test_params_keep_order_repeats_and_equals_signs() -> None:
    assert parse_params(["limit=100", "name=a=b", "name=", "q=é"]) == [
        ("limit", "100"),
        ("name", "a=b"),
        ("name", ""),
        ("q", "é"),
    ]


@pytest.mark.parametrize(
    ("argument", "says"),
    [("limit", "is not key=value"), ("=1", "is not key=value"), ("a=\udcff", "not UTF-8")],
)
def test_bad_params_are_usage_errors(argument: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse_params([argument])
