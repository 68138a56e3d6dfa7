"""Hostile or broken servers, end to end: each a clear one-line message and its documented exit code.

The sandbox's forced responses stand in for proxies, load balancers and broken tenants. Cases
already covered in tests/e2e/test_ci_failures.py (HTML 502 retried, a stalled tenants/me, a huge
error body, invalid JSON on tenants/me, an untrusted certificate) are not repeated here; these
extend them to the token endpoint, pagination, downloads, redirects and certificates.
"""

from __future__ import annotations

import datetime
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import (
    CaptureServer,
    RunCli,
    assert_clear_error,
    assert_json_error,
    run_measured,
    warm_token_cache,
)

from qlikm2m.sandbox import Sandbox, SandboxConfig

TENANTS_ME = "GET /api/v1/tenants/me"
ITEMS = "GET /api/v1/items"
TOKEN = "POST /oauth/token"
HTML_PAGE = "<html><head><title>Sign in - Corporate Proxy</title></head><body>...</body></html>"
FEW_RETRIES = {"QLIKM2M_MAX_RETRIES": "1"}
MIB = 1024 * 1024
# A command that reads a 300 MB body whole would peak far above this; streaming stays near the
# interpreter's own ~35 MB, and refusing a JSON body holds at most its 64 MiB limit.
RSS_BOUND_MIB = 160

# A forced answer matches one path, so it never meets the token request of the same command:
# no token needs to be cached first.


# --- HTML, invalid and truncated bodies -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("items", "ls"), ITEMS),
        (("api", "v1/items", "--paginate"), ITEMS),
        (("api", "v1/items", "--ndjson"), ITEMS),
        (("apps", "get", "5f0c9a1e-3c2d-4b8e-9f1a-000000000000"), "GET /api/v1/apps/"),
    ],
)
def test_html_page_with_status_200_is_exit_5(
    sandbox: Sandbox, sandbox_cli: RunCli, args: tuple[str, ...], match: str
) -> None:
    sandbox.force(status=200, body=HTML_PAGE, content_type="text/html", match=match)
    result = sandbox_cli(*args)
    assert_clear_error(result, 5, "not valid JSON", "text/html")
    assert result.stdout == ""


def test_html_page_from_the_token_endpoint_is_a_clear_error(
    sandbox: Sandbox, sandbox_cli: RunCli
) -> None:
    sandbox.force(status=200, body=HTML_PAGE, content_type="text/html", match=TOKEN)
    result = sandbox_cli("tenant", "me")
    assert_clear_error(result, 5, "POST /oauth/token", "not valid JSON")
    assert sandbox.count(TENANTS_ME) == 0


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [(400, 5), (403, 5), (404, 5), (500, 6), (503, 6)],
)
def test_html_error_pages_name_the_status_and_the_proxy(
    sandbox: Sandbox, sandbox_cli: RunCli, cli_env: dict[str, str], status: int, exit_code: int
) -> None:
    sandbox.force(
        status=status, body=HTML_PAGE, content_type="text/html", match=TENANTS_ME, times=None
    )
    result = sandbox_cli(
        "tenant", "me", env={**cli_env, **FEW_RETRIES, "QLIKM2M_MAX_RETRY_WAIT": "2"}
    )
    line = assert_clear_error(result, exit_code, f"HTTP {status}", "HTML page")
    assert "Sign in - Corporate Proxy" in line
    assert "<html" not in result.stderr


def test_html_401_on_the_api_is_exit_4_after_one_fresh_token(
    sandbox: Sandbox, sandbox_cli: RunCli, cli_env: dict[str, str]
) -> None:
    warm_token_cache(cli_env)
    sandbox.force(
        status=401, body=HTML_PAGE, content_type="text/html", match=TENANTS_ME, times=None
    )
    result = sandbox_cli("tenant", "me")
    assert_clear_error(result, 4, "HTTP 401", "HTML page")
    # The cached token was dropped and one new token tried: no loop of re-mints.
    assert sandbox.count(TOKEN) == 2
    assert sandbox.count(TENANTS_ME) == 2


def test_html_error_from_the_token_endpoint_is_exit_4_without_markup(
    sandbox: Sandbox, sandbox_cli: RunCli
) -> None:
    sandbox.force(status=401, body=HTML_PAGE, content_type="text/html", match=TOKEN)
    result = sandbox_cli("user", "me")
    assert_clear_error(result, 4, "refused to issue a token (HTTP 401)")
    assert "<" not in result.stderr


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("tenant", "me"), TOKEN),
        (("api", "v1/items", "--paginate"), ITEMS),
        (("items", "ls"), ITEMS),
    ],
)
def test_invalid_json_elsewhere_is_exit_5(
    sandbox: Sandbox, sandbox_cli: RunCli, args: tuple[str, ...], match: str
) -> None:
    sandbox.force(
        status=200, body=b'{"data": [}, nonsense', content_type="application/json", match=match
    )
    result = sandbox_cli(*args)
    assert_clear_error(result, 5, "not valid JSON", "application/json")


