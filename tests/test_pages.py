"""The per-page path of a listing (issue 14, target 2): the work it no longer repeats on every
page, and the behaviour it keeps (cookies, connection reuse, bodies cut short, URL credentials)."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import requests.adapters
import requests.cookies
import requests.models
import requests.sessions
import urllib3
import urllib3.connection
import urllib3.response
from harness import CaptureServer, make_runtime

from qlikm2m.client import QlikClient, client_from_runtime
from qlikm2m.errors import ApiError, NetworkError
from qlikm2m.http import HttpOptions, Transport
from qlikm2m.sandbox import Sandbox

ITEMS = "GET /api/v1/items"
PAGES = 5


@pytest.fixture
def client(cli_env: dict[str, str]) -> Iterator[QlikClient]:
    with client_from_runtime(make_runtime(cli_env)) as built:
        built.get_json("v1/users/me")  # the token minted, the connection open: pages only below
        yield built


def _pages(client: QlikClient, count: int = PAGES) -> list[Any]:
    """``count`` pages of the sandbox's items, two to a page."""
    pages = client.iter_pages("v1/items", {"limit": "2"})
    return [next(pages) for _ in range(count)]


def _counting(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, keep: Callable[..., bool] | None = None
) -> list[int]:
    """Replace ``owner.name`` with a wrapper that counts its calls (those ``keep`` accepts)."""
    original = getattr(owner, name)
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        if keep is None or keep(*args, **kwargs):
            calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_pages_are_sent_through_the_adapter_not_session_send(
    client: QlikClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Session.send's per-call work (cookie extraction, hooks, the redirect look-ahead) is not
    # paid per page: the session's mounted adapter sends each prepared request.
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Session.send was called")

    monkeypatch.setattr(requests.Session, "send", refused)
    sent = _counting(monkeypatch, requests.adapters.HTTPAdapter, "send")
    assert all(page["data"] for page in _pages(client))
    assert len(sent) == PAGES


def test_cookielib_runs_for_no_page_without_a_cookie(
    client: QlikClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    jar = client.transport.session.cookies
    into_jar = []
    for module in (requests.cookies, requests.sessions):
        into_jar.append(
            _counting(monkeypatch, module, "extract_cookies_to_jar", lambda j, *_: j is jar)
        )
    cookie_headers = _counting(monkeypatch, requests.models, "get_cookie_header")
    _pages(client)
    assert (sum(map(len, into_jar)), len(cookie_headers)) == (0, 0)


def test_a_cookie_the_tenant_sets_is_kept_and_sent_back(server_and_capture: Any) -> None:
    server, capture = server_and_capture
    transport = Transport(HttpOptions(connect_timeout=2.0, read_timeout=5.0))
    server.force(body={"data": []}, headers=[("Set-Cookie", "lb=abc; Path=/")], match="GET /x")
    transport.request("GET", server.url + "/x").read()
    assert transport.session.cookies.get("lb") == "abc"
    transport.request("GET", capture.url + "/y").read()  # the same host: the cookie goes along
    assert capture.seen[-1].headers.get("Cookie") == "lb=abc"
    transport.close()


def test_credentials_in_the_url_still_become_basic_auth(server_and_capture: Any) -> None:
    _, capture = server_and_capture
    transport = Transport(HttpOptions(connect_timeout=2.0, read_timeout=5.0))
    host = capture.url.removeprefix("http://")
    transport.request("GET", f"http://user:pa%40ss@{host}/z").read()
    transport.request("GET", f"http://{host}/z?at=a@b").read()
    first, second = capture.seen[-2:]
    assert first.headers.get("Authorization") == "Basic dXNlcjpwYUBzcw=="  # user:pa@ss
    assert "Authorization" not in second.headers
    transport.close()


@pytest.fixture
def server_and_capture(make_sandbox: Callable[..., Sandbox]) -> Iterator[tuple[Sandbox, Any]]:
    """A plain-HTTP sandbox and a recording server, both on 127.0.0.1 (cookies ignore ports)."""
    capture = CaptureServer(host="127.0.0.1")
    try:
        yield make_sandbox(tls=False), capture
    finally:
        capture.close()


def test_a_page_body_is_read_in_one_read_on_one_connection(
    client: QlikClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _counting(monkeypatch, urllib3.response.HTTPResponse, "read")
    chunks = _counting(monkeypatch, requests.models.Response, "iter_content")
    connects = _counting(monkeypatch, urllib3.connection.HTTPSConnection, "connect")
    _pages(client)
    # One read of Content-Length bytes a page, not through requests' chunk generator, and the
    # connection went back to the pool each time: no new connection.
    assert (len(reads), len(chunks), len(connects)) == (PAGES, 0, 0)


def test_a_page_cut_short_is_a_network_error(client: QlikClient, sandbox: Sandbox) -> None:
    sandbox.force(body={"data": [{"id": "a" * 500}]}, stall_after=100, stall=0, match=ITEMS)
    with pytest.raises(NetworkError, match="cut off"):
        _pages(client, 1)
    assert _pages(client, 2)[1]["data"]  # and the next request works on a new connection


def test_certifi_is_not_looked_at_on_every_request(
    client: QlikClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    certifi = requests.adapters.DEFAULT_CA_BUNDLE_PATH
    looked = [
        _counting(monkeypatch, os.path, name, lambda path, *_: path == certifi)
        for name in ("exists", "isdir")
    ]
    _pages(client)
    assert sum(map(len, looked)) == 0


class _Writes(io.StringIO):
    """stdout that records each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_api_paginate_ndjson_writes_each_page_in_one_piece(cli_env: dict[str, str]) -> None:
    from qlikm2m.commands.api_run import _paginated
    from qlikm2m.output import Output

    stdout = _Writes()
    runtime = make_runtime(cli_env, stdout=stdout)
    with client_from_runtime(runtime) as built:
        _paginated(
            runtime,
            built,
            Output(runtime),
            "v1/items",
            [("limit", "7")],
            ndjson=True,
            include=False,
        )
    lines = stdout.getvalue().splitlines()
    assert len(lines) == len({json.loads(line)["id"] for line in lines}) > 7
    # One write a page of 7 items (the last one may be shorter), not one a line.
    assert [text.count("\n") for text in stdout.writes[:-1]] == [7] * (len(stdout.writes) - 1)
    assert stdout.writes[-1].count("\n") == len(lines) - 7 * (len(stdout.writes) - 1)


def _one_answer(answer: bytes) -> tuple[str, threading.Thread]:
    """A loopback server that reads one request and sends ``answer`` (raw HTTP) back."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener, listener.accept()[0] as connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096)
            connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", thread


def test_a_chunked_body_is_bounded_whatever_length_it_declares() -> None:
    # A Content-Length beside chunked framing does not bound the body: the limit still does.
    chunk = b"x" * 5000
    url, thread = _one_answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk)
    )
    transport = Transport(HttpOptions(connect_timeout=2.0, read_timeout=5.0))
    response = transport.request("GET", url + "/c")
    with pytest.raises(ApiError, match="larger than"):
        response.read(limit=1000)
    transport.close()
    thread.join(5)


def test_the_pool_of_the_tenant_is_found_once_not_per_page(
    client: QlikClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = _counting(monkeypatch, urllib3.PoolManager, "connection_from_host")
    _pages(client)
    assert len(lookups) == 0  # the pool of the first request (the fixture's) serves every page


def test_each_origin_keeps_its_own_pool_past_the_pool_managers_four(sandbox_ca: Any) -> None:
    # Six origins that differ by port only, round robin: every request reaches its own server,
    # whatever pools urllib3 keeps (4 here) or drops.
    servers = [
        CaptureServer(host="127.0.0.1", ssl_context=sandbox_ca.server_context) for _ in "123456"
    ]
    transport = Transport(
        HttpOptions(connect_timeout=2.0, read_timeout=5.0, ca_bundle=str(sandbox_ca.ca_pem))
    )
    try:
        for _ in range(3):
            for server in servers:
                assert transport.request("GET", server.url + "/p").json()["id"] == "captured"
        assert [len(server.seen) for server in servers] == [3] * 6
    finally:
        transport.close()
        for server in servers:
            server.close()


def test_a_pool_urllib3_dropped_and_closed_is_not_used_again(client: QlikClient) -> None:
    adapter = client.transport.session.get_adapter(client.settings.server_url)
    pool = adapter.get_connection_with_tls_context(
        requests.Request("GET", client.settings.server_url + "/api/v1/items").prepare(), True
    )
    # What urllib3 1.x does to a pool it drops (a fifth origin, or clear()): forgotten and closed.
    adapter.poolmanager.clear()
    pool.close()
    assert _pages(client, 2)[1]["data"]
