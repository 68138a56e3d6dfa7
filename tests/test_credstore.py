"""The credential store's transactions with injected faults: rollback before the commit,
completion after it, recovery of killed runs, deferred signals (issue 9 section 2).

The keyring is an in-memory double here (the real Secret Service is exercised in
tests/e2e/test_context_transactions.py); secret files and the contexts file are real files.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from qlikm2m import credstore, fileio
from qlikm2m.contexts import Context, contexts_path, load_contexts
from qlikm2m.credstore import CredentialStore, Slot, deferred_signals
from qlikm2m.errors import ConfigError, KeyringError
from qlikm2m.secretstore import secret_file_path
from qlikm2m.tokens import CacheKey, Token, _write_entry, token_dir


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the point it is raised at runs, no rollback either."""


class MemorySecrets(credstore._Secrets):
    """Keyring slots in a dict (files stay real), with a fault to inject per slot."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env, interactive=False)
        self.entries: dict[str, str] = {}
        self.fail_put: str | None = None

    def peek(self, slot: Slot) -> str | None:
        return super().peek(slot) if slot.storage == "file" else self.entries.get(slot.name)

    def read(self, context: Context) -> str:
        if context.secret_in_file:
            return super().read(context)
        return self.entries[context.name]

    def put(self, slot: Slot, secret: str) -> None:
        if slot.name == self.fail_put:
            raise KeyringError("The OS keyring failed: injected.")
        if slot.storage == "file":
            super().put(slot, secret)
        else:
            self.entries[slot.name] = secret

    def delete(self, slot: Slot) -> bool:
        if slot.storage == "file":
            return super().delete(slot)
        return self.entries.pop(slot.name, None) is not None

    def probe(self) -> None:
        pass


@pytest.fixture
def env() -> dict[str, str]:
    return dict(os.environ)


@pytest.fixture
def secrets(env: dict[str, str]) -> MemorySecrets:
    return MemorySecrets(env)


@pytest.fixture
def store(env: dict[str, str], secrets: MemorySecrets) -> CredentialStore:
    return make_store(env, secrets)


def make_store(env: dict[str, str], secrets: MemorySecrets) -> CredentialStore:
    made = CredentialStore(env, interactive=False)
    made._secrets = secrets
    return made


def context(name: str, storage: str = "keyring", client_id: str = "cid") -> Context:
    return Context(
        name=name,
        server="https://t.example.com",
        auth_type="oauth",
        client_id=client_id,
        secret_storage=storage,  # type: ignore[arg-type]
    )


def journal(env: dict[str, str]) -> Path:
    path = contexts_path(env)
    return path.with_name(path.name + ".journal")


def cache_token(env: dict[str, str], ctx: Context) -> Path:
    key = CacheKey(
        server=ctx.server,
        auth="oauth",
        client_id=ctx.client_id or "",
        scope="",
        impersonate="",
        generation=ctx.credential_generation or "",
    )
    path = token_dir(env) / f"{key.digest}.json"
    token = Token(value="tok-" + (ctx.credential_generation or ""), origin="minted", expires_at=9e9)
    _write_entry(path, key, token, b"salt", "digest")
    return path


# ---- transactions ------------------------------------------------------------------------------


def test_save_gives_a_new_generation_and_rename_keeps_it(
    store: CredentialStore, secrets: MemorySecrets, env: dict[str, str]
) -> None:
    saved = store.save(context("a"), "s-a", make_current=True, replace_existing=False)
    generation = saved.after.contexts["a"].credential_generation
    assert generation
    assert secrets.entries == {"a": "s-a"}
    renamed = store.rename("a", "b", replace_existing=False)
    assert renamed.after.current == "b"
    assert renamed.after.contexts["b"].credential_generation == generation
    assert secrets.entries == {"b": "s-a"}
    assert load_contexts(env).contexts.keys() == {"b"}
    assert not journal(env).exists()


def test_update_puts_the_old_secret_back_when_the_file_cannot_be_written(
    store: CredentialStore, secrets: MemorySecrets, env: dict[str, str], monkeypatch: Any
) -> None:
    store.save(context("a"), "old-secret", make_current=False, replace_existing=False)
    before = contexts_path(env).read_bytes()
    real = fileio.atomic_write
    monkeypatch.setattr(
        fileio,
        "atomic_write",
        lambda path, data, mode=0o600: (
            (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
            if path == contexts_path(env)
            else real(path, data, mode=mode)
        ),
    )
    with pytest.raises(ConfigError, match="No space left on device; nothing was changed"):
        store.update("a", load_contexts(env).get("a"), "new-secret")
    assert secrets.entries == {"a": "old-secret"}
    assert contexts_path(env).read_bytes() == before
    assert not journal(env).exists()


def test_a_failing_secret_write_takes_the_earlier_ones_back(
    store: CredentialStore, secrets: MemorySecrets, env: dict[str, str]
) -> None:
    store.save(context("kept"), "kept-old", make_current=False, replace_existing=False)
    before = contexts_path(env).read_bytes()
    secrets.fail_put = "z-new"
    entries = [(context("kept"), "kept-new"), (context("z-new"), "z-secret")]
    with pytest.raises(KeyringError, match="injected"):
        store.import_contexts(entries, current=None, replace_existing=True)
    assert secrets.entries == {"kept": "kept-old"}  # restored, and the new one never stayed
    assert contexts_path(env).read_bytes() == before


def test_a_file_secret_that_cannot_be_written_is_a_config_error(
    store: CredentialStore, env: dict[str, str]
) -> None:
    folder = secret_file_path("x", env).parent
    folder.parent.mkdir(parents=True)
    folder.write_text("not a folder")  # the secrets folder cannot be created
    with pytest.raises(ConfigError, match="Cannot write"):
        store.save(context("f", "file"), "s", make_current=False, replace_existing=False)
    assert load_contexts(env).contexts == {}


def test_rm_drops_only_the_tokens_of_its_own_generation(
    store: CredentialStore, env: dict[str, str]
) -> None:
    one = store.save(context("one"), "s1", make_current=False, replace_existing=False)
    two = store.save(context("two"), "s2", make_current=False, replace_existing=False)
    mine = cache_token(env, one.after.contexts["one"])
    theirs = cache_token(env, two.after.contexts["two"])
    outcome = store.remove("one", force=False)
    assert outcome.dropped == 1
    assert not mine.exists()
    assert theirs.exists()


# ---- recovery of killed runs -------------------------------------------------------------------


def test_a_run_killed_before_the_commit_is_rolled_back_by_the_next(
    store: CredentialStore,
    secrets: MemorySecrets,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.save(context("a", "file"), "s-a", make_current=False, replace_existing=False)
    before = contexts_path(env).read_bytes()
    real = fileio.atomic_write

    def killed_at_commit(path: Path, data: bytes, *, mode: int = 0o600) -> None:
        if path == contexts_path(env):
            raise Killed
        real(path, data, mode=mode)

    monkeypatch.setattr(fileio, "atomic_write", killed_at_commit)
    monkeypatch.setattr(CredentialStore, "_roll_back", lambda *args: None)  # a kill does not
    with pytest.raises(Killed):
        store.rename("a", "b", replace_existing=False)
    assert secret_file_path("b", env).exists()  # the plaintext copy a killed run leaves
    assert journal(env).exists()
    monkeypatch.undo()

    make_store(env, secrets).set_current("a")
    assert not secret_file_path("b", env).exists()
    assert secret_file_path("a", env).read_text() == "s-a"
    assert load_contexts(env).contexts.keys() == {"a"}
    assert contexts_path(env).read_bytes() != before  # only `current` changed
    assert not journal(env).exists()


def test_a_run_killed_after_the_commit_is_completed_by_the_next(
    store: CredentialStore,
    secrets: MemorySecrets,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved = store.save(context("a"), "s-a", make_current=False, replace_existing=False)
    token = cache_token(env, saved.after.contexts["a"])

    def killed(*args: Any) -> None:
        raise Killed

    monkeypatch.setattr(CredentialStore, "_complete", killed)
    with pytest.raises(Killed):
        store.update("a", saved.after.contexts["a"], "s-new")
    assert secrets.entries == {"a": "s-new"}
    assert token.exists()
    assert journal(env).exists()
    monkeypatch.undo()

    make_store(env, secrets).set_current(None)
    assert not token.exists()  # minted with the old secret: dropped on completion
    assert not journal(env).exists()


def test_an_overwritten_secret_that_was_not_committed_renews_the_generation(
    store: CredentialStore,
    secrets: MemorySecrets,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved = store.save(context("a"), "s-a", make_current=False, replace_existing=False)
    old_generation = saved.after.contexts["a"].credential_generation
    real = fileio.atomic_write

    def killed_at_commit(path: Path, data: bytes, *, mode: int = 0o600) -> None:
        if path == contexts_path(env):
            raise Killed
        real(path, data, mode=mode)

    monkeypatch.setattr(fileio, "atomic_write", killed_at_commit)
    monkeypatch.setattr(CredentialStore, "_roll_back", lambda *args: None)
    with pytest.raises(Killed):
        store.update("a", saved.after.contexts["a"], "s-new")
    monkeypatch.undo()

    make_store(env, secrets).set_current(None)
    # The old secret is gone from the keyring: no token minted with it may be trusted.
    assert secrets.entries == {"a": "s-new"}
    assert load_contexts(env).contexts["a"].credential_generation not in (None, old_generation)


def test_leftover_temporary_and_unowned_secret_files_are_removed(
    store: CredentialStore, env: dict[str, str]
) -> None:
    store.save(context("a:1", "file"), "s", make_current=False, replace_existing=False)
    folder = secret_file_path("x", env).parent
    (folder / "gone").write_text("stale plaintext")
    (folder / ".a%3A1.abc.tmp").write_text("half")
    store.set_current("a:1")
    assert sorted(p.name for p in folder.iterdir()) == ["a%3A1"]


def test_a_journal_that_does_not_parse_is_dropped(
    store: CredentialStore, env: dict[str, str]
) -> None:
    store.save(context("a"), "s", make_current=False, replace_existing=False)
    journal(env).write_text("{not json")
    store.set_current("a")
    assert not journal(env).exists()
    assert load_contexts(env).current == "a"


def test_bind_gives_an_unbound_context_a_generation_once(
    store: CredentialStore, env: dict[str, str]
) -> None:
    from qlikm2m.contexts import update_contexts

    update_contexts(env, lambda f: f.with_context(context("old")))
    assert load_contexts(env).contexts["old"].credential_generation is None
    first = store.bind("old")
    assert first
    assert store.bind("old") == first
    assert load_contexts(env).contexts["old"].credential_generation == first


# ---- signals -----------------------------------------------------------------------------------


def test_sigint_inside_the_critical_section_is_delivered_after_it() -> None:
    reached = []

    def section() -> None:
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the signal")

    with pytest.raises(KeyboardInterrupt):
        section()
    assert reached == ["after the signal"]


def test_sigterm_reaches_its_own_handler_once_the_section_ends() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == []
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_interrupt_during_the_writes_lets_the_transaction_complete(
    store: CredentialStore, secrets: MemorySecrets, env: dict[str, str]
) -> None:
    store.save(context("a"), "s-a", make_current=True, replace_existing=False)
    real_put = secrets.put

    def put_then_interrupt(slot: Slot, secret: str) -> None:
        real_put(slot, secret)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between the secret and the commit

    secrets.put = put_then_interrupt  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        store.rename("a", "b", replace_existing=False)
    assert load_contexts(env).current == "b"
    assert secrets.entries == {"b": "s-a"}
    assert not journal(env).exists()
