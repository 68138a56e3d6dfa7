"""What the transport takes from the environment: proxies through proxy_for, the one decision
shared with doctor (NO_PROXY as requests, urllib and curl read it), and never ~/.netrc."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from qlikm2m import cli
from qlikm2m.http import HttpOptions, Transport, proxy_for
from qlikm2m.runtime import Runtime
from qlikm2m.sandbox import Sandbox

PROXY = "http://proxy.internal:3128"


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("127.0.0.0/8", "https://127.0.0.1:8443", True),
        ("127.0.0.0/8", "https://10.1.2.3", False),
        ("10.0.0.0/8, 192.168.0.0/16", "https://192.168.4.5", True),
        ("*", "https://tenant.eu.qlikcloud.com", True),
        ("qlikcloud.com", "https://tenant.eu.qlikcloud.com", True),
        (".qlikcloud.com", "https://tenant.eu.qlikcloud.com", True),
        ("qlikcloud.com", "https://tenant.example.com", False),
        ("tenant.example.com:8443", "https://tenant.example.com:8443", True),
        ("tenant.example.com:8443", "https://tenant.example.com", False),
        ("", "https://tenant.example.com", False),
    ],
)
def test_no_proxy_forms(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, bypassed: bool
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxy_for(url) == (None if bypassed else PROXY)


def test_scheme_variable_wins_over_all_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5h://127.0.0.1:1080")
    assert proxy_for("https://tenant.example.com") == "socks5h://127.0.0.1:1080"
    assert proxy_for("http://127.0.0.1:8080") == "socks5h://127.0.0.1:1080"
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    assert proxy_for("https://tenant.example.com") == PROXY
    assert proxy_for("http://127.0.0.1:8080") == "socks5h://127.0.0.1:1080"


def test_lower_case_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper:1")
    monkeypatch.setenv("https_proxy", "http://lower:2")
    assert proxy_for("https://tenant.example.com") == "http://lower:2"


def test_no_variables_is_direct() -> None:
    assert proxy_for("https://tenant.example.com") is None


def test_the_transport_asks_proxy_for_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://alice:pw-123@proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
    transport = Transport(HttpOptions())
    assert transport._proxies_for("https://127.0.0.1:9/a") == {}
    through = transport._proxies_for("https://tenant.example.com/api/v1/items")
    assert through == {"https": "http://alice:pw-123@proxy.internal:3128"} | {
        "http": "http://alice:pw-123@proxy.internal:3128"
    }


def test_the_proxy_is_traced_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://alice:pw-123@proxy.internal:3128")
    trace = io.StringIO()
    Transport(HttpOptions(), trace=trace)._proxies_for("https://tenant.example.com/")
    assert trace.getvalue() == "* through the proxy http://***@proxy.internal:3128\n"


def test_a_netrc_entry_for_the_tenant_does_not_replace_the_bearer_token(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests, reading the environment, turned a ~/.netrc entry into a Basic Authorization
    # header over ours: the token request failed (exit 4) and the netrc password was sent.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-password-123\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    env = {
        **os.environ,
        "QLIK_SERVER": sandbox.url,
        "QLIK_CLIENT_ID": sandbox.client_id,
        "QLIK_CLIENT_SECRET": sandbox.client_secret,
        "QLIK_CA_BUNDLE": sandbox.ca_bundle or "",
    }
    runtime = Runtime(env=env, stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO())
    assert cli.main(["tenant", "me"], runtime) == 0, runtime.stderr.getvalue()  # type: ignore[attr-defined]
    assert json.loads(runtime.stdout.getvalue())["id"]  # type: ignore[attr-defined]


def test_the_decision_reads_the_runs_environment_not_the_process() -> None:
    """doctor and the transport decide on the Runtime's environment (in-process runs, tests)."""
    env = {"HTTPS_PROXY": PROXY, "NO_PROXY": "127.0.0.0/8,.internal.example.com:8443"}
    assert proxy_for("https://tenant.example.com", env) == PROXY
    assert proxy_for("https://127.0.0.5:443", env) is None
    assert proxy_for("https://a.internal.example.com:8443", env) is None
    assert proxy_for("https://a.internal.example.com", env) == PROXY
    assert proxy_for("https://[::1]:443", {"HTTPS_PROXY": PROXY, "NO_PROXY": "::1"}) is None
    assert proxy_for("https://tenant.example.com", {}) is None
