"""Context writes are transactions, through the real CLI: interrupts at every rename(2), real
SIGKILLs, and the real Secret Service (issue 9 section 2).

strace's fault injection delivers SIGINT exactly when the process enters its Nth rename(2): the
journal, a secret file, the contexts file. Whatever N, the command leaves the old state or the new
one, and the context works against the sandbox over HTTPS afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from qlikm2m.contexts import contexts_path, load_contexts
from qlikm2m.sandbox import Sandbox
from qlikm2m.secretstore import SERVICE, secret_file_path

needs_strace = pytest.mark.skipif(
    shutil.which("strace") is None, reason="needs strace (scripts/test.sh and .ci/run install it)"
)
needs_secret_service = pytest.mark.skipif(
    os.environ.get("QLIKM2M_TEST_SECRET_SERVICE") != "1",
    reason="needs a real Secret Service: run via scripts/test.sh",
)
SECRET_SERVICE = "keyring.backends.SecretService.Keyring"


def context_env(sandbox: Sandbox, *, keyring: bool = False) -> dict[str, str]:
    """The test's isolated folders, no QLIK_* credentials: commands use the stored context."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLIK_")}
    # No .pyc writes (a rename each): the Nth rename(2) is always the Nth write of qlikm2m's.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if keyring:
        env["PYTHON_KEYRING_BACKEND"] = SECRET_SERVICE
    env.pop("CI", None)
    return env


