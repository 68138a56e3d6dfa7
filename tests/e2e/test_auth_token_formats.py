"""`auth token --format` for shells, .env files, GitHub Actions and credential helpers, end to end
against the HTTPS sandbox; each form is checked by the tool that reads it where one is at hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from qlikm2m.sandbox import Sandbox


def _raw(run_qlikm2m: Any) -> str:
    done = run_qlikm2m("auth", "token")
    assert done.returncode == 0, done.stderr
    return str(done.stdout.strip())


@pytest.mark.parametrize(
    ("form", "template"),
    [
        ("powershell", "$env:QLIK_ACCESS_TOKEN = '{}'"),
        ("fish", "set -gx QLIK_ACCESS_TOKEN '{}'"),
        ("cmd", 'set "QLIK_ACCESS_TOKEN={}"'),
    ],
)
def test_shell_forms(run_qlikm2m: Any, sandbox: Sandbox, form: str, template: str) -> None:
    token = _raw(run_qlikm2m)
    done = run_qlikm2m("auth", "token", "--format", form)
    assert done.returncode == 0, done.stderr
    assert done.stdout == template.format(token) + "\n"
    assert sandbox.count("POST /oauth/token") == 1


def test_dotenv_is_read_back_by_a_posix_shell(run_qlikm2m: Any, sandbox: Sandbox) -> None:
    token = _raw(run_qlikm2m)
    done = run_qlikm2m("auth", "token", "--format", "dotenv")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"QLIK_SERVER={sandbox.url}\nQLIK_ACCESS_TOKEN={token}\n"
    # `set -a; . ./.env` is how shell scripts load one.
    read = subprocess.run(
        [
            "sh",
            "-c",
            'set -a; eval "$1"; printf "%s\\n%s" "$QLIK_SERVER" "$QLIK_ACCESS_TOKEN"',
            "sh",
            done.stdout,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert read.stdout == f"{sandbox.url}\n{token}"


def test_process_form_for_credential_helpers(run_qlikm2m: Any, sandbox: Sandbox) -> None:
    token = _raw(run_qlikm2m)
    done = run_qlikm2m("auth", "token", "--format", "process")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert set(document) == {"version", "accessToken", "tokenType", "expiresAt", "server"}
    assert document["version"] == 1
    assert document["accessToken"] == token
    assert document["tokenType"] == "Bearer"
    assert document["server"] == sandbox.url
    expires = datetime.fromisoformat(document["expiresAt"].replace("Z", "+00:00")).timestamp()
    # The sandbox's tokens live six hours, like Qlik's.
    assert 5 * 3600 < expires - time.time() <= 6 * 3600 + 60


def test_github_prints_the_mask_before_writing_the_token(
    cli_env: dict[str, str], tmp_path: Path, sandbox: Sandbox
) -> None:
    # $GITHUB_ENV is a FIFO: opening it to append blocks until this test reads it, so the mask
    # line must already be on stdout while the token is not yet written anywhere.
    fifo = tmp_path / "github_env"
    os.mkfifo(fifo)
    cli_env["GITHUB_ENV"] = str(fifo)
    process = subprocess.Popen(
        [sys.executable, "-m", "qlikm2m", "auth", "token", "--format", "github"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("::add-mask::")
        token = first.removeprefix("::add-mask::").rstrip("\n")
        assert len(token) > 10
        with open(fifo, encoding="utf-8") as reader:
            written = reader.read()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert written == f"QLIK_ACCESS_TOKEN={token}\n"
    # Never unmasked in the log: the token appears on stdout only in the mask command.
    assert out == ""
    assert token not in err


def test_github_appends_to_an_existing_file(
    run_qlikm2m: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env_file = tmp_path / "github_env"
    env_file.write_text("EARLIER=1\n")
    cli_env["GITHUB_ENV"] = str(env_file)
    done = run_qlikm2m("auth", "token", "--format", "github", env=cli_env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    token = lines[0].removeprefix("::add-mask::")
    assert lines == [f"::add-mask::{token}"]
    assert env_file.read_text() == f"EARLIER=1\nQLIK_ACCESS_TOKEN={token}\n"


def test_github_without_github_env_fails_before_minting(
    run_qlikm2m: Any, cli_env: dict[str, str], sandbox: Sandbox
) -> None:
    cli_env.pop("GITHUB_ENV", None)
    done = run_qlikm2m("-o", "json", "auth", "token", "--format", "github", env=cli_env)
    assert done.returncode == 3
    assert done.stdout == ""
    assert json.loads(done.stderr)["error"]["kind"] == "config"
    assert "GITHUB_ENV" in json.loads(done.stderr)["error"]["message"]
    assert sandbox.count("POST /oauth/token") == 0
