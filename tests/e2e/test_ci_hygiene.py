"""Secrets and tokens never leak: not in any stream, trace, error or file (end to end)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from qlikm2m.sandbox import Sandbox


def _files_under(*folders: str) -> list[Path]:
    found = []
    for folder in folders:
        root = Path(folder)
        if root.exists():
            found += [path for path in root.rglob("*") if path.is_file()]
    return found


@pytest.mark.slow
def test_no_stream_trace_or_file_holds_the_secret_or_the_token(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    token_run = run_qlikm2m("auth", "token")
    assert token_run.returncode == 0
    token = token_run.stdout.strip()
    secret = sandbox.client_secret

    wrong = {**cli_env, "QLIK_CLIENT_SECRET": secret[::-1]}
    runs = [
        run_qlikm2m("-v", "user", "me"),
        run_qlikm2m("-v", "tenant", "me"),
        run_qlikm2m("-v", "auth", "status"),
        run_qlikm2m("-v", "-o", "yaml", "auth", "status"),
        run_qlikm2m("-v", "api", "v1/items", "--paginate", "--include"),
        run_qlikm2m("-v", "api", "v1/does-not-exist"),
        run_qlikm2m("-v", "-o", "json", "api", "v1/does-not-exist"),
        run_qlikm2m("-v", "user", "me", env=wrong),
        run_qlikm2m("-v", "user", "me", "--no-token-cache"),
    ]
    sandbox.revoke_all()  # a 401, a re-mint and a retry, all traced
    runs.append(run_qlikm2m("-v", "tenant", "me"))
    runs.append(run_qlikm2m("-v", "auth", "revoke"))
    assert [run.returncode for run in runs] == [0, 0, 0, 0, 0, 5, 5, 4, 0, 0, 0]
    for run in runs:
        for stream in (run.stdout, run.stderr):
            assert secret not in stream
            assert secret[::-1] not in stream
            assert token not in stream
    # The traces are there and say what happened, with the Authorization redacted.
    assert "> GET" in runs[0].stderr
    assert "< 401" in runs[-2].stderr

    # Files: the secret nowhere; the token only in the 0600 cache file.
    for path in _files_under(cli_env["QLIKM2M_CONFIG_DIR"], cli_env["QLIKM2M_CACHE_DIR"]):
        content = path.read_bytes()
        assert secret.encode() not in content, path
        if token.encode() in content:
            assert path.parent.name == "tokens"
            assert path.stat().st_mode & 0o077 == 0


def test_the_token_file_is_private(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    assert run_qlikm2m("tenant", "me").returncode == 0
    folder = Path(cli_env["QLIKM2M_CACHE_DIR"]) / "tokens"
    assert folder.stat().st_mode & 0o777 == 0o700
    files = list(folder.glob("*.json"))
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert os.access(files[0], os.R_OK)


def test_warm_command_reads_no_keyring_and_takes_no_lock(
    sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    import subprocess
    import sys

    assert (
        subprocess.run(
            [sys.executable, "-m", "qlikm2m", "tenant", "me"], env=cli_env, capture_output=True
        ).returncode
        == 0
    )
    code = (
        "import sys\n"
        "from qlikm2m.launcher import main\n"
        "sys.argv = ['qlikm2m', 'tenant', 'me']\n"
        "rc = main()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('filelock', 'keyring', 'rich', 'yaml', 'jmespath'))\n"
        "sys.stderr.write(f'HEAVY {heavy}\\n')\n"
        "sys.exit(rc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr
    assert sandbox.count("POST /oauth/token") == 1
