"""A cached token belongs to the credentials that minted it, across processes, with the real
Secret Service and the sandbox over HTTPS (issue 9 section 1); and secrets read from stdin the
way a shell hands them over: with a byte-order mark, or with stdin closed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from qlikm2m.sandbox import Sandbox
from qlikm2m.secretstore import SERVICE

needs_secret_service = pytest.mark.skipif(
    os.environ.get("QLIKM2M_TEST_SECRET_SERVICE") != "1",
    reason="needs a real Secret Service: run via scripts/test.sh",
)
SECRET_SERVICE = "keyring.backends.SecretService.Keyring"
WRONG = "wrong-secret-0123456789abcdef"


def qlikm2m(
    *args: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "qlikm2m", *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


@pytest.fixture
def keyring_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLIK_")}
    env["PYTHON_KEYRING_BACKEND"] = SECRET_SERVICE
    env.pop("CI", None)
    return env


@pytest.fixture
def names() -> Iterator[list[str]]:
    used: list[str] = []
    yield used
    if os.environ.get("QLIKM2M_TEST_SECRET_SERVICE") != "1":
        return
    from keyring.backends import SecretService

    backend = SecretService.Keyring()
    for name in used:
        if backend.get_password(SERVICE, name) is not None:
            backend.delete_password(SERVICE, name)


def create(sandbox: Sandbox, name: str, env: dict[str, str], secret: str) -> None:
    done = qlikm2m(
        "context", "create", name, "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--client-secret-stdin", "--ca-bundle", sandbox.ca_bundle,
        "--no-verify",
        env=env, stdin=secret.encode() + b"\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def doctor_token(env: dict[str, str], name: str) -> tuple[int, dict[str, Any]]:
    import json

    done = qlikm2m("-c", name, "-o", "json", "doctor", env=env)
    checks = json.loads(done.stdout)["checks"]
    return done.returncode, next(check for check in checks if check["check"] == "token")


@pytest.mark.keyring
@needs_secret_service
def test_a_wrong_secret_never_rides_on_another_contexts_token(
    sandbox: Sandbox, keyring_env: dict[str, str], names: list[str]
) -> None:
    ok, bad = (f"bind-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("ok", "bad"))
    names += [ok, bad]
    create(sandbox, ok, keyring_env, sandbox.client_secret)
    create(sandbox, bad, keyring_env, WRONG)
    assert qlikm2m("-c", ok, "tenant", "me", env=keyring_env).returncode == 0
    refused = qlikm2m("-c", bad, "tenant", "me", env=keyring_env)
    assert refused.returncode == 4, refused.stderr
    code, token = doctor_token(keyring_env, bad)
    assert code == 4
    assert token["status"] == "fail"
    # ok's own token is still cached and proven by its stored secret: doctor says so.
    minted = sandbox.count("POST /oauth/token")
    code, token = doctor_token(keyring_env, ok)
    assert code == 0, token
    assert token["detail"].startswith("token from the token cache")
    assert sandbox.count("POST /oauth/token") == minted


@pytest.mark.keyring
@needs_secret_service
def test_a_keyring_entry_removed_behind_its_back_is_not_ok(
    sandbox: Sandbox, keyring_env: dict[str, str], names: list[str]
) -> None:
    from keyring.backends import SecretService

    name = f"bind-gone-{uuid.uuid4().hex[:8]}"
    names.append(name)
    create(sandbox, name, keyring_env, sandbox.client_secret)
    assert qlikm2m("-c", name, "tenant", "me", env=keyring_env).returncode == 0
    SecretService.Keyring().delete_password(SERVICE, name)
    code, token = doctor_token(keyring_env, name)
    assert code == 3
    assert token["status"] == "fail"
    assert f"has no client secret for context {name!r}" in token["detail"]


@pytest.mark.parametrize("flag", ["--client-secret-stdin", "--api-key-stdin"])
def test_closed_stdin_with_a_stdin_secret_flag_is_a_usage_error(flag: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLIK_")}
    extra = ["--client-id", "c"] if flag == "--client-secret-stdin" else []
    command = [sys.executable, "-m", "qlikm2m", "context", "create", "x", "--server"]
    command += ["t.example.com", *extra, flag, "--no-verify"]
    # `0<&-`: the process starts without a file descriptor 0 at all.
    done = subprocess.run(
        ["bash", "-c", 'exec 0<&-; exec "$@"', "bash", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"{flag} was given but stdin is closed" in done.stderr
    assert "unexpected" not in done.stderr.lower()


def test_closed_stdin_on_the_global_secret_flag_is_a_usage_error(cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if k != "QLIK_CLIENT_SECRET"}
    done = subprocess.run(
        ["bash", "-c", 'exec 0<&-; exec "$@"', "bash", sys.executable, "-m", "qlikm2m",
         "tenant", "me", "--client-secret-stdin"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--client-secret-stdin was given but stdin is closed" in done.stderr


def test_a_bom_before_the_secret_on_stdin_is_stripped(
    sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "QLIK_CLIENT_SECRET"}
    # What PowerShell's `$secret | qlikm2m ...` sends on Windows: a BOM and CRLF.
    piped = b"\xef\xbb\xbf" + sandbox.client_secret.encode() + b"\r\n"
    done = qlikm2m("tenant", "me", "--client-secret-stdin", env=env, stdin=piped)
    assert done.returncode == 0, done.stderr
    stored = {k: v for k, v in env.items() if not k.startswith("QLIK_")}
    created = qlikm2m(
        "context", "create", "bom", "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--client-secret-stdin", "--ca-bundle", sandbox.ca_bundle,
        "--secret-storage", "file",
        env=stored, stdin=piped,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr  # verified against the sandbox
