"""`qlikm2m sandbox serve` as a user or a CI script runs it: a subprocess over real HTTPS."""

from __future__ import annotations

import ast
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fixtures_sandbox import SandboxCA

PACKAGE = Path(__file__).resolve().parents[2] / "qlikm2m"


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _exports(process: subprocess.Popen[str], count: int) -> dict[str, str]:
    assert process.stdout is not None
    lines = [process.stdout.readline().rstrip("\n") for _ in range(count)]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def served(sandbox_ca: SandboxCA) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    process = _start(
        [
            sys.executable, "-m", "qlikm2m", "sandbox", "serve", "--port", "0",
            "--tls-cert", str(sandbox_ca.cert_pem), "--tls-key", str(sandbox_ca.key_pem),
            "--tls-ca", str(sandbox_ca.ca_pem), "--items", "30",
        ]
    )  # fmt: skip
    try:
        yield process, _exports(process, 4)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_serve_prints_exports_then_answers_over_https(
    served: tuple[subprocess.Popen[str], dict[str, str]], sandbox_ca: SandboxCA
) -> None:
    process, exports = served
    assert list(exports) == [
        "QLIK_SERVER",
        "QLIK_CLIENT_ID",
        "QLIK_CLIENT_SECRET",
        "QLIK_CA_BUNDLE",
    ]
    assert exports["QLIK_SERVER"].startswith("https://127.0.0.1:")
    assert Path(exports["QLIK_CA_BUNDLE"]) == sandbox_ca.ca_pem
    session = requests.Session()
    # Otherwise $REQUESTS_CA_BUNDLE, when set, silently replaces session.verify.
    session.trust_env = False
    session.verify = exports["QLIK_CA_BUNDLE"]
    server = exports["QLIK_SERVER"]

    minted = session.post(
        f"{server}/oauth/token",
        json={
            "client_id": exports["QLIK_CLIENT_ID"],
            "client_secret": exports["QLIK_CLIENT_SECRET"],
            "grant_type": "client_credentials",
        },
        timeout=10,
    )
    assert minted.status_code == 200
    token = minted.json()["access_token"]
    tenant_me = session.get(
        f"{server}/api/v1/tenants/me",
        headers={"Authorization": f"Bearer {token}"},
        allow_redirects=False,
        timeout=10,
    )
    assert tenant_me.status_code == 302
    refused = session.post(
        f"{server}/oauth/token",
        json={
            "client_id": exports["QLIK_CLIENT_ID"],
            "client_secret": "not-the-secret",
            "grant_type": "client_credentials",
        },
        timeout=10,
    )
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["code"] == "OAUTH-5"
    assert len(refused.json()["traceId"]) == 32

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "sandbox stopped" in stderr
    assert "Traceback" not in stderr


def test_ctrl_c_stops_it_cleanly_too(
    served: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, _ = served

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=10)

    assert process.returncode == 0
    assert "Traceback" not in stderr


def test_python_dash_m_sandbox_over_plain_http_with_given_credentials() -> None:
    env = {**os.environ, "QLIKM2M_SANDBOX_CLIENT_SECRET": "from-the-environment"}
    process = _start(
        [sys.executable, "-m", "qlikm2m.sandbox", "--port", "0", "--client-id", "ci-demo"], env
    )
    try:
        exports = _exports(process, 3)
        assert exports["QLIK_SERVER"].startswith("http://127.0.0.1:")
        assert exports["QLIK_CLIENT_ID"] == "ci-demo"
        assert exports["QLIK_CLIENT_SECRET"] == "from-the-environment"
        minted = requests.post(
            f"{exports['QLIK_SERVER']}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("ci-demo", "from-the-environment"),
            timeout=10,
        )
        assert minted.status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "--allow-remote"),
        (["--host", "192.0.2.1"], "not a loopback address"),
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--items", "-1"], "items must be 0 or more"),
        (["--port", "70000"], "out of range"),
        (["--nonsense"], "unrecognized arguments"),
    ],
)
def test_bad_options_are_a_one_line_error_and_exit_2(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qlikm2m", "sandbox", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_help_lists_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qlikm2m", "sandbox", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0
    for option in (
        "--tls-ca",
        "--fail-app",
        "--exceed-limit-app",
        "--rate-limit-tier2",
        "--max-tokens-per-client",
    ):
        assert option in result.stdout


def _imported_names(tree: ast.AST, package: str) -> list[str]:
    """Absolute names of what ``tree`` imports; relative imports resolved against ``package``."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            base = importlib.util.resolve_name(module, package) if node.level else module
            names += [base] if node.module else [f"{base}.{a.name}" for a in node.names]
    return names


def test_the_sandbox_imports_nothing_from_the_client_and_only_the_standard_library() -> None:
    offenders = []
    for source in sorted((PACKAGE / "sandbox").rglob("*.py")):
        package = ".".join(source.relative_to(PACKAGE.parent).parent.parts)
        for name in _imported_names(ast.parse(source.read_text()), package):
            top = name.split(".")[0]
            inside = name == "qlikm2m.sandbox" or name.startswith("qlikm2m.sandbox.")
            if (top == "qlikm2m" and not inside) or (
                top not in ("qlikm2m", "__future__") and top not in sys.stdlib_module_names
            ):
                offenders.append(f"{source.name}: {name}")

    assert offenders == []


def test_the_import_check_sees_relative_imports_out_of_the_sandbox() -> None:
    # The check once read `from ..http import x` as the standard library's http.
    tree = ast.parse("from ..http import x\nfrom .. import tokens\nfrom .state import y")
    assert _imported_names(tree, "qlikm2m.sandbox") == [
        "qlikm2m.http",
        "qlikm2m.tokens",
        "qlikm2m.sandbox.state",
    ]


def test_starting_the_sandbox_loads_no_other_qlikm2m_module() -> None:
    probe = (
        "import sys, qlikm2m.sandbox.cli; "
        "print(sorted(m for m in sys.modules if m.startswith('qlikm2m') "
        "and not m.startswith('qlikm2m.sandbox')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    )

    assert result.stdout.strip() == "['qlikm2m']"