def test_invalid_json_on_a_later_page_stops_with_exit_5(
    sandbox: Sandbox, sandbox_cli: RunCli
) -> None:
    first_page = {
        "data": [{"id": "a"}, {"id": "b"}],
        "links": {"next": {"href": f"{sandbox.url}/api/v1/items-page-2?next=x"}},
    }
    sandbox.force(status=200, body=first_page, match=ITEMS)
    sandbox.force(status=200, body=b'{"data": [{"id": ', content_type="application/json",
                  match="GET /api/v1/items-page-2")  # fmt: skip
    result = sandbox_cli("api", "v1/items", "--ndjson")
    assert_clear_error(result, 5, "not valid JSON")
    # What was streamed before the broken page is whole lines of the good one, nothing more.
    assert [json.loads(line) for line in result.stdout.splitlines()] == first_page["data"]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("tenant", "me"), TENANTS_ME),
        (("tenant", "me"), TOKEN),
        (("api", "v1/items", "--ndjson"), ITEMS),
        (("api", "v1/items", "--output-file", "{tmp}/out.bin"), ITEMS),
    ],
)
def test_body_shorter_than_its_content_length_is_exit_6(
    sandbox: Sandbox,
    sandbox_cli: RunCli,
    tmp_path: Path,
    args: tuple[str, ...],
    match: str,
) -> None:
    body = json.dumps({"data": [{"id": f"item-{n}", "name": "x" * 40} for n in range(20)]})
    # Content-Length announces the whole body; 100 bytes come, then the connection closes.
    sandbox.force(status=200, body=body, content_type="application/json", stall_after=100,
                  stall=0, match=match)  # fmt: skip
    result = sandbox_cli(*(arg.replace("{tmp}", str(tmp_path)) for arg in args))
    line = assert_clear_error(result, 6, "cut off", "after 100 bytes of the body")
    assert f"{len(body) - 100} bytes short" in line
    assert not (tmp_path / "out.bin").exists()
    assert not list(tmp_path.glob(".out.bin.*"))  # no partial download left behind


@pytest.mark.parametrize(
    "args", [("tenant", "me"), ("api", "v1/items", "--output-file", "{tmp}/out.bin")]
)
def test_chunked_body_cut_before_its_last_chunk_is_exit_6(
    sandbox: Sandbox, sandbox_cli: RunCli, tmp_path: Path, args: tuple[str, ...]
) -> None:
    body = json.dumps({"data": [{"id": f"item-{n}"} for n in range(50)]})
    sandbox.force(status=200, body=body, content_type="application/json", chunked=True,
                  stall_after=300, stall=0, match="GET /api/v1/")  # fmt: skip
    result = sandbox_cli(*(arg.replace("{tmp}", str(tmp_path)) for arg in args))
    assert_clear_error(result, 6, "cut off")
    assert not (tmp_path / "out.bin").exists()
    assert not list(tmp_path.glob(".out.bin.*"))


# --- wrong content types ------------------------------------------------------------------------


def test_json_sent_as_text_plain_is_still_read(sandbox: Sandbox, sandbox_cli: RunCli) -> None:
    sandbox.force(status=200, body='{"id": "t1", "name": "plain"}', content_type="text/plain",
                  match=TENANTS_ME)  # fmt: skip
    result = sandbox_cli("tenant", "me")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"id": "t1", "name": "plain"}


def test_html_labelled_as_json_is_exit_5(sandbox: Sandbox, sandbox_cli: RunCli) -> None:
    sandbox.force(status=200, body=HTML_PAGE, content_type="application/json", match=TENANTS_ME)
    assert_clear_error(sandbox_cli("tenant", "me"), 5, "not valid JSON", "application/json")


def test_binary_body_with_a_json_content_type_is_exit_5(
    sandbox: Sandbox, sandbox_cli: RunCli
) -> None:
    sandbox.force(status=200, body=bytes(range(256)) * 4, content_type="application/json",
                  match=ITEMS)  # fmt: skip
    assert_clear_error(sandbox_cli("items", "ls"), 5, "not valid JSON")


