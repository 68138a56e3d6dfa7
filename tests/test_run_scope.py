"""Per-run state: what one invocation registers or caches ends with it, in-process too.

The redaction registry is covered in tests/test_redaction.py; here the scope itself, the keyring
backends it caches and the signal handler a run installs.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import keyring.backend
from harness import MemoryKeyring, invoke

from qlikm2m.runtime import RunLocalDict, current_run, open_run
from qlikm2m.secretstore import KeyringAdapter


class CountingKeyring(MemoryKeyring):
    """A working keyring that counts how often a backend object was made (loaded)."""

    made: ClassVar[list[int]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.made.append(1)


def test_scopes_nest_and_each_value_belongs_to_one_scope() -> None:
    outer = current_run()
    with open_run() as inner:
        assert current_run() is inner
        assert list(inner.chain())[:2] == [inner, outer]
        assert inner.local("k", list) is inner.local("k", list)
        inner.local("k", list).append("x")
        assert outer.peek("k") is None
    assert current_run() is outer


def test_a_run_local_dict_is_empty_in_every_new_run() -> None:
    cache: RunLocalDict[str, int] = RunLocalDict("test.cache")
    with open_run():
        cache["a"] = 1
        assert dict(cache) == {"a": 1}
    with open_run():
        assert dict(cache) == {}
        assert "a" not in cache


def test_a_run_does_not_leak_into_threads_started_without_its_context() -> None:
    seen: list[object] = []
    with open_run() as scope:
        worker = threading.Thread(target=lambda: seen.append(current_run()))
        worker.start()
        worker.join()
    assert seen != [scope]


def test_a_keyring_backend_is_loaded_once_per_run_and_again_in_the_next(
    keyring_backend: Callable[[type[keyring.backend.KeyringBackend]], str],
) -> None:
    keyring_backend(CountingKeyring)
    CountingKeyring.made.clear()
    env = dict(os.environ)
    with open_run():
        KeyringAdapter(env, interactive=False).get("a")
        KeyringAdapter(env, interactive=False).get("b")
        assert len(CountingKeyring.made) == 1
    with open_run():
        KeyringAdapter(env, interactive=False).get("a")
    assert len(CountingKeyring.made) == 2


def test_a_cli_run_puts_back_the_sigterm_handler_it_found() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        result = invoke(["context", "ls"])
        assert result.code == 0, result.err
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_two_cli_runs_do_not_share_secrets() -> None:
    # The first run reads an API key from stdin (and registers it for redaction); the second
    # names the same text as a context, and its error message must show it as it is.
    value = "ordinary-looking-value"
    first = invoke(
        ["context", "create", "one", "--server", "t.example.com", "--api-key-stdin",
         "--secret-storage", "file", "--no-verify"],
        stdin=value + "\n",
    )  # fmt: skip
    assert first.code == 0, first.err
    second = invoke(["context", "get", value])
    assert second.code == 3
    assert value in second.err
    assert "***" not in second.err
