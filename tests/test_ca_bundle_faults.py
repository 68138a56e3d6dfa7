"""A CA bundle from the environment that cannot be used is named, exit 3; doctor a FAIL line.

requests reads $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE from the process environment, so these
in-process runs set it there (monkeypatch) and give the CLI the same environment.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from qlikm2m import cli
from qlikm2m.errors import ExitCode
from qlikm2m.runtime import Runtime
from qlikm2m.sandbox import Sandbox


def _run(*args: str) -> tuple[int, str, str]:
    runtime = Runtime(
        env=dict(os.environ), stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO()
    )
    code = cli.main(list(args), runtime)
    return code, runtime.stdout.getvalue(), runtime.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture
def tenant_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.setenv("QLIK_SERVER", sandbox.url)
    monkeypatch.setenv("QLIK_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("QLIK_CLIENT_SECRET", sandbox.client_secret)
    monkeypatch.setenv("QLIK_CA_BUNDLE", sandbox.ca_bundle or "")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    return sandbox


def _bad_bundles(tmp_path: Path) -> dict[str, tuple[str, str]]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    return {
        "missing": (str(tmp_path / "nonexistent.pem"), "which does not exist"),
        "garbage": (str(garbage), "which could not be loaded as CA certificates"),
    }


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
@pytest.mark.parametrize("kind", ["missing", "garbage"])
def test_a_bad_environment_bundle_is_exit_3_naming_the_variable(
    tenant_env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, kind: str
) -> None:
    path, said = _bad_bundles(tmp_path)[kind]
    monkeypatch.setenv(variable, path)
    code, out, err = _run("tenant", "me")
    assert code == ExitCode.CONFIG, err
    assert err.startswith(f"error: ${variable} names {path}, {said}")
    assert "token cache" not in err
    assert out == ""
    assert tenant_env.count("POST /oauth/token") == 0


def test_doctor_shows_a_bad_environment_bundle_as_a_tls_failure(
    tenant_env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, _ = _bad_bundles(tmp_path)["missing"]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", path)
    code, out, err = _run("-o", "json", "doctor")
    assert code == ExitCode.CONFIG, err
    checks = {check["check"]: check for check in json.loads(out)["checks"]}
    assert checks["tls"]["status"] == "fail"
    assert "$REQUESTS_CA_BUNDLE" in checks["tls"]["detail"]
    assert [checks[name]["status"] for name in ("clock", "token", "users/me")] == ["skip"] * 3


def test_a_missing_ssl_cert_file_leaves_the_os_store_in_charge(
    tenant_env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # OpenSSL ignores an SSL_CERT_FILE that does not exist, and the trust store falls back to
    # the system's CA file; the tenant's private CA comes from QLIK_CA_BUNDLE either way.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nonexistent.pem"))
    code, out, err = _run("tenant", "me")
    assert code == ExitCode.OK, err
    assert json.loads(out)["id"]


def test_a_good_environment_bundle_still_works(
    tenant_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QLIK_CA_BUNDLE")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tenant_env.ca_bundle or "")
    code, _, err = _run("doctor")
    assert code == ExitCode.OK, err


def test_a_qlik_ca_bundle_that_is_not_pem_is_exit_3_naming_its_source(
    tenant_env: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path, _ = _bad_bundles(tmp_path)["garbage"]
    monkeypatch.setenv("QLIK_CA_BUNDLE", path)
    code, _, err = _run("tenant", "me")
    assert code == ExitCode.CONFIG, err
    assert "could not be loaded" in err
    code, out, err = _run("-o", "json", "doctor")
    assert code == ExitCode.CONFIG, err
    checks = {check["check"]: check for check in json.loads(out)["checks"]}
    assert checks["tls"]["status"] == "fail"
