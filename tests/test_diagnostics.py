"""The doctor's checks in-process: order, the first failure as the cause, skips, each check's verdict.

tests/test_doctor.py runs the command itself; these call qlikm2m.diagnostics directly, against the
sandbox where a check needs a tenant.
"""

from __future__ import annotations

import email.utils
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import keyring.backend
import pytest
from harness import LockedKeyring, make_runtime

from qlikm2m.diagnostics import (
    Check,
    Report,
    check_clock,
    check_keyring,
    check_permissions,
    check_proxies,
    run_checks,
)
from qlikm2m.errors import ExitCode
from qlikm2m.sandbox import Sandbox
from qlikm2m.settings import resolve_settings

ORDER = [
    "keyring", "config dir", "cache dir", "settings", "proxy",
    "dns", "tcp", "tls", "clock", "token", "users/me",
]  # fmt: skip


def _statuses(report: Report) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def test_the_first_failure_is_the_cause_and_its_exit_code_the_reports() -> None:
    report = Report(
        [
            Check("a", "ok", ""),
            Check("b", "warn", ""),
            Check("c", "fail", "", exit_code=ExitCode.NETWORK),
            Check("d", "fail", "", exit_code=ExitCode.AUTH),
        ]
    )
    assert not report.ok
    assert report.exit_code == ExitCode.NETWORK
    assert Report([Check("a", "warn", "")]).exit_code == ExitCode.OK


def test_a_check_as_json_leaves_out_what_it_does_not_have() -> None:
    assert Check("dns", "ok", "fine").as_dict() == {
        "check": "dns",
        "status": "ok",
        "detail": "fine",
    }
    full = Check("tls", "fail", "no", "fix it", 12.345).as_dict()
    assert full == {
        "check": "tls", "status": "fail", "detail": "no", "fix": "fix it", "elapsedMs": 12.3
    }  # fmt: skip


def test_a_healthy_setup_runs_every_check_in_order(cli_env: dict[str, str]) -> None:
    report = run_checks(make_runtime(cli_env), {})
    assert [check.name for check in report.checks] == ORDER
    statuses = _statuses(report)
    assert statuses.pop("keyring") == "warn"  # unusable here, and not needed by env credentials
    assert set(statuses.values()) == {"ok"}, report.as_dict()
    assert report.exit_code == ExitCode.OK


def test_missing_settings_skip_every_network_check() -> None:
    report = run_checks(make_runtime(), {})
    statuses = _statuses(report)
    assert statuses["settings"] == "fail"
    assert {statuses[name] for name in ORDER[5:]} == {"skip"}
    assert report.exit_code == ExitCode.CONFIG


