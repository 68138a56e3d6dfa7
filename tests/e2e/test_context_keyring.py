"""Contexts against the real OS keyring: gnome-keyring's Secret Service over D-Bus.

scripts/test.sh (and CI) runs the suite in a private `dbus-run-session` with an unlocked
gnome-keyring and sets QLIKM2M_TEST_SECRET_SERVICE=1; the tests marked `keyring` need it. The
"no D-Bus session at all" tests need nothing and always run.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from qlikm2m.contexts import contexts_path, load_contexts
from qlikm2m.secretstore import SERVICE, secret_file_path

SECRET_SERVICE = "keyring.backends.SecretService.Keyring"
needs_secret_service = pytest.mark.skipif(
    os.environ.get("QLIKM2M_TEST_SECRET_SERVICE") != "1",
    reason="needs a real Secret Service: run via scripts/test.sh",
)


def secret_service() -> Any:
    from keyring.backends import SecretService

    return SecretService.Keyring()


@pytest.fixture
def keyring_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHON_KEYRING_BACKEND"] = SECRET_SERVICE
    env.pop("CI", None)
    return env


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Unique context names (the session keyring is shared by the tests); cleaned up after."""
    used: list[str] = []
    yield used
    if os.environ.get("QLIKM2M_TEST_SECRET_SERVICE") != "1":
        return
    backend = secret_service()
    for name in used:
        if backend.get_password(SERVICE, name) is not None:
            backend.delete_password(SERVICE, name)


def fresh(names: list[str], prefix: str = "kr") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    names.append(name)
    return name


def qlikm2m(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qlikm2m", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def files_holding(secret: str, dirs: dict[str, Path]) -> list[Path]:
    return [
        path
        for folder in (dirs["config"], dirs["cache"])
        if folder.exists()
        for path in folder.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    ]


def create_args(name: str, *extra: str) -> tuple[str, ...]:
    return (
        "context", "create", name, "--server", "kr.example.com", "--oauth-client-id", "kr-client",
        "--client-secret-stdin", "--no-verify", *extra,
    )  # fmt: skip


# ---- with the real Secret Service --------------------------------------------------------------


@pytest.mark.keyring
@needs_secret_service
def test_init_puts_the_secret_in_the_keyring_and_in_no_file(
    keyring_env: dict[str, str],
    sandbox: Any,
    names: list[str],
    isolated_dirs: dict[str, Path],
) -> None:
    name = fresh(names, "init")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qlikm2m", "context", "init", name, "--ca-bundle", sandbox.ca_bundle],
        env=keyring_env,
        encoding="utf-8",
        timeout=30,
    )
    child.logfile_read = io.StringIO()
    child.expect_exact("Enter tenant url:")
    child.sendline(sandbox.url)
    child.expect_exact("A/O/K? (API key, OAuth client secret, or private Key) [O]:")
    child.sendline("")
    child.expect_exact("Client ID:")
    child.sendline(sandbox.client_id)
    child.expect_exact("Client Secret:")
    child.sendline(sandbox.client_secret)
    child.expect(pexpect.EOF)
    child.close()
    transcript = child.logfile_read.getvalue()
    assert child.exitstatus == 0, transcript
    assert "OS keyring" in transcript
    assert secret_service().get_password(SERVICE, name) == sandbox.client_secret
    assert files_holding(sandbox.client_secret, isolated_dirs) == []
    assert load_contexts(keyring_env).current == name

    # The stored context serves a command: the secret comes back from the keyring.
    me = qlikm2m("user", "me", env=keyring_env)
    assert me.returncode == 0, me.stderr
    assert sandbox.client_id in me.stdout
    assert files_holding(sandbox.client_secret, isolated_dirs) == []


@pytest.mark.keyring
@needs_secret_service
def test_rm_removes_the_keyring_entry(keyring_env: dict[str, str], names: list[str]) -> None:
    name = fresh(names)
    created = qlikm2m(*create_args(name), env=keyring_env, stdin="rm-secret-0123456789\n")
    assert created.returncode == 0, created.stderr
    assert secret_service().get_password(SERVICE, name) == "rm-secret-0123456789"
    removed = qlikm2m("context", "rm", name, env=keyring_env)
    assert removed.returncode == 0, removed.stderr
    assert secret_service().get_password(SERVICE, name) is None
    assert name not in load_contexts(keyring_env).contexts


