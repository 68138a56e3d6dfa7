"""Lazy OS trust (qlikm2m/trust.py): the same roots, read from OpenSSL's hashed directory.

What must hold: a certificate from a CA outside the OS roots and the extra CA is still refused,
the extra CA (QLIK_CA_BUNDLE) is still trusted, the directory really is what OpenSSL verifies
against, and a CA file kept apart from the directory sends qlikm2m back to truststore.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme

from qlikm2m import trust
from qlikm2m.http import tls_context

_CA_VARIABLES = ("QLIK_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

needs_hashed_dir = pytest.mark.skipif(
    trust.hashed_os_directory() is None,
    reason="this system keeps no hashed OS certificate directory: truststore is used",
)


def _hashed_dir(folder: Path, ca_pem: Path) -> Path:
    """A c_rehash-style directory holding ``ca_pem`` under its subject hash."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to compute the subject hash")
    digest = subprocess.run(
        [openssl, "x509", "-hash", "-noout", "-in", str(ca_pem)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folder.mkdir()
    shutil.copyfile(ca_pem, folder / f"{digest}.0")
    return folder


@needs_hashed_dir
def test_the_context_is_the_lazy_one_and_reads_no_certificate_up_front() -> None:
    context = tls_context()
    assert type(context) is ssl.SSLContext
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    # Nothing parsed yet: OpenSSL looks certificates up in the directory during a handshake.
    assert context.cert_store_stats()["x509_ca"] == 0


@needs_hashed_dir
def test_a_server_of_a_ca_outside_the_os_roots_is_refused(
    run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    env = {k: v for k, v in cli_env.items() if k not in _CA_VARIABLES}
    result = run_qlikm2m("tenant", "me", env=env)
    assert result.returncode == 6, result.stderr
    assert "TLS verification of 127.0.0.1 failed" in result.stderr


@needs_hashed_dir
def test_a_wrong_extra_ca_is_refused_and_the_right_one_trusted(
    run_qlikm2m: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    wrong = run_qlikm2m("tenant", "me", env={**cli_env, "QLIK_CA_BUNDLE": str(other)})
    assert wrong.returncode == 6, wrong.stderr
    right = run_qlikm2m("tenant", "me", env=cli_env)
    assert right.returncode == 0, right.stderr


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="OpenSSL's paths are Unix's")
def test_the_hashed_directory_is_what_openssl_verifies_against(
    run_qlikm2m: Any, cli_env: dict[str, str], sandbox_ca: Any, tmp_path: Path
) -> None:
    # The sandbox's CA as the only "OS root", in a directory of its own: trusted with no extra CA.
    folder = _hashed_dir(tmp_path / "certs", sandbox_ca.ca_pem)
    env = {k: v for k, v in cli_env.items() if k not in _CA_VARIABLES}
    env["SSL_CERT_DIR"] = str(folder)
    env["SSL_CERT_FILE"] = str(folder / "absent.pem")
    result = run_qlikm2m("tenant", "me", env=env)
    assert result.returncode == 0, result.stderr
    # ...and without it there, refused: the directory decides.
    for entry in folder.iterdir():
        entry.unlink()
    (folder / "00000000.0").write_text("not a certificate\n")
    refused = run_qlikm2m("tenant", "me", env=env)
    assert refused.returncode == 6, refused.stderr


def test_a_ca_file_apart_from_the_directory_falls_back_to_truststore(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sandbox_ca: Any
) -> None:
    folder = _hashed_dir(tmp_path / "certs", sandbox_ca.ca_pem)
    elsewhere = tmp_path / "bundle.pem"
    shutil.copyfile(sandbox_ca.ca_pem, elsewhere)
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    monkeypatch.setenv("SSL_CERT_FILE", str(elsewhere))
    assert trust.hashed_os_directory() is None
    assert trust.lazy_os_trust_context() is None
    assert type(tls_context()) is not ssl.SSLContext  # truststore's


def test_a_directory_without_hashed_certificates_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "README").write_text("no certificates here\n")
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    if ssl.get_default_verify_paths().cafile is not None:
        monkeypatch.setenv("SSL_CERT_FILE", str(folder / "absent.pem"))
    assert trust.hashed_os_directory() is None
    assert os.path.isdir(folder)
