"""The HTTP layer against the sandbox's forced responses: retries, redirects, timeouts, TLS, error bodies."""

from __future__ import annotations

import io
import json
import ssl
import time
from collections.abc import Callable
from email.utils import formatdate
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
import truststore
from fixtures_sandbox import Tenant
from harness import CaptureServer, FakeClock
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
from qlikm2m.sandbox import Sandbox


@pytest.fixture
def server(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A plain-HTTP sandbox on loopback: its forced responses play every server these need."""
    return make_sandbox(tls=False)


@pytest.fixture
def clock() -> FakeClock:
    """The transport's sleeps, recorded instead of waited for."""
    return FakeClock()


def _transport(
    *,
    sleep: Callable[[float], None] | None = None,
    trace: io.StringIO | None = None,
    **options: Any,
) -> Transport:
    return Transport(
        HttpOptions(**{"connect_timeout": 2.0, "read_timeout": 5.0, **options}),
        trace=trace,
        sleep=sleep or FakeClock().sleep,
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


def test_user_agent_is_sent() -> None:
    import requests

    # The sandbox does not keep requests' headers; the harness's recording server does.
    recorder = CaptureServer(host="127.0.0.1")
    try:
        response = _transport().request("GET", recorder.url + "/api/v1/x")
        assert response.json()["id"] == "captured"
        user_agent = recorder.seen[0].headers["User-Agent"]
    finally:
        recorder.close()
    assert user_agent == f"qlikm2m/{__version__} python-requests/{requests.__version__}"


def test_429_honours_retry_after(server: Sandbox, clock: FakeClock) -> None:
    server.force(status=429, body={"errors": [{"code": "HTTP-429"}]},
                 headers={"retry-after": "1"}, match="POST /api/v1/x")  # fmt: skip
    server.force(body={"ok": 1}, match="POST /api/v1/x")
    response = _transport(sleep=clock.sleep).request("POST", server.url + "/api/v1/x", json_body={})
    assert response.status == 200
    assert clock.sleeps == [1.0]
    assert server.count("POST /api/v1/x") == 2


def test_retry_after_beyond_the_budget_is_not_waited_for(server: Sandbox, clock: FakeClock) -> None:
    server.force(status=429, body={}, headers={"retry-after": "500"}, match="GET /api/v1/x")
    response = _transport(sleep=clock.sleep, max_retry_wait=10).request(
        "GET", server.url + "/api/v1/x"
    )
    assert response.status == 429
    assert clock.sleeps == []
    with pytest.raises(NetworkError) as caught:
        raise_for_status(response)
    assert "500" in (caught.value.hint or "")


def test_repeated_html_502_ends_in_a_network_error(server: Sandbox, clock: FakeClock) -> None:
    html = "<html><head><title>502 Bad Gateway</title></head></html>"
    server.force(status=502, body=html, content_type="text/html", match="GET /api/v1/x",
                 times=None)  # fmt: skip
    response = _transport(sleep=clock.sleep, max_retries=3).request("GET", server.url + "/api/v1/x")
    assert server.count("GET /api/v1/x") == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    with pytest.raises(NetworkError) as caught:
        raise_for_status(response)
    message = caught.value.message
    assert "HTML page (502 Bad Gateway)" in message
    assert "after 4 attempts" in message
    assert "\n" not in message


def test_502_is_not_retried_for_post(server: Sandbox) -> None:
    server.force(status=502, match="POST /api/v1/x")
    server.force(status=200, match="POST /api/v1/x")
    response = _transport().request("POST", server.url + "/api/v1/x", json_body={"a": 1})
    assert response.status == 502
    assert server.count("POST /api/v1/x") == 1


def test_total_wait_is_bounded(server: Sandbox, clock: FakeClock) -> None:
    server.force(status=503, match="GET /api/v1/x", times=None)
    _transport(sleep=clock.sleep, max_retries=10, max_retry_wait=3.0).request(
        "GET", server.url + "/api/v1/x"
    )
    assert sum(clock.sleeps) <= 3.0
    assert clock.sleeps == [0.5, 1.0]


def test_redirect_keeps_authorization_on_the_same_origin_only(server: Sandbox) -> None:
    token = Tenant(server).token()
    elsewhere = CaptureServer(host="127.0.0.2")
    try:
        # Two same-origin hops end at an endpoint that needs the token: a 200 proves it went
        # along; the last hop to another origin must arrive without it.
        server.force(status=301, location="/api/v1/users/me", match="GET /api/v1/x")
        response = _transport().request("GET", server.url + "/api/v1/x", bearer=token)
        assert response.status == 200, response.read_prefix()
        assert response.json()["subject"].startswith("qlikbot")
        server.force(status=302, location=elsewhere.url + "/elsewhere", match="GET /api/v1/y")
        moved = _transport().request("GET", server.url + "/api/v1/y", bearer=token)
        assert moved.json()["id"] == "captured"
        [arrived] = elsewhere.seen
    finally:
        elsewhere.close()
    assert "authorization" not in {name.lower() for name in arrived.headers}


def test_redirect_loop_is_a_network_error(server: Sandbox) -> None:
    server.force(status=302, location="/b", match="GET /a", times=None)
    server.force(status=302, location="/a", match="GET /b", times=None)
    with pytest.raises(NetworkError, match="Too many redirects"):
        _transport().request("GET", server.url + "/a")


def test_303_after_post_becomes_get(server: Sandbox) -> None:
    server.force(status=303, location="/api/v1/y", match="POST /api/v1/x")
    server.force(body=[], match="GET /api/v1/y")
    _transport().request("POST", server.url + "/api/v1/x", json_body={"a": 1})
    assert (server.count("POST /api/v1/x"), server.count("GET /api/v1/y")) == (1, 1)


def test_read_timeout_names_the_timeout(server: Sandbox) -> None:
    server.force(body={}, delay=1.5, match="GET /slow")
    with pytest.raises(NetworkError) as caught:
        _transport(read_timeout=0.3).request("GET", server.url + "/slow")
    assert "read timeout of 0.3 s" in caught.value.message
    assert server.count("GET /slow") == 1  # a timeout is not retried: the bound stays the timeout


def test_connection_refused_is_retried_then_a_network_error(clock: FakeClock) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NetworkError) as caught:
        _transport(sleep=clock.sleep, max_retries=2).request(
            "POST", f"http://127.0.0.1:{port}/api/v1/x", json_body={}
        )
    assert "connection refused" in caught.value.message
    # Nothing was sent, so even a POST may be retried.
    assert len(clock.sleeps) == 2


def test_huge_bodies_are_bounded(server: Sandbox) -> None:
    server.force(status=500, stream_bytes=200 * 1024 * 1024, content_type="text/plain",
                 match="GET /big")  # fmt: skip
    response = _transport(max_retries=0).request("GET", server.url + "/big")
    error = error_for(response)
    assert isinstance(error, NetworkError)
    assert len(response.read_prefix()) <= 64 * 1024
    server.force(status=200, stream_bytes=100 * 1024 * 1024, content_type="application/json",
                 match="GET /big-ok")  # fmt: skip
    with pytest.raises(ApiError, match="larger than"):
        _transport().request("GET", server.url + "/big-ok").read()


def test_invalid_json_is_an_api_error(server: Sandbox) -> None:
    server.force(body=b'{"data": [1, 2', content_type="application/json", match="GET /bad")
    with pytest.raises(ApiError, match="not valid JSON"):
        _transport().request("GET", server.url + "/bad").json()


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, AuthError), (403, ApiError), (404, ApiError), (409, ApiError), (500, NetworkError)],
)
def test_status_mapping(server: Sandbox, status: int, error_type: type[Exception]) -> None:
    body = {"errors": [{"title": "Nope", "detail": "because", "status": status}]}
    server.force(status=status, body=body, match="GET /api/v1/x")
    response = _transport(max_retries=0).request("GET", server.url + "/api/v1/x")
    with pytest.raises(error_type) as caught:
        raise_for_status(response)
    assert f"GET /api/v1/x failed with HTTP {status}" in str(caught.value)
    assert "Nope: because" in str(caught.value)


