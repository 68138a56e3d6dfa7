"""The HTTP layer against a real local server: retries, redirects, timeouts, TLS, error bodies."""

from __future__ import annotations

import io
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
import truststore
from hypothesis import given
from hypothesis import strategies as st

from qlikm2m import __version__
from qlikm2m.errors import ApiError, AuthError, ConfigError, NetworkError
from qlikm2m.http import (
    HttpOptions,
    Transport,
    _build_session,
    backoff_delay,
    error_for,
    is_os_trust_file,
    parse_error_body,
    parse_retry_after,
    raise_for_status,
    tls_context,
)
from qlikm2m.redaction import register_secret


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0
    chunks: int = 0  # stream the body this many times (for huge bodies)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Scripted:
    """A local server answering each path from a list of replies (the last one repeats)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                owner.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                replies = owner.routes.get(path) or [Reply(404, b'{"errors":[{"title":"nope"}]}')]
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                total = len(reply.body) * max(1, reply.chunks)
                self.send_header("Content-Length", str(total))
                self.end_headers()
                try:
                    for _ in range(max(1, reply.chunks)):
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def route(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Scripted]:
    scripted = Scripted()
    yield scripted
    scripted.close()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _transport(
    *,
    sleep: Callable[[float], None] | None = None,
    trace: io.StringIO | None = None,
    **options: Any,
) -> Transport:
    return Transport(
        HttpOptions(**{"connect_timeout": 2.0, "read_timeout": 5.0, **options}),
        trace=trace,
        sleep=sleep or Sleeps(),
        rand=lambda: 1.0,
    )


# --- error bodies ---


@pytest.mark.parametrize(
    ("body", "content_type", "title", "detail", "code"),
    [
        (
            b'{"errors":[{"code":"OAUTH-14","title":"Invalid client_id","detail":"OAuth client '
            b'is not authorized","status":"400"}],"traceId":"abc"}',
            "application/json",
            "Invalid client_id",
            "OAuth client is not authorized",
            "OAUTH-14",
        ),
        (
            b'{"errors":[{"code":"USERS-7","title":"Not found","status":404}]}',
            "application/json",
            "Not found",
            None,
            "USERS-7",
        ),
        (
            b'{"errors":[{"title":"Forbidden","detail":"no access"}],"meta":{"fault":false}}',
            "application/json",
            "Forbidden",
            "no access",
            None,
        ),
        (
            b'{"error":"invalid_client","error_description":"bad secret"}',
            "",
            "invalid_client",
            "bad secret",
            None,
        ),
        (b'{"message":"something broke"}', "application/json", None, "something broke", None),
        (b'{"errors": "not a list"', "application/json", None, '{"errors": "not a list"', None),
        (b"upstream connect error", "text/plain", None, "upstream connect error", None),
        (b"", "", None, None, None),
        # Undecodable bytes become U+FFFD and control characters are dropped: one clean line.
        (b"\xff\xfe\x00garbage", "application/octet-stream", None, "\ufffd\ufffdgarbage", None),
    ],
)
def test_parse_error_body_variants(
    body: bytes, content_type: str, title: str | None, detail: str | None, code: str | None
) -> None:
    info = parse_error_body(body, content_type)
    assert info.title == title
    assert info.detail == detail
    assert info.code == code


def test_parse_error_body_html_takes_the_title() -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"
    info = parse_error_body(html, "text/html")
    assert info.html
    assert info.title == "502 Bad Gateway"


def test_parse_retry_after() -> None:
    now = time.time()
    assert parse_retry_after("1", now=now) == 1.0
    assert parse_retry_after("  13 ", now=now) == 13.0
    assert parse_retry_after(None, now=now) is None
    assert parse_retry_after("soon", now=now) is None
    later = parse_retry_after(formatdate(now + 30, usegmt=True), now=now)
    assert later is not None
    assert 28 <= later <= 31
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff_delay(n, lambda: 1.0) for n in range(8)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(delays) == 8.0
    assert backoff_delay(2, lambda: 0.0) == 1.0  # jitter keeps at least half


# --- the transport ---


def test_user_agent_and_timeout_are_sent(server: Scripted) -> None:
    import requests

    server.route("/api/v1/x", Reply(200, b'{"ok": true}'))
    response = _transport().request("GET", server.url + "/api/v1/x")
    assert response.json() == {"ok": True}
    user_agent = server.seen[0].headers["User-Agent"]
    assert user_agent == f"qlikm2m/{__version__} python-requests/{requests.__version__}"


def test_429_honours_retry_after(server: Scripted) -> None:
    server.route(
        "/api/v1/x",
        Reply(429, b'{"errors":[{"code":"HTTP-429"}]}', {"retry-after": "1"}),
        Reply(200, b'{"ok": 1}'),
    )
    sleeps = Sleeps()
    response = _transport(sleep=sleeps).request("POST", server.url + "/api/v1/x", json_body={})
    assert response.status == 200
    assert sleeps.calls == [1.0]
    assert len(server.seen) == 2


def test_retry_after_beyond_the_budget_is_not_waited_for(server: Scripted) -> None:
    server.route("/api/v1/x", Reply(429, b"{}", {"retry-after": "500"}), Reply(200))
    sleeps = Sleeps()
    response = _transport(sleep=sleeps, max_retry_wait=10).request("GET", server.url + "/api/v1/x")
    assert response.status == 429
    assert sleeps.calls == []
    with pytest.raises(NetworkError) as caught:
        raise_for_status(response)
    assert "500" in (caught.value.hint or "")


def test_repeated_html_502_ends_in_a_network_error(server: Scripted) -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head></html>"
    server.route("/api/v1/x", Reply(502, html, {"Content-Type": "text/html"}))
    sleeps = Sleeps()
    response = _transport(sleep=sleeps, max_retries=3).request("GET", server.url + "/api/v1/x")
    assert len(server.seen) == 4
    assert sleeps.calls == [0.5, 1.0, 2.0]
    with pytest.raises(NetworkError) as caught:
        raise_for_status(response)
    message = caught.value.message
    assert "HTML page (502 Bad Gateway)" in message
    assert "after 4 attempts" in message
    assert "\n" not in message


def test_502_is_not_retried_for_post(server: Scripted) -> None:
    server.route("/api/v1/x", Reply(502, b""), Reply(200))
    response = _transport().request("POST", server.url + "/api/v1/x", json_body={"a": 1})
    assert response.status == 502
    assert len(server.seen) == 1


def test_total_wait_is_bounded(server: Scripted) -> None:
    server.route("/api/v1/x", Reply(503, b""))
    sleeps = Sleeps()
    _transport(sleep=sleeps, max_retries=10, max_retry_wait=3.0).request(
        "GET", server.url + "/api/v1/x"
    )
    assert sum(sleeps.calls) <= 3.0
    assert sleeps.calls == [0.5, 1.0]


def test_redirect_keeps_authorization_on_the_same_origin_only(server: Scripted) -> None:
    other = Scripted()
    try:
        server.route("/api/v1/users/me", Reply(301, b"", {"Location": "/api/v1/users/u1"}))
        server.route("/api/v1/users/u1", Reply(302, b"", {"Location": other.url + "/elsewhere"}))
        other.route("/elsewhere", Reply(200, b'{"id": "u1"}'))
        token = "bearer-token-value-1234567890"
        response = _transport().request("GET", server.url + "/api/v1/users/me", bearer=token)
        assert response.json() == {"id": "u1"}
        assert server.seen[0].headers["Authorization"] == f"Bearer {token}"
        assert server.seen[1].headers["Authorization"] == f"Bearer {token}"
        assert "Authorization" not in other.seen[0].headers
    finally:
        other.close()


def test_redirect_loop_is_a_network_error(server: Scripted) -> None:
    server.route("/a", Reply(302, b"", {"Location": "/b"}))
    server.route("/b", Reply(302, b"", {"Location": "/a"}))
    with pytest.raises(NetworkError, match="Too many redirects"):
        _transport().request("GET", server.url + "/a")


def test_303_after_post_becomes_get(server: Scripted) -> None:
    server.route("/api/v1/x", Reply(303, b"", {"Location": "/api/v1/y"}))
    server.route("/api/v1/y", Reply(200, b"[]"))
    _transport().request("POST", server.url + "/api/v1/x", json_body={"a": 1})
    assert [s.method for s in server.seen] == ["POST", "GET"]


def test_read_timeout_names_the_timeout(server: Scripted) -> None:
    server.route("/slow", Reply(200, b"{}", delay=1.5))
    with pytest.raises(NetworkError) as caught:
        _transport(read_timeout=0.3).request("GET", server.url + "/slow")
    assert "read timeout of 0.3 s" in caught.value.message
    assert len(server.seen) == 1  # a timeout is not retried: the bound stays the timeout


def test_connection_refused_is_retried_then_a_network_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    with pytest.raises(NetworkError) as caught:
        _transport(sleep=sleeps, max_retries=2).request(
            "POST", f"http://127.0.0.1:{port}/api/v1/x", json_body={}
        )
    assert "connection refused" in caught.value.message
    # Nothing was sent, so even a POST may be retried.
    assert len(sleeps.calls) == 2


def test_huge_bodies_are_bounded(server: Scripted) -> None:
    chunk = b"x" * (1024 * 1024)
    server.route("/big", Reply(500, chunk, {"Content-Type": "text/plain"}, chunks=200))
    response = _transport(max_retries=0).request("GET", server.url + "/big")
    error = error_for(response)
    assert isinstance(error, NetworkError)
    assert len(response.read_prefix()) <= 64 * 1024
    server.route("/big-ok", Reply(200, chunk, chunks=100))
    with pytest.raises(ApiError, match="larger than"):
        _transport().request("GET", server.url + "/big-ok").read()


def test_invalid_json_is_an_api_error(server: Scripted) -> None:
    server.route("/bad", Reply(200, b'{"data": [1, 2'))
    with pytest.raises(ApiError, match="not valid JSON"):
        _transport().request("GET", server.url + "/bad").json()


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, AuthError), (403, ApiError), (404, ApiError), (409, ApiError), (500, NetworkError)],
)
def test_status_mapping(server: Scripted, status: int, error_type: type[Exception]) -> None:
    body = json.dumps({"errors": [{"title": "Nope", "detail": "because", "status": status}]})
    server.route("/api/v1/x", Reply(status, body.encode()))
    response = _transport(max_retries=0).request("GET", server.url + "/api/v1/x")
    with pytest.raises(error_type) as caught:
        raise_for_status(response)
    assert f"GET /api/v1/x failed with HTTP {status}" in str(caught.value)
    assert "Nope: because" in str(caught.value)


def test_trace_redacts_the_token(server: Scripted) -> None:
    token = "trace-token-abcdefghijklmnop"
    register_secret(token)
    server.route(
        "/api/v1/x",
        Reply(200, b"{}", {"Content-Type": "application/json", "RateLimit-Remaining": "99"}),
    )
    trace = io.StringIO()
    _transport(trace=trace).request(
        "GET", server.url + "/api/v1/x", params={"token": token}, bearer=token
    )
    text = trace.getvalue()
    assert token not in text
    assert "Authorization" not in text  # headers only at -vv
    assert f"> GET {server.url}/api/v1/x" in text
    assert "< 200 OK" in text
    assert "ratelimit-remaining=99" in text


# --- TLS ---


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[Scripted]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    scripted = Scripted(tls=context)
    yield scripted
    scripted.close()


def test_untrusted_certificate_hints_at_ca_bundle(tls_server: Scripted) -> None:
    tls_server.route("/x", Reply(200))
    with pytest.raises(NetworkError) as caught:
        _transport().request("GET", tls_server.url + "/x")
    assert "TLS verification of 127.0.0.1 failed" in caught.value.message
    assert "--ca-bundle" in (caught.value.hint or "")
    assert "QLIK_CA_BUNDLE" in (caught.value.hint or "")


def test_ca_bundle_is_trusted_in_addition_to_the_system(
    tls_server: Scripted, ca: trustme.CA, tmp_path: Any
) -> None:
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    tls_server.route("/x", Reply(200, b'{"tls": true}'))
    transport = _transport(ca_bundle=str(pem))
    assert transport.request("GET", tls_server.url + "/x").json() == {"tls": True}
    # The connection is reused for the next request.
    assert transport.request("GET", tls_server.url + "/x").json() == {"tls": True}


def test_unreadable_ca_bundle_is_a_config_error(tmp_path: Any, tls_server: Scripted) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("not a certificate")
    with pytest.raises(ConfigError, match="could not be loaded"):
        _transport(ca_bundle=str(pem)).request("GET", tls_server.url + "/x")


@pytest.fixture
def os_trust_file(tmp_path: Any, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> str:
    """A CA file that plays OpenSSL's default CA file (the one the OS trust store loads)."""
    pem = tmp_path / "os-ca-certificates.crt"
    ca.cert_pem.write_to_path(str(pem))
    real = ssl.get_default_verify_paths()
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: real._replace(cafile=str(pem)))
    return str(pem)


