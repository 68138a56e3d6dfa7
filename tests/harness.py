"""The shared test harness: what tests build runs, clocks and keyrings with (fixtures in conftest.py).

Test modules import classes from here (for types and for subclassing doubles), never from each
other. Everything is in-process and deterministic:

- ``make_runtime(env, stdin=..., tty=..., ...)``: a ``Runtime`` over string streams;
  ``runtime.out`` / ``runtime.err`` give what was written.
- ``invoke(args, env=..., stdin=...)`` (the ``run_cli`` fixture): the real ``cli.main`` in this
  process; a ``CliResult`` with ``code``/``out``/``err`` and the ``subprocess.CompletedProcess``
  names ``returncode``/``stdout``/``stderr``, so a subprocess test converts by swapping fixtures.
- ``FakeClock``: a wall clock that moves only when told (``advance``) or slept on (``sleep``).
- Keyring doubles, selected the way a user selects a backend: ``PYTHON_KEYRING_BACKEND`` set to
  ``harness.<Class>`` (``backend_name``), so the adapter's real loading path runs.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import keyring.backend
from keyring.compat import properties
from keyring.errors import KeyringLocked, PasswordSetError

from qlikm2m import cli
from qlikm2m.runtime import Runtime

# --- runs -------------------------------------------------------------------------------------


class TerminalStream(io.StringIO):
    """A string stream that says it is a terminal (for colour, prompts and progress)."""

    def isatty(self) -> bool:
        return True


class CapturedRuntime(Runtime):
    """A Runtime over string streams, with what the run wrote as ``out`` and ``err``."""

    @property
    def out(self) -> str:
        assert isinstance(self.stdout, io.StringIO)
        return self.stdout.getvalue()

    @property
    def err(self) -> str:
        assert isinstance(self.stderr, io.StringIO)
        return self.stderr.getvalue()


def make_runtime(
    env: Mapping[str, str] | None = None,
    *,
    stdin: str = "",
    tty: bool = False,
    stdin_tty: bool = False,
    output: str | None = None,
    query: str | None = None,
    context: str | None = None,
    verbose: int = 0,
) -> CapturedRuntime:
    """A runtime for a unit test: exactly ``env`` (default: none) plus the isolated config and
    cache folders (so nothing reaches the developer's own), ``stdin`` as input, string outputs.

    ``tty`` makes stdout and stderr terminals; ``stdin_tty`` stdin. The global options
    (``output``, ``query``, ``context``, ``verbose``) are set as the root callback would.
    """
    variables = {
        name: os.environ[name]
        for name in ("QLIKM2M_CONFIG_DIR", "QLIKM2M_CACHE_DIR")
        if name in os.environ
    }
    variables.update(env or {})
    stream = TerminalStream if tty else io.StringIO
    return CapturedRuntime(
        env=variables,
        stdin=TerminalStream(stdin) if stdin_tty else io.StringIO(stdin),
        stdout=stream(),
        stderr=stream(),
        output_flag=output,
        query=query,
        context=context,
        verbose=verbose,
    )


@dataclass(frozen=True)
class CliResult:
    """The outcome of one in-process CLI run."""

    code: int
    out: str
    err: str

    # The names of subprocess.CompletedProcess, so tests read the same either way.
    @property
    def returncode(self) -> int:
        return self.code

    @property
    def stdout(self) -> str:
        return self.out

    @property
    def stderr(self) -> str:
        return self.err

    def json(self) -> Any:
        return json.loads(self.out)


def invoke(
    args: list[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    tty: bool = False,
    stdin_tty: bool = False,
) -> CliResult:
    """Run ``qlikm2m *args`` through the real entry point (``cli.main``) in this process.

    ``env`` is the whole environment the run sees (default: ``os.environ``, which the suite's
    autouse fixture has already isolated). Each call is a run of its own: secrets it registers
    and backends it loads end with it.
    """
    runtime = CapturedRuntime(
        env=dict(os.environ if env is None else env),
        stdin=TerminalStream(stdin) if stdin_tty else io.StringIO(stdin),
        stdout=TerminalStream() if tty else io.StringIO(),
        stderr=TerminalStream() if tty else io.StringIO(),
    )
    code = cli.main(list(args), runtime=runtime)
    return CliResult(code, runtime.out, runtime.err)


# --- time -------------------------------------------------------------------------------------


class FakeClock:
    """A wall clock (``time.time``-like, seconds) that moves only when a test says so.

    Call it for the time; ``advance(seconds)`` moves it; ``sleep(seconds)`` moves it too and
    records the request in ``sleeps``, so code that waits can be checked without waiting.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, f"asked to sleep {seconds}s"
        self.sleeps.append(seconds)
        self.now += seconds


# --- keyring doubles --------------------------------------------------------------------------


def backend_name(backend: type[keyring.backend.KeyringBackend]) -> str:
    """The PYTHON_KEYRING_BACKEND value that selects ``backend``."""
    return f"{backend.__module__}.{backend.__qualname__}"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A working keyring: entries in a class-level dict keyed ``(service, user)``; every call
    is appended to ``calls`` ("get", "set", "delete"). The ``memory_keyring`` fixture clears both.
    """

    store: ClassVar[dict[tuple[str, str], str]] = {}
    calls: ClassVar[list[str]] = []

    @properties.classproperty
    def priority(cls) -> float:
        return 1

    def get_password(self, service: str, username: str) -> str | None:
        self.calls.append("get")
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.calls.append("set")
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.calls.append("delete")
        del self.store[(service, username)]


class LockedKeyring(MemoryKeyring):
    """A keyring whose collection stays locked: every read and write raises KeyringLocked."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")


class DenyingKeyring(MemoryKeyring):
    """Reads find nothing; writes are refused with a message that quotes the secret."""

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        # Some backends put the rejected value in their message: it must not reach the user.
        raise PasswordSetError(f"Access denied while storing {password}")


class HangingKeyring(MemoryKeyring):
    """Reads never answer until ``release`` is set (the fixture sets it at teardown)."""

    release: ClassVar[threading.Event] = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.calls.append("hang")
        self.release.wait(60)
        return None


class BrokenKeyring(MemoryKeyring):
    """Reads raise an exception no keyring documents."""

    def get_password(self, service: str, username: str) -> str | None:
        raise ValueError("unexpected backend state")