@pytest.mark.keyring
@needs_secret_service
def test_rename_moves_the_keyring_entry(keyring_env: dict[str, str], names: list[str]) -> None:
    old, new = fresh(names, "old"), fresh(names, "new")
    created = qlikm2m(*create_args(old), env=keyring_env, stdin="mv-secret-0123456789\n")
    assert created.returncode == 0, created.stderr
    renamed = qlikm2m("context", "rename", old, new, env=keyring_env)
    assert renamed.returncode == 0, renamed.stderr
    backend = secret_service()
    assert backend.get_password(SERVICE, old) is None
    assert backend.get_password(SERVICE, new) == "mv-secret-0123456789"


@pytest.mark.keyring
@needs_secret_service
def test_update_replaces_the_keyring_entry(keyring_env: dict[str, str], names: list[str]) -> None:
    name = fresh(names)
    assert qlikm2m(*create_args(name), env=keyring_env, stdin="first-0123456789\n").returncode == 0
    updated = qlikm2m(
        "context", "update", name, "--client-secret-stdin", "--no-verify",
        env=keyring_env, stdin="second-0123456789\n",
    )  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    assert secret_service().get_password(SERVICE, name) == "second-0123456789"


@pytest.mark.keyring
@needs_secret_service
def test_a_private_key_goes_into_the_keyring_mints_and_rotates(
    keyring_env: dict[str, str],
    sandbox: Any,
    names: list[str],
    isolated_dirs: dict[str, Path],
    tmp_path: Path,
) -> None:
    from keys_support import key_pair

    name = fresh(names, "key")
    pair = key_pair("ES384", "keyring-es")
    sandbox.add_public_key(pair.public_jwk)
    key_file = tmp_path / "bot.pem"
    key_file.write_text(pair.pem())
    env = {k: v for k, v in keyring_env.items() if not k.startswith("QLIK_")}

    created = qlikm2m(
        "context", "create", name, "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--ca-bundle", sandbox.ca_bundle, "--private-key-file",
        str(key_file), "--key-id", pair.kid, "--use", env=env,
    )  # fmt: skip
    used = qlikm2m("tenant", "me", env=env)
    again = qlikm2m("user", "me", env=env)
    rotated = qlikm2m("oauth", "keys", "rotate", "-c", name, env=env)
    after = qlikm2m("tenant", "me", "--no-token-cache", env=env)

    for result in (created, used, again, rotated, after):
        assert result.returncode == 0, result.stderr
    assert sandbox.count("POST /oauth/token") == 4  # verify, use (cached for again), proof, after
    stored = secret_service().get_password(SERVICE, name)
    assert stored is not None
    assert "PRIVATE KEY" in stored
    assert stored.strip() != pair.pem().strip()  # the rotated key
    for secret in (pair.pem(), stored):
        lines = [line for line in secret.splitlines() if "-----" not in line and len(line) >= 16]
        for line in lines:
            assert files_holding(line, isolated_dirs) == []
            for result in (created, used, again, rotated, after):
                assert line not in result.stdout + result.stderr
    removed = qlikm2m("context", "rm", name, env=env)
    assert removed.returncode == 0, removed.stderr
    assert secret_service().get_password(SERVICE, name) is None


@pytest.mark.keyring
@pytest.mark.slow
@needs_secret_service
def test_sixteen_parallel_creates_with_the_keyring(
    keyring_env: dict[str, str], names: list[str]
) -> None:
    wanted = [fresh(names, f"par{i}") for i in range(16)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "qlikm2m", *create_args(name)],
            env=keyring_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in wanted
    ]
    results = [
        proc.communicate(f"secret-of-{name}\n", timeout=120)
        for proc, name in zip(procs, wanted, strict=True)
    ]
    assert [proc.returncode for proc in procs] == [0] * 16, results
    assert set(wanted) <= set(load_contexts(keyring_env).contexts)
    backend = secret_service()
    assert all(backend.get_password(SERVICE, name) == f"secret-of-{name}" for name in wanted)