def test_trace_redacts_the_token(server: Sandbox) -> None:
    token = "trace-token-abcdefghijklmnop"
    register_secret(token)
    server.force(body={}, headers={"RateLimit-Remaining": "99"}, match="GET /api/v1/x")
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


def test_untrusted_certificate_hints_at_ca_bundle(sandbox: Sandbox) -> None:
    # The sandbox's certificate comes from the suite's own CA, which the OS store lacks.
    with pytest.raises(NetworkError) as caught:
        _transport().request("GET", sandbox.url + "/x")
    assert "TLS verification of 127.0.0.1 failed" in caught.value.message
    assert "--ca-bundle" in (caught.value.hint or "")
    assert "QLIK_CA_BUNDLE" in (caught.value.hint or "")


def test_ca_bundle_is_trusted_in_addition_to_the_system(sandbox: Sandbox) -> None:
    sandbox.force(body={"tls": True}, match="GET /x", times=2)
    transport = _transport(ca_bundle=sandbox.ca_bundle)
    assert transport.request("GET", sandbox.url + "/x").json() == {"tls": True}
    # The connection is reused for the next request.
    assert transport.request("GET", sandbox.url + "/x").json() == {"tls": True}
    assert sandbox.state.stats.connections == 1


def test_unreadable_ca_bundle_is_a_config_error(tmp_path: Any, sandbox: Sandbox) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("not a certificate")
    with pytest.raises(ConfigError, match="could not be loaded"):
        _transport(ca_bundle=str(pem)).request("GET", sandbox.url + "/x")


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


def test_header_trace_masks_the_authorization(server: Sandbox) -> None:
    token = "header-trace-token-abcdefghijklmnop"
    server.force(body={}, match="GET /api/v1/x")
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