def qlikm2m(
    *args: str, env: dict[str, str], stdin: str | None = None, strace_when: int | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "qlikm2m", *args]
    if strace_when is not None:
        command = [
            "strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename",
            "-e", f"inject=rename:signal=SIGINT:when={strace_when}", *command,
        ]  # fmt: skip
    return subprocess.run(
        command, env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def create(sandbox: Sandbox, name: str, env: dict[str, str], *extra: str) -> None:
    done = qlikm2m(
        "context", "create", name, "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--client-secret-stdin", "--ca-bundle", sandbox.ca_bundle,
        "--no-verify", *extra,
        env=env, stdin=sandbox.client_secret + "\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def secret_files(env: dict[str, str]) -> list[str]:
    folder = secret_file_path("x", env).parent
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_consistent_file_state(sandbox: Sandbox, env: dict[str, str], names: set[str]) -> str:
    """Exactly one of ``names`` is a context, its secret file holds the secret, and it works."""
    # Any context command first finishes what an interrupted one left; `context ls` only reads.
    present = set(load_contexts(env).contexts) & names
    assert len(present) == 1, present
    (name,) = present
    assert secret_file_path(name, env).read_text() == sandbox.client_secret
    works = qlikm2m("-c", name, "tenant", "me", env=env)
    assert works.returncode == 0, works.stderr
    return name


@needs_strace
@pytest.mark.parametrize("when", [1, 2, 3])
def test_sigint_at_any_rename_of_context_rename_leaves_old_or_new(
    sandbox: Sandbox, when: int
) -> None:
    env = context_env(sandbox)
    create(sandbox, "alpha", env, "--secret-storage", "file", "--use")
    done = qlikm2m("context", "rename", "alpha", "beta", env=env, strace_when=when)
    assert done.returncode in (0, 130), done.stderr
    assert "Traceback" not in done.stderr
    name = assert_consistent_file_state(sandbox, env, {"alpha", "beta"})
    assert load_contexts(env).current == name
    # No plaintext copy under the other name, no journal, no temporary file.
    assert secret_files(env) == [name]
    assert not list(contexts_path(env).parent.glob("*.journal"))
    assert not list(contexts_path(env).parent.glob(".*.tmp"))


@needs_strace
@pytest.mark.parametrize("when", [1, 2, 3])
def test_sigint_at_any_rename_of_create_use_leaves_old_or_new(sandbox: Sandbox, when: int) -> None:
    env = context_env(sandbox)
    done = qlikm2m(
        "context", "create", "fresh", "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--client-secret-stdin", "--ca-bundle", sandbox.ca_bundle,
        "--secret-storage", "file", "--use",
        env=env, stdin=sandbox.client_secret + "\n", strace_when=when,
    )  # fmt: skip
    assert done.returncode in (0, 130), done.stderr
    contexts = load_contexts(env)
    if "fresh" in contexts.contexts:
        assert contexts.current == "fresh"
        assert secret_files(env) == ["fresh"]
        assert qlikm2m("tenant", "me", env=env).returncode == 0
    else:
        assert contexts.current is None
        # A secret written before the commit is taken back by the next context command.
        assert qlikm2m("context", "clear", env=env).returncode == 0
        assert secret_files(env) == []


@needs_strace
@pytest.mark.parametrize("when", [1, 2, 3, 4])
def test_sigint_at_any_rename_of_import_leaves_old_or_new(
    sandbox: Sandbox, tmp_path: Path, when: int
) -> None:
    env = context_env(sandbox)
    source = tmp_path / "contexts.yml"
    source.write_text(
        "current-context: one\ncontexts:\n"
        + "".join(
            f"  {name}:\n    server: {sandbox.url}\n    oauth-client-id: {sandbox.client_id}\n"
            f"    oauth-client-secret: {sandbox.client_secret}\n"
            for name in ("one", "two")
        )
    )
    done = qlikm2m(
        "context", "import-qlik-cli", str(source), "--secret-storage", "file",
        env=env, strace_when=when,
    )  # fmt: skip
    assert done.returncode in (0, 130), done.stderr
    imported = set(load_contexts(env).contexts)
    assert imported in (set(), {"one", "two"})  # all or nothing
    assert qlikm2m("context", "clear", env=env).returncode == 0
    assert secret_files(env) == sorted(imported)


@needs_strace
@needs_secret_service
@pytest.mark.keyring
@pytest.mark.parametrize("when", [1, 2])
def test_sigint_during_a_keyring_rename_leaves_old_or_new(sandbox: Sandbox, when: int) -> None:
    from keyring.backends import SecretService

    backend = SecretService.Keyring()
    env = context_env(sandbox, keyring=True)
    old, new = (f"tx-{uuid.uuid4().hex[:10]}" for _ in range(2))
    try:
        create(sandbox, old, env)
        done = qlikm2m("context", "rename", old, new, env=env, strace_when=when)
        assert done.returncode in (0, 130), done.stderr
        (name,) = set(load_contexts(env).contexts)
        other = new if name == old else old
        assert backend.get_password(SERVICE, name) == sandbox.client_secret
        assert backend.get_password(SERVICE, other) is None
        works = qlikm2m("-c", name, "tenant", "me", env=env)
        assert works.returncode == 0, works.stderr
    finally:
        for user in (old, new):
            if backend.get_password(SERVICE, user) is not None:
                backend.delete_password(SERVICE, user)


@needs_strace
def test_repeated_sigkills_during_rename_leave_no_stale_plaintext(sandbox: Sandbox) -> None:
    """SIGKILL at each fsync(2) of a rename: before the journal, the secret, the commit, after it.

    Each round's rename starts with the leftovers of the one killed before it, as a person
    retrying would; nothing may pile up, and the end state holds one plaintext copy.
    """
    env = context_env(sandbox)
    create(sandbox, "a", env, "--secret-storage", "file", "--use")
    names = ("a", "b")
    outcomes = set()
    copies = 0
    for when in [1, 2, 3, 4, 5, 6, 7, 1, 3, 5, 6, 2, 4, 6]:
        (current,) = set(load_contexts(env).contexts)
        target = names[1 - names.index(current)]
        command = [
            "strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync",
            "-e", f"inject=fsync:signal=SIGKILL:when={when}",
            sys.executable, "-m", "qlikm2m", "context", "rename", current, target,
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
        outcomes.add(done.returncode)
        plain = [f for f in secret_files(env) if not f.startswith(".")]
        copies = max(copies, len(plain))
    assert outcomes & {-signal.SIGKILL, 128 + signal.SIGKILL}  # the kills did land
    assert copies == 2  # some kill left a copy under both names: the cleanup below is exercised
    # The next context command finishes or undoes whatever the last kill interrupted.
    assert qlikm2m("context", "clear", env=env).returncode == 0
    name = assert_consistent_file_state(sandbox, env, set(names))
    assert secret_files(env) == [name]
    assert not list(contexts_path(env).parent.glob("*.journal"))
    assert not list(contexts_path(env).parent.glob(".*.tmp"))
