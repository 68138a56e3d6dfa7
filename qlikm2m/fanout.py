"""Run one qlikm2m command for every context matching a pattern (``qlikm2m each``).

Each context gets its own process, ``python -m qlikm2m --no-input -c NAME -o json ARGS...``: it
resolves that context alone, reads its secret once (keyring or file), and reports exactly as it
would on its own (JSON result on stdout, JSON error on stderr, an exit code). Up to ``parallel``
run at once, never two for the same tenant server (a tenant's rate limits and token cap are per
tenant). One NDJSON record per context is written in the contexts' sorted order, each as soon as
it and every context before it are done. Knows nothing of Typer.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from qlikm2m.errors import ConfigError, Interrupted, UsageError

DEFAULT_PARALLEL = 4
MAX_PARALLEL = 32
# Settings a child must take from its context, not from this process's environment.
_CHILD_DROPS = (
    "QLIK_SERVER",
    "QLIK_CLIENT_ID",
    "QLIK_CLIENT_SECRET",
    "QLIK_API_KEY",
    "QLIK_ACCESS_TOKEN",
    "QLIK_SCOPE",
    "QLIK_CA_BUNDLE",
    "QLIK_CONTEXT",
    "QLIKM2M_OUTPUT",
)
_STOP_GRACE = 5.0  # seconds a child has to end after SIGTERM before it is killed
_MAX_ERROR_TEXT = 2000


@dataclass(frozen=True)
class Target:
    """One context to run the command for."""

    context: str
    server: str


@dataclass(frozen=True)
class Outcome:
    """What ``run_each`` did: exit codes by context (None: not started, after --fail-fast)."""

    codes: dict[str, int | None]

    @property
    def failed(self) -> list[str]:
        return [name for name, code in self.codes.items() if code]

    @property
    def skipped(self) -> list[str]:
        return [name for name, code in self.codes.items() if code is None]

    @property
    def worst(self) -> int:
        """The highest exit code of all (0 when every command succeeded)."""
        return max((code for code in self.codes.values() if code is not None), default=0)


def matching_targets(env: Mapping[str, str], pattern: str) -> list[Target]:
    """The contexts whose name matches the shell-style ``pattern`` (``*``, ``?``, ``[...]``,
    case-sensitive), sorted by name. Raises ConfigError when none matches."""
    from qlikm2m.contexts import load_contexts
    from qlikm2m.settings import normalize_server_url

    contexts = load_contexts(env).contexts
    names = sorted(name for name in contexts if fnmatch.fnmatchcase(name, pattern))
    if not names:
        known = ", ".join(sorted(contexts)) or "none"
        raise ConfigError(
            f"No context matches {pattern!r} (contexts: {known}).",
            hint="Quote the pattern so the shell does not expand it: qlikm2m each 'prod-*' -- ...",
        )
    return [Target(name, normalize_server_url(contexts[name].server)) for name in names]


def child_command(context: str, argv: Sequence[str]) -> list[str]:
    """The command line of one context's child process."""
    return [sys.executable, "-m", "qlikm2m", "--no-input", "-c", context, "-o", "json", *argv]


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the QLIK_* settings: each child takes them from its own context."""
    return {k: v for k, v in env.items() if k not in _CHILD_DROPS}


def next_startable(
    pending: Sequence[int], targets: Sequence[Target], busy_servers: set[str]
) -> int | None:
    """The first pending target (in sorted order) whose server has no command running."""
    for index in pending:
        if targets[index].server not in busy_servers:
            return index
    return None


def _parse_result(stdout: str) -> Any:
    text = stdout.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        # A listing streamed as NDJSON: one document per line.
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        return text


def _parse_error(stderr: str, code: int) -> dict[str, Any]:
    for line in reversed(stderr.strip().splitlines()):
        try:
            document = json.loads(line)
        except ValueError:
            continue
        error = document.get("error") if isinstance(document, dict) else None
        if isinstance(error, dict):
            return error
    text = stderr.strip()[-_MAX_ERROR_TEXT:]
    return {"kind": "unexpected", "message": text or f"exit code {code}", "exitCode": code}


def record(target: Target, code: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The NDJSON record of one finished command: ``context``, ``server``, ``exitCode``, then
    ``result`` (its JSON output, when it printed any) and, when it failed, ``error`` (its JSON
    error)."""
    document: dict[str, Any] = {
        "context": target.context,
        "server": target.server,
        "exitCode": code,
    }
    result = _parse_result(stdout)
    if result is not None or code == 0:
        document["result"] = result
    if code != 0:
        document["error"] = _parse_error(stderr, code)
    return document