def test_token_answer_that_is_not_an_object_is_exit_4(
    sandbox: Sandbox, sandbox_cli: RunCli
) -> None:
    sandbox.force(status=200, body=["access_token", "x"], match=TOKEN)
    assert_clear_error(sandbox_cli("tenant", "me"), 4, "without an access_token")


def test_api_passthrough_prints_a_non_json_answer_as_it_came(
    sandbox: Sandbox, sandbox_cli: RunCli
) -> None:
    # `api` is a raw passthrough (like `gh api`): the body is the caller's to judge.
    sandbox.force(status=200, body=HTML_PAGE, content_type="text/html", match=ITEMS)
    result = sandbox_cli("api", "v1/items")
    assert result.returncode == 0, result.stderr
    assert result.stdout == HTML_PAGE


# --- bodies of hundreds of MB -------------------------------------------------------------------


def _measured_env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, **FEW_RETRIES}


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_300_mb_json_answer_is_refused_with_bounded_memory(
    sandbox: Sandbox,
    cli_env: dict[str, str],
    tmp_path: Path,
    chunked: bool,
    record_property: Any,
) -> None:
    sandbox.force(status=200, stream_bytes=300 * MIB, chunked=chunked,
                  content_type="application/json", match=TENANTS_ME)  # fmt: skip
    run = run_measured(["tenant", "me"], _measured_env(cli_env), tmp_path)
    record_property("peak_rss_mib", run.peak_rss_mib)
    assert_clear_error(run.as_completed(), 5, "larger than 64 MiB")
    assert run.peak_rss_mib < RSS_BOUND_MIB, run.peak_rss_mib


@pytest.mark.slow
def test_300_mb_page_in_a_listing_is_refused_with_bounded_memory(
    sandbox: Sandbox,
    cli_env: dict[str, str],
    tmp_path: Path,
    record_property: Any,
) -> None:
    sandbox.force(status=200, stream_bytes=300 * MIB, chunked=True,
                  content_type="application/json", match=ITEMS)  # fmt: skip
    run = run_measured(["api", "v1/items", "--ndjson"], _measured_env(cli_env), tmp_path)
    record_property("peak_rss_mib", run.peak_rss_mib)
    assert_clear_error(run.as_completed(), 5, "larger than 64 MiB")
    assert run.peak_rss_mib < RSS_BOUND_MIB, run.peak_rss_mib


@pytest.mark.slow
def test_300_mb_download_streams_to_the_file_with_bounded_memory(
    sandbox: Sandbox,
    cli_env: dict[str, str],
    tmp_path: Path,
    record_property: Any,
) -> None:
    size = 300 * MIB
    sandbox.force(status=200, stream_bytes=size, chunked=True,
                  content_type="application/octet-stream", match="GET /api/v1/apps/")  # fmt: skip
    target = tmp_path / "export.qvf"
    run = run_measured(
        ["api", "v1/apps/some-app/export", "--output-file", str(target)],
        _measured_env(cli_env),
        tmp_path,
    )
    record_property("peak_rss_mib", run.peak_rss_mib)
    assert run.returncode == 0, run.stderr
    assert target.stat().st_size == size
    assert f"wrote {size} bytes" in run.stderr
    assert run.peak_rss_mib < RSS_BOUND_MIB, run.peak_rss_mib
    target.unlink()


@pytest.mark.slow
def test_300_mb_text_answer_streams_to_stdout_with_bounded_memory(
    sandbox: Sandbox,
    cli_env: dict[str, str],
    tmp_path: Path,
    record_property: Any,
) -> None:
    size = 300 * MIB
    sandbox.force(status=200, stream_bytes=size, content_type="text/plain", match=ITEMS)
    run = run_measured(["api", "v1/items"], _measured_env(cli_env), tmp_path)
    record_property("peak_rss_mib", run.peak_rss_mib)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "measured.out").stat().st_size == size
    assert run.peak_rss_mib < RSS_BOUND_MIB, run.peak_rss_mib
    (tmp_path / "measured.out").unlink()


# --- redirects ----------------------------------------------------------------------------------


@pytest.fixture
def elsewhere() -> Iterator[CaptureServer]:
    """Another origin (127.0.0.2, plain HTTP): nothing secret may ever reach it."""
    server = CaptureServer(host="127.0.0.2")
    yield server
    server.close()


@pytest.fixture
def elsewhere_tls(sandbox_ca: Any) -> Iterator[CaptureServer]:
    """Another origin over trusted HTTPS: localhost on another port."""
    server = CaptureServer(host="localhost", ssl_context=sandbox_ca.server_context)
    yield server
    server.close()


