"""No writable token cache: commands work without caching, say so once, and doctor agrees.

Tests run as root here, which ignores permission bits, so "read-only" is made two ways: a path
that cannot exist (under a regular file, as a HOME that does not exist), and, for a folder that
exists and holds a token, a read-only file system faked at the os-call boundary.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qlikm2m import cli
from qlikm2m.errors import ExitCode
from qlikm2m.runtime import Runtime
from qlikm2m.sandbox import Sandbox

WARNING = "warning: the token cache is not usable"


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    runtime = Runtime(env=env, stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO())
    code = cli.main(list(args), runtime)
    return code, runtime.stdout.getvalue(), runtime.stderr.getvalue()  # type: ignore[attr-defined]


@pytest.fixture
def env(sandbox: Sandbox) -> dict[str, str]:
    return {
        **os.environ,
        "QLIK_SERVER": sandbox.url,
        "QLIK_CLIENT_ID": sandbox.client_id,
        "QLIK_CLIENT_SECRET": sandbox.client_secret,
        "QLIK_CA_BUNDLE": sandbox.ca_bundle or "",
    }


@pytest.fixture
def impossible_dir(tmp_path: Path) -> Path:
    """A folder nobody can create, root included: its parent is a regular file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    return blocker / "cache"


def _read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Fake a read-only file system under ``folder``: reads work, every change fails (EROFS)."""
    root = str(folder)

    def inside(path: Any) -> bool:
        return isinstance(path, str | os.PathLike) and os.fspath(path).startswith(root)

    def refuse(real: Callable[..., Any], writes: Callable[..., bool]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if inside(args[0]) and writes(*args, **kwargs):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(args[0]))
            return real(*args, **kwargs)

        return call

    def opens_for_writing(path: Any, flags: int, *rest: Any, **kwargs: Any) -> bool:
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))

    always = lambda *args, **kwargs: True  # noqa: E731
    monkeypatch.setattr(os, "open", refuse(os.open, opens_for_writing))
    for name in ("unlink", "remove", "mkdir", "rename", "replace", "chmod"):
        monkeypatch.setattr(os, name, refuse(getattr(os, name), always))


def test_a_cache_folder_that_cannot_be_created_mints_and_warns_once(
    sandbox: Sandbox, env: dict[str, str], impossible_dir: Path
) -> None:
    env["QLIKM2M_CACHE_DIR"] = str(impossible_dir)
    for run in (1, 2):
        code, out, err = _run(env, "tenant", "me")
        assert code == ExitCode.OK, err
        assert json.loads(out)["id"]
        assert err.count(WARNING) == 1
        assert "QLIKM2M_CACHE_DIR" in err
        assert sandbox.count("POST /oauth/token") == run  # nothing cached: each run mints


def test_a_refused_token_in_a_read_only_cache_is_replaced_without_caching(
    sandbox: Sandbox, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(env, "tenant", "me")[0] == ExitCode.OK  # caches a token
    sandbox.revoke_all()
    _read_only(monkeypatch, Path(env["QLIKM2M_CACHE_DIR"]))
    code, out, err = _run(env, "tenant", "me")
    assert code == ExitCode.OK, err
    assert json.loads(out)["id"]
    assert err.count(WARNING) == 1
    assert "read-only file system" in err
    assert sandbox.count("POST /oauth/token") == 2


def test_doctor_says_what_the_token_step_does(
    sandbox: Sandbox, env: dict[str, str], impossible_dir: Path
) -> None:
    env["QLIKM2M_CACHE_DIR"] = str(impossible_dir)
    code, out, err = _run(env, "-o", "json", "doctor")
    assert code == ExitCode.OK, err
    checks = {check["check"]: check for check in json.loads(out)["checks"]}
    assert checks["cache dir"]["status"] == "warn"
    assert "tokens cannot be cached" in checks["cache dir"]["detail"]
    assert checks["token"]["status"] == "ok"
    assert "minted now" in checks["token"]["detail"]
    assert "not cached" in checks["token"]["detail"]


def test_doctor_with_a_writable_cache_has_no_warning(sandbox: Sandbox, env: dict[str, str]) -> None:
    code, out, err = _run(env, "-o", "json", "doctor")
    assert code == ExitCode.OK, err
    checks = {check["check"]: check for check in json.loads(out)["checks"]}
    assert checks["cache dir"]["status"] == "ok"
    assert "not cached" not in checks["token"]["detail"]
    assert WARNING not in err


def test_env_only_run_with_a_home_that_does_not_exist(
    sandbox: Sandbox, env: dict[str, str], impossible_dir: Path
) -> None:
    # Containers and CI runners: HOME points nowhere and no cache folder is configured.
    for name in ("QLIKM2M_CACHE_DIR", "XDG_CACHE_HOME"):
        env.pop(name, None)
    env["HOME"] = str(impossible_dir)
    done = subprocess.run(
        [sys.executable, "-m", "qlikm2m", "tenant", "me"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"]
    assert done.stderr.count(WARNING) == 1
    assert done.stderr.count("\n") == 1  # the warning is the only thing said
