"""Shared helpers of the abuse tests: error-shape checks, a capture server, peak-RSS runs."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Python reprs and tracebacks that must never reach a user as "the message".
_NOT_A_SENTENCE = ("Traceback", "object at 0x", "IncompleteRead(", "ProtocolError(", "Error(")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_clear_error(
    result: subprocess.CompletedProcess[str],
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


def assert_json_error(result: subprocess.CompletedProcess[str], exit_code: int) -> dict[str, Any]:
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
