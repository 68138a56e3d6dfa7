"""What a person at a terminal sees: tables of results and the reload spinners, in-process."""

from __future__ import annotations

import io
import re

from harness import FakeClock, TerminalStream

from qlikm2m.reloads import Outcome, ReloadResult
from qlikm2m.terminal import SpinnerReporter

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# --- the reload spinners ----------------------------------------------------------------------


def _result(app: str, outcome: Outcome, status: str, elapsed: float) -> ReloadResult:
    return ReloadResult(app, outcome, record={"id": f"r-{app}", "status": status}, elapsed=elapsed)


def test_finished_reloads_become_permanent_lines_with_their_outcome() -> None:
    stream = TerminalStream()
    reporter = SpinnerReporter(stream, color=False, clock=FakeClock())
    reporter.started("a", {"id": "r-a", "status": "QUEUED"})
    reporter.started("b", {"id": "r-b", "status": "QUEUED"})
    reporter.finished(_result("a", Outcome.SUCCEEDED, "SUCCEEDED", 5))
    reporter.finished(_result("b", Outcome.FAILED, "FAILED", 65))
    reporter.close()
    reporter.close()  # closing twice is harmless
    text = ANSI.sub("", stream.getvalue())
    assert "✓ app a: reload r-a SUCCEEDED in 5s" in text
    assert "✗ app b: reload r-b ended FAILED after 1m05s" in text


def test_reloads_that_did_not_end_leave_no_line() -> None:
    stream = TerminalStream()
    reporter = SpinnerReporter(stream, color=False, clock=FakeClock())
    reporter.started("a", {"id": "r-a", "status": "RELOADING"})
    reporter.finished(_result("a", Outcome.INTERRUPTED, "RELOADING", 3))
    reporter.close()
    assert "app a:" not in ANSI.sub("", stream.getvalue())


def test_each_spinner_shows_the_latest_status_and_the_time_since_it_started() -> None:
    clock = FakeClock()
    reporter = SpinnerReporter(io.StringIO(), color=False, clock=clock)
    reporter.started("a", {"id": "r-a", "status": "QUEUED"})
    clock.advance(65)
    reporter.polled("a", {"id": "r-a", "status": "RELOADING"}, 65)
    reporter.polled("unknown", {"status": "RELOADING"}, 1)  # ignored, not an error
    try:
        [(app, row)] = list(reporter.rows())
        assert (app, row.reload_id, row.status) == ("a", "r-a", "RELOADING")
        assert reporter.elapsed(row) == "1m05s"
    finally:
        reporter.close()