def _skipped(target: Target) -> dict[str, Any]:
    return {
        "context": target.context,
        "server": target.server,
        "exitCode": None,
        "skipped": True,
    }


def run_each(
    targets: Sequence[Target],
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    stdout: IO[str],
    stderr: IO[str],
    parallel: int = DEFAULT_PARALLEL,
    fail_fast: bool = False,
    spawn: Callable[..., subprocess.Popen[str]] = subprocess.Popen,
) -> Outcome:
    """Run ``argv`` for each target, writing one NDJSON record per target on ``stdout`` in order
    and a summary on ``stderr``. ``fail_fast``: after the first failure no further command is
    started (running ones finish: a deploy is not cut halfway) and the rest are recorded as
    skipped. Raises Interrupted (130) on Ctrl-C or SIGTERM, after stopping the running commands,
    naming them.
    """
    if not 1 <= parallel <= MAX_PARALLEL:
        raise UsageError(f"--parallel must be between 1 and {MAX_PARALLEL}, not {parallel}.")
    child_env = child_environment(env)
    done: queue.Queue[tuple[int, int, str, str]] = queue.Queue()
    pending = list(range(len(targets)))
    running: dict[int, subprocess.Popen[str]] = {}
    finished: dict[int, dict[str, Any]] = {}
    codes: dict[str, int | None] = {}
    printed = 0
    stopping = False

    def wait_for(index: int, process: subprocess.Popen[str]) -> None:
        out, err = process.communicate()
        done.put((index, process.returncode, out, err))

    def start(index: int) -> None:
        process = spawn(
            child_command(targets[index].context, argv),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        running[index] = process
        threading.Thread(target=wait_for, args=(index, process), daemon=True).start()

    try:
        while pending or running:
            while not stopping and len(running) < parallel:
                busy = {targets[i].server for i in running}
                index = next_startable(pending, targets, busy)
                if index is None:
                    break
                pending.remove(index)
                start(index)
            if not running:
                break  # stopping, with nothing left to wait for
            while True:
                try:
                    index, code, out, err = done.get(timeout=0.5)
                    break
                except queue.Empty:
                    continue
            del running[index]
            codes[targets[index].context] = code
            finished[index] = record(targets[index], code, out, err)
            if code != 0 and fail_fast:
                stopping = True
            while printed in finished:
                stdout.write(json.dumps(finished.pop(printed), ensure_ascii=False) + "\n")
                stdout.flush()
                printed += 1
    except KeyboardInterrupt:
        names = [targets[i].context for i in sorted(running)]
        _stop(running.values())
        raise Interrupted(
            "interrupted while running: " + (", ".join(names) or "nothing"),
            details={"running": names},
        ) from None
    for index in pending:
        codes[targets[index].context] = None
    for index in range(printed, len(targets)):
        document = finished.get(index) or _skipped(targets[index])
        stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    stdout.flush()
    outcome = Outcome({t.context: codes.get(t.context) for t in targets})
    stderr.write(summary(outcome) + "\n")
    stderr.flush()
    return outcome


def summary(outcome: Outcome) -> str:
    """``each: 3 contexts: 2 succeeded, 1 failed (prod-b: exit 4)`` and the skipped ones."""
    total = len(outcome.codes)
    failed = outcome.failed
    skipped = outcome.skipped
    succeeded = total - len(failed) - len(skipped)
    text = f"each: {total} context{'s' if total != 1 else ''}: {succeeded} succeeded"
    if failed:
        listed = ", ".join(f"{name}: exit {outcome.codes[name]}" for name in failed)
        text += f", {len(failed)} failed ({listed})"
    if skipped:
        text += f", {len(skipped)} skipped after --fail-fast ({', '.join(skipped)})"
    return text


def _stop(processes: Any) -> None:
    """SIGTERM every running child (each stops as on Ctrl-C), then SIGKILL what is left."""
    import time

    alive = [p for p in processes if p.poll() is None]
    for process in alive:
        with contextlib.suppress(OSError):
            process.terminate()
    deadline = time.monotonic() + _STOP_GRACE
    for process in alive:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
