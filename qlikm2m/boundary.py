"""The one error boundary of the tool: every way a command ends becomes a documented exit code.

Both ways into a command go through ``run_command``: the Typer command line (``qlikm2m.cli``)
and the launcher's fast path for the hottest commands (``qlikm2m.fast_path``). It knows nothing
of Typer: the command line maps the exceptions only Click raises (usage errors, ``Abort``, the
exit Click turns a broken pipe into) onto the outcomes below through ``adapt``, so the exit
codes of docs/exit-codes.md are decided here and nowhere else.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from qlikm2m.errors import ExitCode, Interrupted, QlikM2MError
from qlikm2m.runtime import Runtime, open_run

if TYPE_CHECKING:
    from collections.abc import Callable

    # A command: runs with the invocation's runtime; returns an exit code, or None for 0.
    Body = Callable[[Runtime], object]
    # A front end's own exceptions as an exit code (through the outcomes below), else None.
    Adapter = Callable[[Runtime, BaseException], int | None]


def run_command(body: Body, runtime: Runtime | None = None, *, adapt: Adapter | None = None) -> int:
    """Run ``body`` as one invocation and return its exit code (the process goes on).

    Each call is one run (``open_run``): what it registers or caches (secrets to redact, keyring
    backends) and its SIGTERM handler end with it, so several calls in one process do not affect
    each other. ``runtime`` defaults to a ``Runtime`` of this process's streams and environment.
    Exceptions that are not ``Exception`` (``SystemExit`` and the like) and that ``adapt`` does
    not claim propagate unchanged.
    """
    import signal
    import threading

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.getsignal(signal.SIGTERM) if in_main_thread else None
    try:
        with open_run():
            runtime = runtime or Runtime()
            _treat_sigterm_as_interrupt()
            return _guard(runtime, body, adapt)
    finally:
        # getsignal() says None for a handler set outside Python: that cannot be put back.
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _guard(runtime: Runtime, body: Body, adapt: Adapter | None) -> int:
    try:
        result = body(runtime)
    except QlikM2MError as error:
        # An expected error is its sentence; its traceback is for those who ask twice (-vv).
        if runtime.verbose >= 2:
            _print_traceback(runtime)
        return report(runtime, error)
    except KeyboardInterrupt:
        return interrupted(runtime)
    except BrokenPipeError:
        return broken_pipe()
    except BaseException as error:
        code = adapt(runtime, error) if adapt is not None else None
        if code is not None:
            return code
        if not isinstance(error, Exception):
            raise
        if runtime.verbose:
            _print_traceback(runtime)
        unexpected = QlikM2MError(
            f"unexpected {type(error).__name__}: {error}",
            hint="Re-run with -v for a traceback, and please report it.",
        )
        report(runtime, unexpected)
        return int(ExitCode.UNEXPECTED)
    if result == int(ExitCode.INTERRUPTED):
        return interrupted(runtime)
    try:
        # What is still buffered must reach its file before the exit code says it did.
        runtime.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except QlikM2MError as error:
        return report(runtime, error)
    return result if isinstance(result, int) else int(ExitCode.OK)


def report(runtime: Runtime, error: QlikM2MError) -> int:
    """Print ``error`` (a sentence and a hint, or one JSON object) and return its exit code."""
    from qlikm2m.output import report_error

    report_error(runtime, error)
    return int(error.exit_code)


def interrupted(runtime: Runtime) -> int:
    """Ctrl-C, SIGTERM or a prompt's end of input: say so and return 130."""
    report(runtime, Interrupted("interrupted"))
    return int(ExitCode.INTERRUPTED)


def broken_pipe() -> int:
    """The reader went away (``| head``): that is its choice, not our failure; 0."""
    _silence_stdout()
    return int(ExitCode.OK)


def _print_traceback(runtime: Runtime) -> None:
    import traceback

    from qlikm2m.redaction import redact

    # Plain traceback without locals, passed through the redactor in case a message holds a secret.
    runtime.stderr.write(redact(traceback.format_exc()))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _treat_sigterm_as_interrupt() -> None:
    """CI runners cancel a job with SIGTERM: stop the way Ctrl-C does (say what goes on, exit 130)
    instead of dying silently mid-wait."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
