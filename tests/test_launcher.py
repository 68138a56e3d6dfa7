"""The launcher's start-up and exit levers: the collector comes back, teardown is skipped safely.

Subprocess tests where the process boundary is what is shown (exit status, what reached the pipe,
whether the interpreter's teardown ran); the collector's timer is driven in process.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from qlikm2m import launcher


@pytest.fixture
def gc_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    gc.unfreeze()
    if was:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_at_start_up_then_frozen_and_on_for_a_long_command(
    gc_restored: None,
) -> None:
    gc.enable()
    gc.unfreeze()
    timer = launcher.gc_off_for_start_up(0.01)
    assert timer is not None
    assert not gc.isenabled()
    # A command still running when the timer fires is a long one: it gets the collector back,
    # with the start-up objects out of its sight.
    timer.join(timeout=30)
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    launcher.gc_on(timer)
    assert gc.isenabled()


def test_a_short_command_gets_the_collector_back_when_it_returns(gc_restored: None) -> None:
    gc.enable()
    timer = launcher.gc_off_for_start_up(3600)
    assert not gc.isenabled()
    launcher.gc_on(timer)
    assert gc.isenabled()
    assert timer is not None
    assert timer.finished.is_set()


def test_a_collector_someone_else_turned_off_stays_off(gc_restored: None) -> None:
    gc.disable()
    assert launcher.gc_off_for_start_up(0.01) is None
    launcher.gc_on(None)
    assert not gc.isenabled()


# A process that says whether the interpreter's teardown ran: __main__'s globals are cleared at
# teardown, which runs this object's __del__; os._exit does not.
_PROBE = """
import atexit, sys
class Teardown:
    def __del__(self):
        sys.stderr.write("TEARDOWN\\n")
probe = Teardown()
atexit.register(lambda: sys.stderr.write("ATEXIT\\n"))
from qlikm2m import launcher
sys.argv = ["qlikm2m", *sys.argv[1:]]
sys.exit(launcher.{entry}())
"""


def _probe(
    entry: str, *args: str, env: dict[str, str], **options: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROBE.format(entry=entry), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **options,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("tenant", "me"),
        ("api", "v1/items", "--paginate", "--ndjson"),
        ("api", "v1/no-such-thing"),
        ("tenant", "me", "--server", "not a url"),
        ("no-such-command",),
    ],
    ids=["tenant-me", "listing", "api-404", "usage", "unknown-command"],
)
def test_without_teardown_the_output_and_exit_code_are_those_of_the_ordinary_exit(
    cli_env: dict[str, str], args: tuple[str, ...]
) -> None:
    fast = _probe("run", *args, env=cli_env)
    ordinary = _probe("main", *args, env=cli_env)
    assert fast.returncode == ordinary.returncode
    assert fast.stdout == ordinary.stdout
    # atexit handlers ran once in both; only the teardown itself was skipped.
    assert fast.stderr.count("ATEXIT") == ordinary.stderr.count("ATEXIT") == 1
    assert "TEARDOWN" in ordinary.stderr
    assert "TEARDOWN" not in fast.stderr
    assert fast.stderr.replace("ATEXIT\n", "") == ordinary.stderr.replace("ATEXIT\n", "").replace(
        "TEARDOWN\n", ""
    )


def test_a_listing_larger_than_the_pipe_buffer_arrives_whole(cli_env: dict[str, str]) -> None:
    done = _probe("run", "api", "v1/items", "--paginate", "--ndjson", env=cli_env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) > 10
    assert all(line.startswith("{") and line.endswith("}") for line in lines)


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"], ids=["closed", "full"])
def test_stdout_that_cannot_be_written_keeps_exit_10_without_teardown(
    cli_env: dict[str, str], redirect: str
) -> None:
    script = f'"$0" -m qlikm2m tenant me {redirect}'
    done = subprocess.run(
        ["sh", "-c", script, sys.executable],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 10, done.stderr
    assert "Could not write the output to stdout" in done.stderr
    assert "Traceback" not in done.stderr


def test_another_thread_still_running_leaves_the_exit_to_the_interpreter() -> None:
    code = """
import sys, threading, time
from qlikm2m import launcher
def late():
    time.sleep(0.2)
    sys.stdout.write("thread finished\\n")
    sys.stdout.flush()
threading.Thread(target=late).start()
launcher.exit_now(3)
sys.exit(4)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    # exit_now returned (a thread was running): the interpreter waited for it and exited 4.
    assert done.returncode == 4
    assert done.stdout == "thread finished\n"


def test_exit_now_ends_the_process_with_the_code_after_flushing() -> None:
    code = """
import sys
from qlikm2m import launcher
sys.stdout.write("x" * 200000)
launcher.exit_now(7)
sys.exit(4)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 7
    assert done.stdout == "x" * 200000


def test_the_timer_thread_is_a_daemon(gc_restored: None) -> None:
    timer = launcher.gc_off_for_start_up(3600)
    try:
        assert timer is not None
        assert timer.daemon
        assert timer in threading.enumerate()
    finally:
        launcher.gc_on(timer)