def test_the_os_trust_file_is_not_parsed_a_second_time(
    os_trust_file: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = tmp_path / "link-to-os-file.pem"
    link.symlink_to(os_trust_file)
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    assert is_os_trust_file(os_trust_file)
    assert is_os_trust_file(str(link))
    assert not is_os_trust_file(str(other))
    assert not is_os_trust_file(str(tmp_path / "missing.pem"))
    # truststore loads the OS file at the handshake; tls_context must only add the others.
    loaded: list[str] = []
    original = truststore.SSLContext.load_verify_locations

    def spy(self: Any, cafile: Any = None, *args: Any, **kwargs: Any) -> Any:
        loaded.append(str(cafile))
        return original(self, cafile, *args, **kwargs)

    monkeypatch.setattr(truststore.SSLContext, "load_verify_locations", spy)
    tls_context(os_trust_file)
    tls_context(str(link))
    assert loaded == []
    tls_context(str(other))
    assert loaded == [str(other)]


def test_requests_ca_bundle_naming_the_os_trust_file_is_not_loaded_again(
    os_trust_file: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    loaded: list[str] = []
    original = truststore.SSLContext.load_verify_locations

    def spy(self: Any, cafile: Any = None, *args: Any, **kwargs: Any) -> Any:
        loaded.append(str(cafile))
        return original(self, cafile, *args, **kwargs)

    monkeypatch.setattr(truststore.SSLContext, "load_verify_locations", spy)
    adapter = _build_session(HttpOptions()).get_adapter("https://tenant.example")
    # What requests passes as ``verify`` when $REQUESTS_CA_BUNDLE is set: the file's path.
    same = SimpleNamespace()
    adapter.cert_verify(same, "https://tenant.example", os_trust_file, None)
    assert same.ca_certs is None
    assert loaded == []
    # Another bundle is loaded into our context once, not by urllib3 for every connection.
    for _ in range(2):
        added = SimpleNamespace()
        adapter.cert_verify(added, "https://tenant.example", str(other), None)
        assert added.ca_certs is None
    assert loaded == [str(other)]
    default = SimpleNamespace()
    adapter.cert_verify(default, "https://tenant.example", True, None)
    assert default.ca_certs is None  # never certifi's bundle: the OS store replaces it


def test_header_trace_masks_the_authorization(server: Scripted) -> None:
    token = "header-trace-token-abcdefghijklmnop"
    server.route("/api/v1/x", Reply(200, b"{}", {"Content-Type": "application/json"}))
    trace = io.StringIO()
    transport = Transport(HttpOptions(), trace=trace, trace_headers=True)
    transport.request("GET", server.url + "/api/v1/x", bearer=token)
    text = trace.getvalue()
    assert token not in text
    assert ">   Authorization: Bearer ***" in text
    assert "<   Content-Type: application/json" in text


@given(st.binary(max_size=2000), st.sampled_from(["", "application/json", "text/html"]))
def test_parse_error_body_never_raises(body: bytes, content_type: str) -> None:
    info = parse_error_body(body, content_type)
    assert "\n" not in info.text


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["errors", "title", "detail", "code", "status", "error", "message", "traceId"]
                ),
                children,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_parse_error_body_accepts_any_json_shape(document: Any) -> None:
    info = parse_error_body(json.dumps(document).encode(), "application/json")
    assert isinstance(info.text, str)


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises(value: str) -> None:
    seconds = parse_retry_after(value, now=time.time())
    assert seconds is None or seconds >= 0