@pytest.mark.keyring
@needs_secret_service
def test_without_a_session_bus_autodetection_finds_no_keyring(
    keyring_env: dict[str, str], isolated_dirs: dict[str, Path]
) -> None:
    env = {k: v for k, v in keyring_env.items() if k not in ("DBUS_SESSION_BUS_ADDRESS",)}
    env.pop("PYTHON_KEYRING_BACKEND")
    result = qlikm2m(*create_args("nobus"), env=env, stdin="nobus-secret-0123456789\n")
    assert result.returncode == 7, result.stderr
    assert "--secret-storage file" in result.stderr
    assert not contexts_path(env).exists()


# ---- no D-Bus session at all: runs everywhere --------------------------------------------------


@pytest.fixture
def no_bus_env(keyring_env: dict[str, str]) -> dict[str, str]:
    env = dict(keyring_env)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return env


def test_create_without_a_session_bus_is_exit_7_and_writes_nothing(
    no_bus_env: dict[str, str], isolated_dirs: dict[str, Path]
) -> None:
    result = qlikm2m(*create_args("nobus"), env=no_bus_env, stdin="nobus-secret-0123456789\n")
    assert result.returncode == 7, result.stderr
    assert "No usable OS keyring" in result.stderr
    for remedy in ("Unlock", "QLIK_CLIENT_SECRET", "--secret-storage file"):
        assert remedy in result.stderr
    assert "Traceback" not in result.stderr
    assert "nobus-secret-0123456789" not in result.stderr
    written = [
        path
        for folder in (isolated_dirs["config"], isolated_dirs["cache"])
        if folder.exists()
        for path in folder.rglob("*")
    ]
    assert written == []


def test_json_errors_name_the_keyring_case(no_bus_env: dict[str, str]) -> None:
    result = qlikm2m(
        "-o", "json", *create_args("nobus"), env=no_bus_env, stdin="nobus-secret-0123456789\n"
    )
    assert result.returncode == 7
    import json

    error = json.loads(result.stderr)["error"]
    assert error["kind"] == "keyring"
    assert error["keyringCase"] == "no-backend"
    assert error["exitCode"] == 7


def test_file_storage_works_without_a_session_bus(
    no_bus_env: dict[str, str], isolated_dirs: dict[str, Path]
) -> None:
    result = qlikm2m(
        *create_args("filed", "--secret-storage", "file"),
        env=no_bus_env,
        stdin="filed-secret-0123456789\n",
    )
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr
    path = secret_file_path("filed", no_bus_env)
    assert path.read_text() == "filed-secret-0123456789"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert files_holding("filed-secret-0123456789", isolated_dirs) == [path]
    # Remembered per context: reading it back needs no keyring either.
    shown = qlikm2m("context", "get", "filed", env=no_bus_env)
    assert shown.returncode == 0, shown.stderr
    assert str(path) in shown.stdout
    assert qlikm2m("context", "rm", "filed", env=no_bus_env).returncode == 0
    assert not path.exists()


@pytest.mark.keyring
@needs_secret_service
def test_a_locked_keyring_is_exit_7_locked_and_writes_nothing(tmp_path: Path) -> None:
    # A private session whose gnome-keyring was started but never unlocked, and no display for
    # the unlock prompt: the case of an SSH login to a desktop machine.
    script = 'gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1; exec "$@"'
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL", "DISPLAY")
    }
    env.update(
        XDG_DATA_HOME=str(tmp_path / "data"),
        PYTHON_KEYRING_BACKEND=SECRET_SERVICE,
        QLIKM2M_KEYRING_TIMEOUT="20",
    )
    result = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script, "sh", sys.executable, "-m", "qlikm2m",
         "-o", "json", *create_args("locked")],
        env=env,
        input="locked-secret-0123456789\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 7, result.stderr
    error_line = next(line for line in result.stderr.splitlines() if line.startswith("{"))
    import json

    error = json.loads(error_line)["error"]
    assert error["keyringCase"] == "locked"
    assert "Unlock" in error["hint"]
    assert not contexts_path(env).exists()
