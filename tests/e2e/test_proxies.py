"""Proxies end to end: a real pproxy on loopback (HTTP CONNECT, SOCKS5, SOCKS5h, SOCKS4) in
front of the sandbox over HTTPS, and NO_PROXY deciding alike for requests and `doctor`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qlikm2m.errors import ExitCode


@dataclass
class Proxy:
    port: int
    log: Path

    def url(self, scheme: str, host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}"

    def tunnels(self) -> list[str]:
        """pproxy's -v lines, one per tunnelled connection: "socks5 CLIENT -> TARGET"."""
        return [line for line in self.log.read_text().splitlines() if " -> " in line]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    """pproxy serving HTTP, SOCKS4 and SOCKS5 on one loopback port, logging each tunnel."""
    log = tmp_path / "pproxy.log"
    for _attempt in range(3):  # another process may take the free port before pproxy does
        port = _free_port()
        with log.open("w") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pproxy",
                    "-l",
                    f"http+socks4+socks5://127.0.0.1:{port}",
                    "-v",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        if process.poll() is None:
            break
    else:
        pytest.fail(f"pproxy did not start: {log.read_text()}")
    try:
        yield Proxy(port, log)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _through(cli_env: dict[str, str], **variables: str) -> dict[str, str]:
    # conftest keeps loopback off any proxy with NO_PROXY; these tests decide it themselves.
    env = {k: v for k, v in cli_env.items() if k.upper() not in ("NO_PROXY", "ALL_PROXY")}
    env.update(variables)
    return env


@pytest.mark.parametrize(
    ("variable", "scheme", "host"),
    [
        ("ALL_PROXY", "socks5", "127.0.0.1"),
        ("ALL_PROXY", "socks5h", "localhost"),
        ("all_proxy", "socks4", "127.0.0.1"),
        ("HTTPS_PROXY", "socks5", "127.0.0.1"),
        ("HTTPS_PROXY", "http", "127.0.0.1"),
    ],
)
def test_the_tenant_is_reached_through_the_proxy(
    sandbox: Any,
    cli_env: dict[str, str],
    run_qlikm2m: Any,
    proxy: Proxy,
    variable: str,
    scheme: str,
    host: str,
) -> None:
    env = _through(cli_env, **{variable: proxy.url(scheme, host)})
    done = run_qlikm2m("-v", "tenant", "me", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "sandbox"
    assert f"* through the proxy {proxy.url(scheme, host)}" in done.stderr
    target = f"-> 127.0.0.1:{sandbox.port}"
    # The token request and the API request both went through it (TLS inside the tunnel).
    assert len([line for line in proxy.tunnels() if target in line]) >= 1
    assert sandbox.count("POST /oauth/token") == 1


def test_doctor_goes_through_the_proxy_and_says_so(
    cli_env: dict[str, str], run_qlikm2m: Any, proxy: Proxy
) -> None:
    env = _through(cli_env, ALL_PROXY=proxy.url("socks5h"))
    done = run_qlikm2m("-o", "json", "doctor", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {check["check"]: check for check in json.loads(done.stdout)["checks"]}
    assert f"through the proxy {proxy.url('socks5h')}" in checks["proxy"]["detail"]
    assert checks["tls"]["status"] == "skip"
    assert [checks[name]["status"] for name in ("clock", "token", "users/me")] == ["ok"] * 3
    assert proxy.tunnels()


def test_a_proxy_that_is_down_is_named(cli_env: dict[str, str], run_qlikm2m: Any) -> None:
    dead = f"socks5://127.0.0.1:{_free_port()}"
    env = _through(cli_env, ALL_PROXY=dead, QLIKM2M_MAX_RETRY_WAIT="0")
    done = run_qlikm2m("tenant", "me", env=env)
    assert done.returncode == ExitCode.NETWORK, done.stderr
    assert f"through the proxy {dead}" in done.stderr
    assert "Missing dependencies" not in done.stderr


@pytest.mark.parametrize("no_proxy", ["127.0.0.0/8", "10.0.0.0/8,127.0.0.1", "*"])
def test_no_proxy_bypasses_for_requests_and_doctor_alike(
    sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any, proxy: Proxy, no_proxy: str
) -> None:
    env = _through(cli_env, HTTPS_PROXY=proxy.url("http"), NO_PROXY=no_proxy)
    done = run_qlikm2m("-o", "json", "doctor", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {check["check"]: check for check in json.loads(done.stdout)["checks"]}
    assert "bypassed by NO_PROXY" in checks["proxy"]["detail"]
    assert checks["tls"]["status"] == "ok"
    assert run_qlikm2m("tenant", "me", env=env).returncode == 0
    assert proxy.tunnels() == []  # neither doctor nor the command used the proxy
