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
- Error-shape checks (``assert_clear_error``, ``assert_json_error``), ``files_under``, a
  ``CaptureServer`` on another origin, ``run_measured`` (peak RSS of a real process) and
  ``warm_token_cache``.
"""

from __future__ import annotations

import io
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, TextIO

import keyring.backend
from keyring.compat import properties
from keyring.errors import KeyringLocked, PasswordSetError

from qlikm2m import cli, fast_path
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
        getvalue = getattr(self.stdout, "getvalue", None)
        assert callable(getvalue), "stdout is not a string stream"
        return str(getvalue())

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
    stdout: TextIO | None = None,
    output: str | None = None,
    query: str | None = None,
    context: str | None = None,
    verbose: int = 0,
    **variables: str,
) -> CapturedRuntime:
    """A runtime for a unit test: exactly ``env`` and ``variables`` (default: none) plus the
    isolated config and cache folders (so nothing reaches the developer's own), ``stdin`` as
    input, string outputs (``stdout`` replaces the standard output stream, e.g. a recorder).

    ``tty`` makes stdout and stderr terminals; ``stdin_tty`` stdin. The global options
    (``output``, ``query``, ``context``, ``verbose``) are set as the root callback would.
    """
    chosen = {
        name: os.environ[name]
        for name in ("QLIKM2M_CONFIG_DIR", "QLIKM2M_CACHE_DIR")
        if name in os.environ
    }
    chosen.update(env or {})
    chosen.update(variables)
    stream = TerminalStream if tty else io.StringIO
    return CapturedRuntime(
        env=chosen,
        stdin=TerminalStream(stdin) if stdin_tty else io.StringIO(stdin),
        stdout=stdout if stdout is not None else stream(),
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


# The type of the run_cli and sandbox_cli fixtures.
RunCli = Callable[..., CliResult]


def invoke(
    args: list[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    tty: bool = False,
    stdin_tty: bool = False,
    fast: bool = False,
) -> CliResult:
    """Run ``qlikm2m *args`` through the real entry point (``cli.main``) in this process.

    ``env`` is the whole environment the run sees (default: ``os.environ``, which the suite's
    autouse fixture has already isolated). Each call is a run of its own: secrets it registers
    and backends it loads end with it. ``fast`` runs the launcher's fast path instead
    (``fast_path.main``, without Typer), which must recognise ``args``.
    """
    runtime = CapturedRuntime(
        env=dict(os.environ if env is None else env),
        stdin=TerminalStream(stdin) if stdin_tty else io.StringIO(stdin),
        stdout=TerminalStream() if tty else io.StringIO(),
        stderr=TerminalStream() if tty else io.StringIO(),
    )
    if fast:
        served = fast_path.main(list(args), runtime=runtime)
        assert served is not None, f"the fast path does not serve {args}"
        code = served
    else:
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


# --- error shapes, files, other servers, measured processes ------------------------------------

# Python reprs and tracebacks that must never reach a user as "the message".
_NOT_A_SENTENCE = ("Traceback", "object at 0x", "IncompleteRead(", "ProtocolError(", "Error(")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_clear_error(
    result: subprocess.CompletedProcess[str] | CliResult,
    exit_code: int,
    *words: str,
    after_progress: bool = False,
) -> str:
    """One ``error:`` sentence (plus at most a ``hint:`` line), the documented code, no traceback.

    ``after_progress`` allows the command's own progress lines before the error (e.g. context
    create's "Authenticated as ..."). Returns the error line for further checks.
    """
    assert result.returncode == exit_code, (result.returncode, result.stderr[-2000:])
    lines = error_lines(result.stderr)
    assert lines, "no error message at all"
    if after_progress:
        starts = [n for n, line in enumerate(lines) if line.startswith("error: ")]
        assert starts, result.stderr[-2000:]
        lines = lines[starts[0] :]
    assert lines[0].startswith("error: "), result.stderr[-2000:]
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), lines
    for marker in _NOT_A_SENTENCE:
        assert marker not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def assert_json_error(
    result: subprocess.CompletedProcess[str] | CliResult, exit_code: int
) -> dict[str, Any]:
    """With ``-o json``: stderr is one JSON object naming the same exit code."""
    assert result.returncode == exit_code, result.stderr[-2000:]
    lines = error_lines(result.stderr)
    assert len(lines) == 1, lines
    error: dict[str, Any] = json.loads(lines[0])["error"]
    assert error["exitCode"] == exit_code
    assert error["message"]
    return error


def files_under(*folders: str | Path) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        root = Path(folder)
        if root.exists():
            found += [path for path in root.rglob("*") if path.is_file()]
    return found


# --- a server on another origin, recording what reaches it ----------------------------------

# Not the sandbox: redirect tests need a second origin that keeps whole requests (headers and
# bodies) to prove no secret reached it, and the sandbox must never keep request bodies, which
# hold client secrets.


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CaptureServer:
    """Answers every request with a small JSON object and remembers it, headers and body."""

    host: str = "127.0.0.2"
    ssl_context: ssl.SSLContext | None = None
    seen: list[Captured] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen.append(Captured(self.command, self.path, dict(self.headers), body))
                answer = b'{"id": "captured", "access_token": "captured-token-0123456789"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True
            )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- a qlikm2m process whose peak memory is measured ------------------------------------------

# `python -m qlikm2m`, plus a hook that records the process's own VmHWM as it exits. Neither
# wait4's ru_maxrss nor getrusage() would do: Linux folds the spawning process's high-water mark
# (here pytest's, which grows over a run) into the child's at exec.
_MEASURED_MAIN = """
import atexit, os, runpy, sys

def record_peak():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["ABUSE_PEAK_FILE"], "w") as out:
        out.write(peak)

atexit.register(record_peak)
sys.argv = ["qlikm2m", *sys.argv[1:]]
runpy.run_module("qlikm2m", run_name="__main__", alter_sys=True)
"""


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mib: float
    seconds: float

    def as_completed(self) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], self.returncode, self.stdout, self.stderr)


def run_measured(
    args: list[str], env: dict[str, str], tmp: Path, *, timeout: float = 120
) -> Measured:
    """Run qlikm2m and read its own peak RSS (VmHWM, recorded at exit).

    Output goes to files (stdout may be hundreds of MB: it is kept only when small).
    """
    out_path, err_path, peak_path = tmp / "measured.out", tmp / "measured.err", tmp / "peak"
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURED_MAIN, *args],
            env={**env, "ABUSE_PEAK_FILE": str(peak_path)},
            stdout=out,
            stderr=err,
            timeout=timeout,
            check=False,
        )
    seconds = time.monotonic() - started
    size = out_path.stat().st_size
    stdout = out_path.read_text(errors="replace") if size < 1_000_000 else f"<{size} bytes>"
    return Measured(
        returncode=proc.returncode,
        stdout=stdout,
        stderr=err_path.read_text(errors="replace"),
        peak_rss_mib=int(peak_path.read_text()) / 1024,  # VmHWM is in kB
        seconds=seconds,
    )


def warm_token_cache(env: dict[str, str]) -> str:
    """Mint and cache a token in this process, as a first command would (but without its start-up)."""
    import io

    from qlikm2m.client import QlikClient
    from qlikm2m.runtime import Runtime
    from qlikm2m.settings import resolve_settings

    runtime = Runtime(env=env, stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO())
    with QlikClient(resolve_settings(runtime), runtime) as client:
        token = client.tokens.token()
    assert token.origin == "minted"
    return token.value