def test_a_refused_connection_fails_tcp_and_skips_what_needs_it(cli_env: dict[str, str]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        env = {**cli_env, "QLIK_SERVER": f"https://127.0.0.1:{port}"}
        report = run_checks(make_runtime(env), {})
    statuses = _statuses(report)
    assert statuses["dns"] == "ok"
    assert statuses["tcp"] == "fail"
    assert {statuses[name] for name in ORDER[7:]} == {"skip"}
    assert report.exit_code == ExitCode.NETWORK


def test_plain_http_on_loopback_skips_tls_and_checks_the_rest(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    plain = make_sandbox(tls=False)
    env = {
        "QLIK_SERVER": plain.url,
        "QLIK_CLIENT_ID": plain.client_id,
        "QLIK_CLIENT_SECRET": plain.client_secret,
    }
    report = run_checks(make_runtime(env), {})
    statuses = _statuses(report)
    assert statuses["tls"] == "skip"
    assert statuses["token"] == statuses["users/me"] == "ok"


def test_a_wrong_secret_fails_the_token_check_and_never_shows_it(cli_env: dict[str, str]) -> None:
    report = run_checks(make_runtime({**cli_env, "QLIK_CLIENT_SECRET": "wrong-secret-987654"}), {})
    statuses = _statuses(report)
    assert statuses["token"] == "fail"
    assert "users/me" not in statuses  # nothing to ask it with
    assert report.exit_code == ExitCode.AUTH
    assert "wrong-secret-987654" not in repr(report.as_dict())


@pytest.mark.parametrize(
    ("offset", "status"),
    [(0, "ok"), (-120, "warn"), (-3600, "fail"), (3600, "fail")],
)
def test_clock_skew_against_the_server_date(
    sandbox: Sandbox, cli_env: dict[str, str], offset: float, status: str
) -> None:
    # Margins of 30 s and more on each side of a threshold: no load makes a run take that long.
    date = email.utils.formatdate(time.time() + offset, usegmt=True)
    sandbox.force(
        match="GET /.well-known/oauth-authorization-server", headers={"Date": date}, body={}
    )
    runtime = make_runtime(cli_env)
    check = check_clock(resolve_settings(runtime), runtime)
    assert check.status == status, check
    if status != "ok":
        assert "NTP" in (check.fix or "")
        assert ("ahead of" if offset < 0 else "behind") in check.detail


# --- local checks -------------------------------------------------------------------------------


def test_a_folder_not_created_yet_is_fine(tmp_path: Path) -> None:
    check = check_permissions("cache dir", tmp_path / "missing")
    assert (check.status, check.detail) == ("ok", f"{tmp_path / 'missing'} (not created yet)")


def test_readable_files_fail_with_the_fix_and_lock_files_do_not_count(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    for n in range(5):
        (folder / f"token-{n}.json").write_text("{}")
        os.chmod(folder / f"token-{n}.json", 0o644)
    (folder / "token.lock").write_text("")
    os.chmod(folder / "token.lock", 0o666)  # noqa: S103  (the point of the test)
    check = check_permissions("cache dir", folder)
    assert check.status == "fail"
    assert check.exit_code == ExitCode.CONFIG
    assert check.detail.count("expected 0o600") == 3
    assert check.detail.endswith("(+2 more)")
    assert "lock" not in check.detail
    assert check.fix == f"chmod -R go-rwx {folder}"


def test_a_private_folder_is_ok_and_a_listable_one_a_warning(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir(mode=0o700)
    (folder / "contexts.toml").write_text("")
    os.chmod(folder / "contexts.toml", 0o600)
    assert check_permissions("config dir", folder).status == "ok"
    os.chmod(folder, 0o755)  # noqa: S103  (the point of the test)
    assert check_permissions("config dir", folder).status == "warn"


def test_proxy_passwords_are_never_shown() -> None:
    check = check_proxies(
        {"HTTPS_PROXY": "http://alice:pa55word-proxy@proxy.example.com:3128"},
        "https://tenant.example.com",
    )
    assert "pa55word-proxy" not in check.detail
    assert "alice" not in check.detail
    assert "***@proxy.example.com:3128" in check.detail
    assert "reached through the proxy http://***@proxy.example.com:3128" in check.detail


def test_no_proxy_variables_mean_direct_connections() -> None:
    check = check_proxies({}, "https://tenant.example.com")
    assert (check.status, check.detail) == ("ok", "no proxy variables set: direct connections")


def test_an_unusable_keyring_fails_only_when_the_credentials_need_it() -> None:
    env = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    assert check_keyring(env, interactive=False, needed=False).status == "warn"
    needed = check_keyring(env, interactive=False, needed=True)
    assert (needed.status, needed.exit_code) == ("fail", ExitCode.KEYRING)


def test_a_working_keyring_is_ok_and_a_locked_one_names_the_case(
    memory_keyring: dict[tuple[str, str], str],
    keyring_backend: Callable[[type[keyring.backend.KeyringBackend]], str],
) -> None:
    assert check_keyring(dict(os.environ), interactive=False, needed=True).status == "ok"
    keyring_backend(LockedKeyring)
    locked = check_keyring(dict(os.environ), interactive=False, needed=True)
    assert locked.status == "fail"
    assert "locked" in locked.detail.lower()
    assert memory_keyring == {}  # a probe reads, never writes
