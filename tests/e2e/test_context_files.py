"""The contexts file under real concurrent processes, and a hand-broken file, through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qlikm2m.contexts import contexts_path, load_contexts


def start_create(name: str, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "qlikm2m", "context", "create", name]
    command += ["--server", f"{name}.example.com", "--oauth-client-id", f"id-{name}"]
    command += ["--client-secret-stdin", "--no-verify", "--secret-storage", "file"]
    return subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sixteen_processes_creating_sixteen_contexts_lose_none() -> None:
    env = dict(os.environ)
    names = [f"par{i:02d}" for i in range(16)]
    procs = [start_create(name, env) for name in names]
    errors = [
        proc.communicate(f"secret-{name}-0123456789\n", timeout=120)[1]
        for proc, name in zip(procs, names, strict=True)
    ]
    assert [proc.returncode for proc in procs] == [0] * 16, errors
    loaded = load_contexts(env)
    assert sorted(loaded.contexts) == names
    assert all(loaded.contexts[name].client_id == f"id-{name}" for name in names)


def test_a_corrupted_file_is_exit_3_and_left_byte_for_byte(run_qlikm2m: Any) -> None:
    env = dict(os.environ)
    path = contexts_path(env)
    path.parent.mkdir(parents=True)
    broken = (
        b"schema_version = 1\n"
        b'current = "prod"\n'
        b"[contexts.prod]\n"
        b'server = "https://prod.example.com"\n'
        b"client_id = pasted-secret-without-quotes-0123456789\n"
    )
    path.write_bytes(broken)
    for args in (("context", "ls"), ("context", "use", "prod"), ("user", "me")):
        result = run_qlikm2m(*args, env=env)
        assert result.returncode == 3, (args, result.stderr)
        assert f"{path} is not valid TOML" in result.stderr
        assert "line 5" in result.stderr
        assert "pasted-secret" not in result.stderr
        assert "Traceback" not in result.stderr
    created = run_qlikm2m(
        "context", "create", "new", "--server", "new.example.com", "--oauth-client-id", "c",
        "--client-secret-stdin", "--no-verify", "--secret-storage", "file",
        env=env, input="a-new-secret-0123456789\n",
    )  # fmt: skip
    assert created.returncode == 3
    assert path.read_bytes() == broken
    # Nothing else was written: no secret file, no replacement (a lock file may exist).
    assert {p.name for p in Path(path.parent).iterdir()} <= {"contexts.toml", "contexts.toml.lock"}
