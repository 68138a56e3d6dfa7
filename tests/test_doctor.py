"""`qlikm2m doctor` against the sandbox: each failure found, named, fixed, exit-coded.

The real entry point, in-process: no check depends on the process boundary (tests/e2e runs the
command in processes; tests/test_diagnostics.py calls the checks directly).
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from pathlib import Path
from typing import Any

from harness import RunCli

from qlikm2m.sandbox import Sandbox


def _checks(stdout: str) -> dict[str, dict[str, Any]]:
    return {check["check"]: check for check in json.loads(stdout)["checks"]}


def test_healthy_setup_passes_every_network_and_credential_check(
    sandbox_cli: RunCli, sandbox: Sandbox
) -> None:
    done = sandbox_cli("-o", "json", "doctor")
    assert done.returncode == 0, done.stderr
    checks = _checks(done.stdout)
    for name in ("settings", "dns", "tcp", "tls", "clock", "token", "users/me", "proxy"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["users/me"]["detail"] == (
        f"authenticated as Sandbox M2M client (qlikbot\\{sandbox.client_id})"
    )
    # The keyring is unusable in tests, but environment credentials do not need it.
    assert checks["keyring"]["status"] == "warn"
    assert json.loads(done.stdout)["ok"] is True


def test_wrong_secret_fails_the_token_check_with_exit_4(
    sandbox_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "QLIK_CLIENT_SECRET": "not-the-secret-at-all"}
    done = sandbox_cli("-o", "json", "doctor", env=env)
    assert done.returncode == 4
    checks = _checks(done.stdout)
    assert checks["token"]["status"] == "fail"
    assert checks["token"]["fix"]
    assert "not-the-secret-at-all" not in done.stdout + done.stderr


def test_untrusted_certificate_fails_tls_and_skips_the_rest(
    sandbox_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = dict(cli_env)
    del env["QLIK_CA_BUNDLE"]
    done = sandbox_cli("-o", "json", "doctor", env=env)
    assert done.returncode == 6
    checks = _checks(done.stdout)
    assert checks["tls"]["status"] == "fail"
    assert "--ca-bundle" in checks["tls"]["fix"]
    assert checks["token"]["status"] == "skip"
    assert checks["users/me"]["status"] == "skip"


def test_missing_settings_fail_with_exit_3_and_skip_the_network(
    sandbox_cli: RunCli,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLIK_")}
    done = sandbox_cli("-o", "json", "doctor", env=env)
    assert done.returncode == 3
    checks = _checks(done.stdout)
    assert checks["settings"]["status"] == "fail"
    assert {checks[name]["status"] for name in ("dns", "tcp", "tls", "token")} == {"skip"}


def test_a_readable_file_in_the_cache_is_a_failure_with_the_chmod_fix(
    sandbox_cli: RunCli, isolated_dirs: dict[str, Path]
) -> None:
    cache = isolated_dirs["cache"]
    cache.mkdir(mode=0o700)
    (cache / "stray.json").write_text("{}")
    os.chmod(cache / "stray.json", 0o644)
    done = sandbox_cli("-o", "json", "doctor")
    assert done.returncode == 3
    check = _checks(done.stdout)["cache dir"]
    assert check["status"] == "fail"
    assert "stray.json is 0o644" in check["detail"]
    assert check["fix"] == f"chmod -R go-rwx {cache}"


def test_a_cache_folder_others_can_list_is_a_warning(
    sandbox_cli: RunCli, isolated_dirs: dict[str, Path]
) -> None:
    # What a CI job gets when it creates QLIKM2M_CACHE_DIR itself with mkdir: commands work in
    # it (every file is 0600), so doctor must not fail the job for it.
    cache = isolated_dirs["cache"]
    cache.mkdir(mode=0o755)
    os.chmod(cache, 0o755)  # noqa: S103  (the point of the test)
    assert sandbox_cli("tenant", "me").returncode == 0
    done = sandbox_cli("-o", "json", "doctor")
    assert done.returncode == 0, done.stdout
    check = _checks(done.stdout)["cache dir"]
    assert check["status"] == "warn"
    assert "0o755" in check["detail"]
    assert check["fix"] == f"chmod -R go-rwx {cache}"


def test_clock_skew_against_the_server_date_is_reported(
    sandbox_cli: RunCli, sandbox: Sandbox
) -> None:
    an_hour_ago = email.utils.formatdate(time.time() - 3600, usegmt=True)
    sandbox.force(
        match="GET /.well-known/oauth-authorization-server",
        status=200,
        headers={"Date": an_hour_ago},
        body={},
    )
    done = sandbox_cli("-o", "json", "doctor")
    check = _checks(done.stdout)["clock"]
    assert check["status"] == "fail", check
    assert "ahead of the server" in check["detail"]
    assert done.returncode == 3


def test_text_report_has_one_line_per_check_and_hides_proxy_passwords(
    sandbox_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = {
        **cli_env,
        "HTTPS_PROXY": "http://alice:proxy-password-123@127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = sandbox_cli("doctor", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("ok") and "users/me" in line for line in lines)
    proxy_line = next(line for line in lines if " proxy " in f" {line} ")
    assert "proxy-password-123" not in done.stdout
    assert "bypassed by NO_PROXY" in proxy_line
