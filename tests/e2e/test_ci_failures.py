"""Failures a CI job meets, end to end: each a clear sentence and its documented exit code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from qlikm2m.sandbox import Sandbox

RETRY_QUICKLY = {"QLIKM2M_MAX_RETRIES": "2"}


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr
    # One `error:` line and at most one `hint:` line.
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: ")
    assert len(lines) <= 2


def test_forced_429_succeeds_after_the_wait(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    sandbox.force(
        status=429,
        headers={"retry-after": "1"},
        body={"errors": [{"code": "HTTP-429", "title": "API rate limit reached."}]},
        match="GET /api/v1/tenants/me",
        times=1,
    )
    result = run_qlikm2m("-v", "tenant", "me")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "sandbox"
    assert sandbox.count("GET /api/v1/tenants/me") == 2
    assert "< 429" in result.stderr
    assert "retrying in 1.0 s" in result.stderr


def test_repeated_html_502_is_exit_6_with_a_sentence(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    assert run_qlikm2m("user", "me").returncode == 0  # a cached token: only the API fails
    html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    sandbox.force(
        status=502, body=html, content_type="text/html", match="GET /api/v1/users/me", times=None
    )
    result = run_qlikm2m("user", "me", env={**cli_env, **RETRY_QUICKLY})
    assert result.returncode == 6
    _no_traceback(result.stderr)
    assert "GET /api/v1/users/me failed with HTTP 502 Bad Gateway" in result.stderr
    assert "HTML page (502 Bad Gateway)" in result.stderr
    assert "after 3 attempts" in result.stderr
    assert sandbox.count("GET /api/v1/users/me") == 4


def test_wrong_secret_is_exit_4(run_qlikm2m: Any, cli_env: dict[str, str]) -> None:
    wrong = "this-is-a-wrong-client-secret-42"
    result = run_qlikm2m("-v", "user", "me", env={**cli_env, "QLIK_CLIENT_SECRET": wrong})
    assert result.returncode == 4
    assert "refused to issue a token (HTTP 401)" in result.stderr
    assert "client id and secret" in result.stderr
    assert wrong not in result.stderr + result.stdout


_CA_VARIABLES = ("QLIK_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def test_untrusted_certificate_is_exit_6_with_a_ca_bundle_hint(
    run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    env = {k: v for k, v in cli_env.items() if k not in _CA_VARIABLES}
    result = run_qlikm2m("tenant", "me", env=env)
    assert result.returncode == 6
    _no_traceback(result.stderr)
    assert "TLS verification of 127.0.0.1 failed" in result.stderr
    assert "--ca-bundle" in result.stderr
    assert "QLIK_CA_BUNDLE" in result.stderr


def test_ca_bundle_flag_works_like_the_variable(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "QLIK_CA_BUNDLE"}
    result = run_qlikm2m("tenant", "me", "--ca-bundle", sandbox.ca_bundle or "", env=env)
    assert result.returncode == 0, result.stderr


def test_requests_ca_bundle_adds_a_ca(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    env = {k: v for k, v in cli_env.items() if k not in _CA_VARIABLES}
    env["REQUESTS_CA_BUNDLE"] = sandbox.ca_bundle or ""
    result = run_qlikm2m("tenant", "me", env=env)
    assert result.returncode == 0, result.stderr


def test_requests_ca_bundle_that_is_the_os_trust_file_still_trusts_it(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    # CI images point REQUESTS_CA_BUNDLE at OpenSSL's default file; qlikm2m then skips the
    # second parse and must still trust that file's CAs through the OS trust store.
    env = {k: v for k, v in cli_env.items() if k not in _CA_VARIABLES}
    env["SSL_CERT_FILE"] = env["REQUESTS_CA_BUNDLE"] = sandbox.ca_bundle or ""
    result = run_qlikm2m("tenant", "me", env=env)
    assert result.returncode == 0, result.stderr


def test_stalled_server_is_exit_6_within_the_read_timeout(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    assert run_qlikm2m("tenant", "me").returncode == 0
    sandbox.force(status=200, body={}, delay=120, match="GET /api/v1/tenants/me")
    env = {**cli_env, "QLIKM2M_READ_TIMEOUT": "1"}
    # The subprocess timeout is the bound: a hang would fail the test, not stall the suite.
    result = run_qlikm2m("tenant", "me", env=env, timeout=30)
    assert result.returncode == 6
    _no_traceback(result.stderr)
    assert "within the read timeout of 1 s" in result.stderr


def test_server_stalling_mid_body_is_exit_6(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    assert run_qlikm2m("tenant", "me").returncode == 0
    sandbox.force(
        status=200,
        body={"id": "x" * 500},
        stall_after=20,
        stall=120,
        match="GET /api/v1/tenants/me",
    )
    result = run_qlikm2m("tenant", "me", "--read-timeout", "1", timeout=30)
    assert result.returncode == 6
    _no_traceback(result.stderr)
    assert "read timeout" in result.stderr


def test_connection_refused_is_exit_6(run_qlikm2m: Any, cli_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**cli_env, "QLIK_SERVER": f"https://127.0.0.1:{port}", **RETRY_QUICKLY}
    result = run_qlikm2m("tenant", "me", env=env)
    assert result.returncode == 6
    _no_traceback(result.stderr)
    assert "connection refused" in result.stderr


def test_404_is_exit_5_with_qlik_words(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    result = run_qlikm2m("api", "v1/items/does-not-exist")
    assert result.returncode == 5
    _no_traceback(result.stderr)
    assert "GET /api/v1/items/does-not-exist failed with HTTP 404" in result.stderr


def test_invalid_json_body_is_a_clear_error(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    sandbox.force(
        status=200,
        body=b'{"id": "trunc',
        content_type="application/json",
        match="GET /api/v1/tenants/me",
    )
    result = run_qlikm2m("tenant", "me")
    assert result.returncode == 5
    _no_traceback(result.stderr)
    assert "not valid JSON" in result.stderr


def test_huge_error_body_is_not_loaded(sandbox: Sandbox, cli_env: dict[str, str]) -> None:
    sandbox.force(
        status=500,
        stream_bytes=400 * 1024 * 1024,
        content_type="text/html",
        match="GET /api/v1/tenants/me",
        times=None,
    )
    code = (
        "import sys\n"
        "from qlikm2m.launcher import main\n"
        "sys.argv = ['qlikm2m', 'tenant', 'me']\n"
        "rc = main()\n"
        # VmHWM is this process's own peak; ru_maxrss would carry the parent's over exec.
        "peak = next(int(line.split()[1]) for line in open('/proc/self/status')"
        " if line.startswith('VmHWM:'))\n"
        "sys.stderr.write(f'PEAK_KB {peak}\\n')\n"
        "sys.exit(rc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 6, result.stderr
    assert "HTTP 500" in result.stderr
    match = re.search(r"PEAK_KB (\d+)", result.stderr)
    assert match is not None
    assert int(match.group(1)) < 150 * 1024  # far below the 400 MB body


def test_huge_success_body_is_refused(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    sandbox.force(
        status=200,
        stream_bytes=300 * 1024 * 1024,
        content_type="application/json",
        match="GET /api/v1/tenants/me",
    )
    result = run_qlikm2m("tenant", "me")
    assert result.returncode == 5
    assert "larger than 64 MiB" in result.stderr


def test_invalid_query_is_exit_2_before_any_request(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    result = run_qlikm2m("tenant", "me", "--query", "data[?")
    assert result.returncode == 2
    assert "JMESPath" in result.stderr
    assert sandbox.counters().get("POST /oauth/token", 0) == 0


def test_https_to_a_plain_http_port_says_so_not_the_ca_hint(
    make_sandbox: Any, run_cli: Any, cli_env: dict[str, str]
) -> None:
    plain = make_sandbox(tls=False)
    host_port = plain.url.removeprefix("http://")
    env = {**cli_env, "QLIK_SERVER": host_port, "QLIK_CLIENT_ID": plain.client_id,
           "QLIK_CLIENT_SECRET": plain.client_secret}  # fmt: skip
    result = run_cli("tenant", "me", env=env)
    assert result.code == 6
    assert f"{host_port} answered in plain HTTP, not TLS" in result.err
    assert f"hint: Use http://{host_port}" in result.err
    assert "--ca-bundle" not in result.err
