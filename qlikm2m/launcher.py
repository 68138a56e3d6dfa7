"""The console-script entry point: start-up and exit kept to what a command needs.

- ``qlikm2m --version`` is what install checks and CI logs run most; building the Typer app costs
  more than the whole answer, so that one exact invocation is served here.
- ``tenant me``, ``user me`` and ``api PATH`` (with the common global options) run without Typer
  and Click (``qlikm2m.fast_path``); any other command line goes to ``qlikm2m.cli``.
- Start-up allocates tens of thousands of long-lived objects (Typer, Click, requests, the command
  tree): with the cyclic garbage collector on, each allocation burst triggers passes over objects
  that will live as long as the process. The collector is off while a command starts; after
  ``GC_START_UP_SECONDS`` (a command that is still running is a long one: a listing, a reload wait,
  ``exec``, the sandbox) what exists is frozen out of its sight (``gc.freeze``) and it is back on.
- At exit, once the exit code is final, atexit handlers have run and stdout and stderr are flushed
  without error, the process ends with ``os._exit``: tearing the interpreter down (freeing every
  module and object one by one) changes nothing a caller can see and took a quarter of a warm
  command's time. Whenever that cannot be shown (a flush failed, another thread still runs), the
  interpreter's ordinary exit runs instead, with its ordinary behaviour.
"""

from __future__ import annotations

import gc
import sys

# Not typing.TYPE_CHECKING: importing typing would slow `--version` (mypy honours the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading

# Longer than a warm command's start-up on a busy 2-core machine; short enough that a long command
# (hours of reload waiting, 100,000-item listings) runs with the collector on almost throughout.
GC_START_UP_SECONDS = 1.0


def run(*, fast: bool = True) -> int:
    """The console script (and ``python -m qlikm2m``): ``main``, then the exit without teardown."""
    code = main(fast=fast)
    exit_now(code)
    return code


def main(*, fast: bool = True) -> int:
    """Run one command from ``sys.argv`` and return its exit code (the process goes on).

    The hottest command lines run without Typer (``qlikm2m.fast_path``) unless ``fast`` is
    False (tests compare both ways); every other one goes to ``qlikm2m.cli``.
    """
    from qlikm2m.streams import guard_standard_streams

    # Before anything is written: a closed, full or legacy-encoded stream must give a sentence
    # and an exit code, not a traceback from the first print.
    guard_standard_streams()
    if sys.argv[1:] == ["--version"]:
        return _version()
    timer = gc_off_for_start_up()
    try:
        code = None
        if fast:
            from qlikm2m.fast_path import main as fast_main

            code = fast_main()
        if code is None:
            from qlikm2m.cli import main as cli_main

            code = cli_main()
    finally:
        gc_on(timer)
    return code


def _version() -> int:
    from qlikm2m import __version__
    from qlikm2m.errors import QlikM2MError

    try:
        sys.stdout.write(f"qlikm2m {__version__}\n")
        sys.stdout.flush()
    except QlikM2MError as error:
        sys.stderr.write(f"error: {error.message}\n")
        return int(error.exit_code)
    return 0


def gc_off_for_start_up(seconds: float | None = None) -> threading.Timer | None:
    """Turn the cyclic collector off; a daemon timer freezes what exists and turns it back on.

    Returns the timer (None when the collector was already off: someone else owns it).
    """
    if not gc.isenabled():
        return None
    import threading

    gc.disable()
    timer = threading.Timer(GC_START_UP_SECONDS if seconds is None else seconds, _freeze_and_enable)
    timer.daemon = True
    timer.name = "qlikm2m-gc-on"
    timer.start()
    return timer


def _freeze_and_enable() -> None:
    # Start-up objects (modules, classes, the command tree) live until exit: scanning them again
    # in every full collection would be wasted work.
    gc.freeze()
    gc.enable()


def gc_on(timer: threading.Timer | None) -> None:
    """The collector as it was before ``gc_off_for_start_up``: on, whether the timer fired or not."""
    if timer is None:
        return
    timer.cancel()
    gc.enable()


def exit_now(code: object) -> None:
    """End the process with ``code`` without interpreter teardown, or return when that is unsafe.

    Runs the atexit handlers first (what teardown would do that anyone could notice), then flushes
    stdout and stderr; any failure there, a non-integer code, or another non-daemon thread still
    running leaves the exit to the interpreter (the caller returns ``code``).
    """
    import os
    import threading

    if not isinstance(code, int) or isinstance(code, bool):
        return
    current = threading.current_thread()
    if current is not threading.main_thread():
        return
    if any(t is not current and t.is_alive() and not t.daemon for t in threading.enumerate()):
        return
    import atexit

    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
    except BaseException:
        # The ordinary exit reports (or swallows) it exactly as it always has.
        return
    os._exit(code)
