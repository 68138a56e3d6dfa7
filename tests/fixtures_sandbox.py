"""Sandbox tenant fixtures for every test: an HTTPS sandbox per test, its CA, and a CLI runner.

- ``sandbox_ca`` (session): a trustme CA and a server certificate for 127.0.0.1/localhost/::1.
- ``sandbox``: a fresh in-process sandbox over HTTPS (a ``qlikm2m.sandbox.Sandbox``, with ``url``,
  ``client_id``, ``client_secret``, ``api_key``, ``ca_bundle`` and the control API).
- ``make_sandbox(**config)``: the same with custom settings (``items=``, ``rate_limit_tier1=``,
  ``max_tokens_per_client=``, ``fail_apps=``, ``clock=``, ``tls=False``...); stopped after the test.
- ``cli_env``: os.environ plus QLIK_SERVER/QLIK_CLIENT_ID/QLIK_CLIENT_SECRET/QLIK_CA_BUNDLE.
- ``run_qlikm2m(*args, env=None, input=None, timeout=60)``: run ``python -m qlikm2m`` in a subprocess
  (only where the process boundary is what is tested; else ``run_cli`` from conftest.py).
- ``tenant``: a ``Tenant``, the sandbox seen from a plain HTTPS client the way any Qlik client
  would talk to it (the sandbox's own tests).
"""

from __future__ import annotations

import os
import secrets
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from qlikm2m.sandbox import Sandbox, SandboxConfig

# Tests should not wait for reloads: a reload is QUEUED for 50 ms, then RELOADING for 200 ms.
TEST_DEFAULTS: dict[str, Any] = {"reload_queue_time": 0.05, "reload_duration": 0.2}


@dataclass(frozen=True)
class SandboxCA:
    ca: trustme.CA
    ca_pem: Path  # the CA certificate: what QLIK_CA_BUNDLE / --ca-bundle point at
    cert_pem: Path  # the server's certificate chain
    key_pem: Path  # the server's private key
    server_context: ssl.SSLContext


@pytest.fixture(scope="session")
def sandbox_ca(tmp_path_factory: pytest.TempPathFactory) -> SandboxCA:
    folder = tmp_path_factory.mktemp("sandbox-ca")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca_pem, cert_pem, key_pem = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca.cert_pem.write_to_path(str(ca_pem))
    for index, blob in enumerate(cert.cert_chain_pems):
        blob.write_to_path(str(cert_pem), append=index > 0)
    cert.private_key_pem.write_to_path(str(key_pem))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return SandboxCA(ca, ca_pem, cert_pem, key_pem, context)


MakeSandbox = Callable[..., Sandbox]


@pytest.fixture
def make_sandbox(sandbox_ca: SandboxCA) -> Iterator[MakeSandbox]:
    started: list[Sandbox] = []

    def make(*, tls: bool = True, **config: Any) -> Sandbox:
        settings = {**TEST_DEFAULTS, "api_key": f"sbx-{secrets.token_urlsafe(24)}", **config}
        sandbox = Sandbox(
            SandboxConfig(**settings),
            ssl_context=sandbox_ca.server_context if tls else None,
            ca_bundle=str(sandbox_ca.ca_pem) if tls else None,
        )
        sandbox.start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox()


def sandbox_env(sandbox: Sandbox, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: os.environ) plus the QLIK_* settings that point at ``sandbox``."""
    env = dict(os.environ if base is None else base)
    env.update(
        QLIK_SERVER=sandbox.url,
        QLIK_CLIENT_ID=sandbox.client_id,
        QLIK_CLIENT_SECRET=sandbox.client_secret,
    )
    if sandbox.ca_bundle:
        env["QLIK_CA_BUNDLE"] = sandbox.ca_bundle
    else:
        env.pop("QLIK_CA_BUNDLE", None)
    return env


@pytest.fixture
def cli_env(sandbox: Sandbox, isolated_dirs: dict[str, Path]) -> dict[str, str]:
    return sandbox_env(sandbox)


# Seconds a sandbox's own test waits for one answer.
TIMEOUT = 10


class Tenant:
    """A sandbox seen from a plain HTTP client, the way any Qlik client would talk to it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.url = sandbox.url
        self.session = requests.Session()
        self.session.verify = sandbox.ca_bundle or True
        self.session.trust_env = False

    def credentials(self, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "client_id": self.sandbox.client_id,
            "client_secret": self.sandbox.client_secret,
            "grant_type": "client_credentials",
        }
        body.update(extra)
        return body

    def post_token(self, **kwargs: Any) -> requests.Response:
        return self.session.post(f"{self.url}/oauth/token", timeout=TIMEOUT, **kwargs)

    def token(self, **extra: Any) -> str:
        response = self.post_token(json=self.credentials(**extra))
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        target = path if path.startswith("http") else f"{self.url}{path}"
        return self.session.get(target, headers=headers, timeout=TIMEOUT, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.post(f"{self.url}{path}", headers=headers, timeout=TIMEOUT, **kwargs)

    def collect(
        self,
        path: str,
        token: str,
        params: dict[str, str] | None = None,
        *,
        field: str | None = None,
    ) -> list[Any]:
        """Every entry of a list (or only its `field`), following links.next.href as given."""
        entries: list[Any] = []
        response = self.get(path, token, params=params)
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            entries.extend(page["data"] if field is None else [e[field] for e in page["data"]])
            following = page["links"].get("next")
            if not following:
                return entries
            response = self.get(following["href"], token)


@pytest.fixture
def tenant(sandbox: Sandbox) -> Iterator[Tenant]:
    client = Tenant(sandbox)
    yield client
    client.session.close()


RunQlikm2m = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_qlikm2m(request: pytest.FixtureRequest) -> RunQlikm2m:
    def run(
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        # The sandbox is started only when a test relies on the default environment.
        chosen = env if env is not None else request.getfixturevalue("cli_env")
        return subprocess.run(
            [sys.executable, "-m", "qlikm2m", *args],
            env=chosen,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run
