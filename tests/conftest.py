"""The suite's one harness: isolation, in-process runs, a fake clock and keyring doubles.

Every test starts isolated (``isolated_dirs``, autouse): temporary config and cache folders, no
QLIK_* or proxy variables, the ``fail`` keyring backend, and a fresh run scope (secrets a test
registers and backends it loads end with it). The order is random (pytest-randomly; the seed is
printed at the end of every run: replay with ``-p randomly --randomly-seed=N``).

Fixtures (classes and helpers in ``harness.py``, sandbox fixtures in ``fixtures_sandbox.py``):

- ``run_cli(*args, env=None, stdin="", input=None, tty=False, stdin_tty=False, fast=False)``: the
  real CLI entry (``cli.main``; with ``fast``, the launcher's fast path) in this process; returns a ``CliResult`` (``code``/``out``/``err``, also
  ``returncode``/``stdout``/``stderr`` and ``json()``). ``env`` defaults to ``os.environ``.
  Prefer it to ``run_qlikm2m`` (a subprocess) unless the process boundary is what is tested:
  exit status of the interpreter, signals, start-up imports, terminals, file descriptors.
- ``sandbox_cli(*args, env=None, ...)``: ``run_cli`` defaulting to ``cli_env`` (the sandbox),
  the in-process twin of ``run_qlikm2m``.
- ``make_runtime(env=None, *, stdin="", tty=False, output=None, query=None, ...)``: a
  ``Runtime`` over string streams for unit tests of commands' helpers (``.out``/``.err``).
- ``fake_clock``: a ``FakeClock`` (call for the time, ``advance(s)``, ``sleep(s)`` recorded).
- ``memory_keyring``: selects ``harness.MemoryKeyring`` through PYTHON_KEYRING_BACKEND and
  yields its store, ``{(service, user): secret}``, empty; ``MemoryKeyring.calls`` lists calls.
- ``keyring_backend(cls)``: selects any double (``LockedKeyring``, ``DenyingKeyring``,
  ``HangingKeyring``, ``BrokenKeyring`` or a subclass defined in the test) the same way.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import keyring.backend
import pytest
from harness import (
    CapturedRuntime,
    CliResult,
    FakeClock,
    HangingKeyring,
    MemoryKeyring,
    RunCli,
    backend_name,
    invoke,
    make_runtime,
)

from qlikm2m import runtime as run_scopes

pytest_plugins = ["fixtures_sandbox"]

# Variables that would make a test depend on the machine it runs on.
_LEAKY_ENV = (
    "QLIK_SERVER",
    "QLIK_CLIENT_ID",
    "QLIK_CLIENT_SECRET",
    "QLIK_API_KEY",
    "QLIK_ACCESS_TOKEN",
    "QLIK_SCOPE",
    "QLIK_CA_BUNDLE",
    "QLIK_CONTEXT",
    "QLIKM2M_OUTPUT",
    "QLIKM2M_NO_TOKEN_CACHE",
    "NO_COLOR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background by a non-interactive shell (as CI may) inherits SIGINT
    # as ignored, and an ignored signal survives exec: the Ctrl-C tests' children would never
    # see it. A handled signal is reset to the default in children instead.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point config and cache at temporary folders and start from a clean environment.

    The keyring defaults to the ``fail`` backend (as poetry's tests do) so that nothing reaches a
    developer's real keyring by accident; keyring tests opt into the real Secret Service.
    """
    config = tmp_path / "config"
    cache = tmp_path / "cache"
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QLIKM2M_CONFIG_DIR", str(config))
    monkeypatch.setenv("QLIKM2M_CACHE_DIR", str(cache))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    # Loopback traffic must never be sent to a proxy, whatever the machine's settings.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    return {"config": config, "cache": cache}


@pytest.fixture(autouse=True)
def run_scope() -> Iterator[run_scopes.RunScope]:
    """Each test is a run of its own: what it registers for redaction or caches per run (and
    what in-process CLI runs inside it leave behind) is gone for the next test."""
    with run_scopes.open_run() as scope:
        yield scope


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    # pytest-randomly prints its seed in the header, which -q hides: say it where -q shows it.
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and config.pluginmanager.has_plugin("randomly"):
        terminalreporter.write_line(f"random order seed: -p randomly --randomly-seed={seed}")


# --- in-process runs ----------------------------------------------------------------------------


@pytest.fixture
def run_cli() -> RunCli:
    def run(
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: str = "",
        input: str | None = None,
        tty: bool = False,
        stdin_tty: bool = False,
        fast: bool = False,
    ) -> CliResult:
        # ``input=`` as in subprocess.run / run_qlikm2m, so a converted test changes one name.
        text = stdin if input is None else input
        return invoke(list(args), env=env, stdin=text, tty=tty, stdin_tty=stdin_tty, fast=fast)

    return run


@pytest.fixture
def sandbox_cli(run_cli: RunCli, cli_env: dict[str, str]) -> RunCli:
    """``run_cli`` whose default environment is ``cli_env`` (the sandbox's QLIK_* settings), as
    ``run_qlikm2m``'s is: converting a subprocess test changes only the fixture's name."""

    def run(*args: str, env: Mapping[str, str] | None = None, **options: Any) -> CliResult:
        return run_cli(*args, env=cli_env if env is None else env, **options)

    return run


@pytest.fixture(name="make_runtime")
def make_runtime_fixture() -> Callable[..., CapturedRuntime]:
    return make_runtime


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


# --- keyring doubles ----------------------------------------------------------------------------


@pytest.fixture
def keyring_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[type[keyring.backend.KeyringBackend]], str]]:
    """Select a keyring double for the rest of the test (os.environ and so ``run_cli``); returns
    the PYTHON_KEYRING_BACKEND value, for environments a test builds itself."""
    MemoryKeyring.store.clear()
    MemoryKeyring.calls.clear()
    HangingKeyring.release.clear()

    def select(backend: type[keyring.backend.KeyringBackend]) -> str:
        name = backend_name(backend)
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", name)
        return name

    yield select
    # A hanging call still waiting in a daemon thread returns now instead of at its timeout.
    HangingKeyring.release.set()


@pytest.fixture
def memory_keyring(
    keyring_backend: Callable[[type[keyring.backend.KeyringBackend]], str],
) -> dict[tuple[str, str], str]:
    """A working in-memory keyring for this test; yields its entries ``{(service, user): secret}``."""
    keyring_backend(MemoryKeyring)
    assert os.environ["PYTHON_KEYRING_BACKEND"] == backend_name(MemoryKeyring)
    return MemoryKeyring.store
