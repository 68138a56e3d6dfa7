"""Retries: a name that does not resolve is final at once; on a terminal each retry is a line.

The resolver failure is injected at the socket boundary (socket.getaddrinfo), so no test sends
a DNS query; everything above it (urllib3, requests, the transport, the CLI) is the real code.
"""

from __future__ import annotations

import io
import json
import os
import socket
from typing import Any

import pytest

from qlikm2m import cli
from qlikm2m.errors import ExitCode, NetworkError
from qlikm2m.http import HttpOptions, Transport
from qlikm2m.runtime import Runtime
from qlikm2m.sandbox import Sandbox

UNRESOLVABLE = "tenant.invalid"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name looked up; names under .invalid fail as a resolver says "no such name"."""
    seen: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(host))
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_name_that_does_not_resolve_is_not_retried(lookups: list[str]) -> None:
    sleeps: list[float] = []
    notices = io.StringIO()
    transport = Transport(
        HttpOptions(max_retries=4), sleep=sleeps.append, notices=notices, rand=lambda: 1.0
    )
    with pytest.raises(NetworkError) as caught:
        transport.request("GET", f"https://{UNRESOLVABLE}/api/v1/users/me")
    assert caught.value.message == (
        f"Could not reach {UNRESOLVABLE} for GET /api/v1/users/me: "
        "the host name could not be resolved."
    )
    assert sleeps == []
    assert lookups.count(UNRESOLVABLE) == 1
    assert notices.getvalue() == ""


def test_the_cli_fails_at_once_for_an_unresolvable_tenant(lookups: list[str]) -> None:
    env = {
        **os.environ,
        "QLIK_SERVER": f"https://{UNRESOLVABLE}",
        "QLIK_CLIENT_ID": "client-id-for-dns-test",
        "QLIK_CLIENT_SECRET": "client-secret-for-dns-test-0123456789",
    }
    stderr = _Terminal()
    runtime = Runtime(env=env, stdin=io.StringIO(), stdout=io.StringIO(), stderr=stderr)
    assert cli.main(["tenant", "me"], runtime) == ExitCode.NETWORK
    assert "the host name could not be resolved" in stderr.getvalue()
    assert "attempts" not in stderr.getvalue()
    assert "retrying" not in stderr.getvalue()
    assert lookups.count(UNRESOLVABLE) == 1


def test_each_retry_is_a_line_on_a_terminal() -> None:
    sleeps: list[float] = []
    notices = io.StringIO()
    transport = Transport(
        HttpOptions(max_retries=2), sleep=sleeps.append, notices=notices, rand=lambda: 1.0
    )
    with pytest.raises(NetworkError) as caught:
        transport.request("GET", f"http://127.0.0.1:{_refused_port()}/api/v1/x")
    assert notices.getvalue().splitlines() == [
        "retrying in 0.5 s after: connection refused (attempt 2 of 3)",
        "retrying in 1.0 s after: connection refused (attempt 3 of 3)",
    ]
    assert sleeps == [0.5, 1.0]
    assert "(after 3 attempts)" in caught.value.message


def test_retries_go_to_the_trace_with_verbose() -> None:
    trace = io.StringIO()
    notices = io.StringIO()
    transport = Transport(
        HttpOptions(max_retries=1), trace=trace, notices=notices, sleep=lambda s: None
    )
    with pytest.raises(NetworkError):
        transport.request("GET", f"http://127.0.0.1:{_refused_port()}/x")
    assert "! retrying in " in trace.getvalue()
    assert "after: connection refused (attempt 2 of 2)" in trace.getvalue()
    assert notices.getvalue() == ""  # said once, in the trace


def _cli(sandbox: Sandbox, stderr: io.StringIO, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "QLIK_SERVER": sandbox.url,
        "QLIK_CLIENT_ID": sandbox.client_id,
        "QLIK_CLIENT_SECRET": sandbox.client_secret,
        "QLIK_CA_BUNDLE": sandbox.ca_bundle or "",
    }
    stdout = io.StringIO()
    runtime = Runtime(env=env, stdin=io.StringIO(), stdout=stdout, stderr=stderr)
    return cli.main(list(args), runtime), stdout.getvalue()


@pytest.mark.parametrize(("terminal", "said"), [(True, 1), (False, 0)])
def test_the_cli_shows_retries_only_on_a_terminal(
    sandbox: Sandbox, terminal: bool, said: int
) -> None:
    sandbox.force(status=503, headers={"retry-after": "0"}, match="GET /api/v1/tenants/me", times=1)
    stderr = _Terminal() if terminal else io.StringIO()
    code, out = _cli(sandbox, stderr, "tenant", "me")
    assert code == ExitCode.OK, stderr.getvalue()
    assert json.loads(out)["name"] == "sandbox"
    lines = stderr.getvalue().splitlines()
    assert len(lines) == said
    if said:
        assert lines[0].startswith("retrying in 0.0 s after: HTTP 503")
        assert lines[0].endswith("(attempt 2 of 5)")