def _assert_nothing_secret_arrived(
    server: CaptureServer, sandbox: Sandbox, token: str | None = None
) -> None:
    assert server.seen, "the redirect was not followed at all"
    for request in server.seen:
        assert "authorization" not in {name.lower() for name in request.headers}
        blob = json.dumps(request.headers).encode() + request.path.encode() + request.body
        assert sandbox.client_secret.encode() not in blob
        for value in sandbox.state.tokens:
            assert value.encode() not in blob
        if token:
            assert token.encode() not in blob


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_api_redirect_to_another_host_does_not_carry_the_token(
    sandbox: Sandbox,
    sandbox_cli: RunCli,
    elsewhere_tls: CaptureServer,
    cli_env: dict[str, str],
    status: int,
) -> None:
    token = warm_token_cache(cli_env)
    sandbox.force(
        status=status, location=f"{elsewhere_tls.url}/api/v1/tenants/t1", match=TENANTS_ME
    )
    result = sandbox_cli("-v", "tenant", "me")
    assert result.returncode == 0, result.stderr
    assert "Authorization not sent" in result.stderr
    _assert_nothing_secret_arrived(elsewhere_tls, sandbox, token)


def test_redirect_to_plain_http_on_another_host_does_not_carry_the_token(
    sandbox: Sandbox, sandbox_cli: RunCli, elsewhere: CaptureServer, cli_env: dict[str, str]
) -> None:
    token = warm_token_cache(cli_env)
    sandbox.force(location=f"{elsewhere.url}/api/v1/users/u1", match="GET /api/v1/users/me")
    result = sandbox_cli("user", "me")
    assert result.returncode == 0, result.stderr
    _assert_nothing_secret_arrived(elsewhere, sandbox, token)


@pytest.mark.parametrize("status", [307, 308])
def test_token_request_redirected_to_another_host_keeps_the_secret_home(
    sandbox: Sandbox, sandbox_cli: RunCli, elsewhere: CaptureServer, status: int
) -> None:
    # 307/308 re-send the body: for the token request, that body holds the client secret.
    sandbox.force(status=status, location=f"{elsewhere.url}/oauth/token", match=TOKEN)
    result = sandbox_cli("user", "me")
    assert_clear_error(result, 5, f"redirected (HTTP {status})", "another origin", elsewhere.url)
    assert elsewhere.seen == []  # refused before anything was sent there
    assert sandbox.count("GET /api/v1/users/me") == 0


def test_token_request_redirect_on_the_same_origin_is_followed(
    sandbox: Sandbox, sandbox_cli: RunCli
) -> None:
    sandbox.force(status=307, location="/oauth/token", match=TOKEN)
    result = sandbox_cli("user", "me")
    assert result.returncode == 0, result.stderr
    assert sandbox.count(TOKEN) == 2


@pytest.mark.parametrize(
    ("match", "location", "args"),
    [
        (TENANTS_ME, "/api/v1/tenants/me", ("tenant", "me")),
        ("GET /api/v1/users/me", "/api/v1/users/me", ("user", "me")),
        (TOKEN, "/oauth/token", ("tenant", "me")),
        (ITEMS, "/api/v1/items", ("items", "ls")),
    ],
)
def test_redirect_loops_end_in_exit_6(
    sandbox: Sandbox, sandbox_cli: RunCli, match: str, location: str, args: tuple[str, ...]
) -> None:
    sandbox.force(status=307, location=location, match=match, times=None)
    result = sandbox_cli(*args)
    assert_clear_error(result, 6, "Too many redirects")
    # The first request and ten redirects, then it gives up (a loop is not retried).
    assert sandbox.count(match) == 11


def test_redirect_loop_as_a_json_error(sandbox: Sandbox, sandbox_cli: RunCli) -> None:
    sandbox.force(status=302, location="/api/v1/tenants/me", match=TENANTS_ME, times=None)
    error = assert_json_error(sandbox_cli("-o", "json", "tenant", "me"), 6)
    assert error["kind"] == "network"
    assert "Too many redirects" in error["message"]


# --- servers that stall -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("tenant", "me"), TOKEN),  # mid-body of the token answer
        (("api", "v1/items", "--ndjson"), ITEMS),
        (("api", "v1/items", "--output-file", "{tmp}/out.bin"), ITEMS),
    ],
)
def test_stall_mid_body_is_exit_6_within_the_read_timeout(
    sandbox: Sandbox,
    sandbox_cli: RunCli,
    cli_env: dict[str, str],
    tmp_path: Path,
    args: tuple[str, ...],
    match: str,
) -> None:
    # Under the 64 KiB a token answer may have; more than one read of the body for the others.
    sandbox.force(status=200, stream_bytes=30_000, content_type="application/json",
                  stall_after=9_000, stall=300, match=match)  # fmt: skip
    # The 1 s read timeout ends the run, not the 300 s stall: a run that waited for the stall
    # would meet pytest's own timeout (no wall-clock bound of our own that load can break).
    result = sandbox_cli(
        *(arg.replace("{tmp}", str(tmp_path)) for arg in args),
        env={**cli_env, "QLIKM2M_READ_TIMEOUT": "1"},
    )
    assert_clear_error(result, 6, "read timeout")
    assert not (tmp_path / "out.bin").exists()


def test_server_that_drops_the_connection_is_exit_6(
    sandbox: Sandbox, sandbox_cli: RunCli, cli_env: dict[str, str]
) -> None:
    sandbox.force(drop=True, match=TENANTS_ME, times=None)
    result = sandbox_cli("tenant", "me", env={**cli_env, **FEW_RETRIES})
    assert_clear_error(result, 6, "Could not reach 127.0.0.1", "(after 2 attempts)")
    assert sandbox.count(TENANTS_ME) == 2  # an idempotent GET is retried once, then given up


# --- TLS ---------------------------------------------------------------------------------------


def _sandbox_with_cert(sandbox_ca: Any, *identities: str, **validity: Any) -> Sandbox:
    leaf = sandbox_ca.ca.issue_cert(*identities, **validity)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return Sandbox(SandboxConfig(), ssl_context=context, ca_bundle=str(sandbox_ca.ca_pem)).start()


@pytest.fixture
def tls_env(cli_env: dict[str, str], sandbox_ca: Any) -> dict[str, str]:
    return {**cli_env, "QLIK_CA_BUNDLE": str(sandbox_ca.ca_pem), **FEW_RETRIES}


def _pointed_at(env: dict[str, str], server: Sandbox, host: str = "127.0.0.1") -> dict[str, str]:
    return {
        **env,
        "QLIK_SERVER": f"https://{host}:{server.port}",
        "QLIK_CLIENT_ID": server.client_id,
        "QLIK_CLIENT_SECRET": server.client_secret,
    }


@pytest.mark.parametrize(
    ("host", "words"),
    [("127.0.0.1", "IP address mismatch"), ("localhost", "Hostname mismatch")],
)
def test_certificate_for_another_host_is_exit_6(
    sandbox_ca: Any, tls_env: dict[str, str], sandbox_cli: RunCli, host: str, words: str
) -> None:
    # Signed by the trusted CA, but issued for another name.
    server = _sandbox_with_cert(sandbox_ca, "tenant.example.com")
    try:
        result = sandbox_cli("tenant", "me", env=_pointed_at(tls_env, server, host))
        line = assert_clear_error(result, 6, f"TLS verification of {host} failed", words)
        assert f"not valid for '{host}'" in line  # the name it was checked against
        assert server.count(TOKEN) == 0  # the secret never left: the handshake failed first
    finally:
        server.stop()


def test_expired_certificate_is_exit_6(
    sandbox_ca: Any, tls_env: dict[str, str], sandbox_cli: RunCli
) -> None:
    server = _sandbox_with_cert(
        sandbox_ca,
        "127.0.0.1",
        not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC),
    )
    try:
        result = sandbox_cli("tenant", "me", env=_pointed_at(tls_env, server))
        assert_clear_error(result, 6, "TLS verification of 127.0.0.1 failed", "expired")
        assert server.count(TOKEN) == 0
    finally:
        server.stop()


def test_untrusted_certificate_for_the_token_command_as_json(
    sandbox: Sandbox, sandbox_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = {key: value for key, value in cli_env.items() if key != "QLIK_CA_BUNDLE"}
    error = assert_json_error(sandbox_cli("-o", "json", "auth", "token", env=env), 6)
    assert "TLS verification of 127.0.0.1 failed" in error["message"]
    assert "--ca-bundle" in error["hint"]
    assert sandbox.count(TOKEN) == 0


def test_https_to_a_plain_http_server_is_exit_6(
    make_sandbox: Any, cli_env: dict[str, str], sandbox_cli: RunCli
) -> None:
    plain = make_sandbox(tls=False)
    env = _pointed_at({**cli_env, **FEW_RETRIES}, plain)
    result = sandbox_cli("tenant", "me", env=env)
    assert_clear_error(result, 6, "127.0.0.1")
    assert plain.count(TOKEN) == 0
