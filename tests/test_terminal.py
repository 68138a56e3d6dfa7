"""What a person at a terminal sees: tables of results and the reload spinners, in-process."""

from __future__ import annotations

import io
import re

import pytest
from harness import FakeClock, TerminalStream, make_runtime

from qlikm2m.reloads import Outcome, ReloadResult
from qlikm2m.terminal import SpinnerReporter, render_table

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _table(data: object, **options: object) -> tuple[str, str]:
    runtime = make_runtime(NO_COLOR="1", **options)  # type: ignore[arg-type]
    render_table(runtime, data)
    return runtime.out, runtime.err


def _rows(text: str) -> list[list[str]]:
    """The cells of each line that has any, whatever box-drawing characters draw the frame."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in re.split(r"[\u2500-\u257f|]", line)]
        if any(cells):
            rows.append([cell for cell in cells if cell])
    return rows


def test_a_list_of_objects_is_one_row_each_with_columns_in_first_seen_order() -> None:
    out, err = _table([{"id": "a", "name": "first"}, {"name": "second", "id": "b", "extra": 1}])
    assert _rows(out) == [
        ["id", "name", "extra"],
        ["a", "first"],  # a missing value is an empty cell
        ["b", "second", "1"],
    ]
    assert err == ""
    assert not ANSI.search(out)


def test_a_list_page_is_shown_by_its_data_array() -> None:
    out, _ = _table({"data": [{"id": "a"}], "links": {"next": None}})
    assert _rows(out) == [["id"], ["a"]]


def test_no_results_is_a_sentence_on_stderr_and_nothing_on_stdout() -> None:
    out, err = _table({"data": []})
    assert (out, err) == ("", "(no results)\n")


def test_one_object_is_key_value_pairs_with_nested_values_as_compact_json() -> None:
    out, _ = _table({"id": "t1", "enabled": True, "tags": ["x", "y"], "owner": None})
    assert _rows(out) == [
        ["key", "value"],
        ["id", "t1"],
        ["enabled", "true"],
        ["tags", '["x","y"]'],
        ["owner"],
    ]


def test_a_list_of_plain_values_is_one_column() -> None:
    out, _ = _table(["a", 2, None])
    assert _rows(out) == [["value"], ["a"], ["2"]]


@pytest.mark.parametrize(("data", "line"), [("plain", "plain\n"), (None, "\n"), (3.5, "3.5\n")])
def test_a_single_value_is_one_line_without_a_frame(data: object, line: str) -> None:
    assert _table(data) == (line, "")


def test_long_and_multi_line_cells_are_cut_to_one_line_of_60_characters() -> None:
    out, _ = _table([{"text": "word\nnext   line " + "x" * 100}])
    cell = _rows(out)[1][0]
    assert cell.startswith("word next line x")
    assert cell.endswith("…")
    assert len(cell) == 60


def test_at_most_eight_columns() -> None:
    out, _ = _table([{f"c{n}": n for n in range(12)}])
    assert _rows(out)[0] == [f"c{n}" for n in range(8)]


def test_colour_only_on_a_terminal_without_no_color() -> None:
    coloured = make_runtime(tty=True)
    render_table(coloured, [{"id": "a"}])
    assert ANSI.search(coloured.out)
    plain = make_runtime(tty=True, NO_COLOR="1")
    render_table(plain, [{"id": "a"}])
    assert not ANSI.search(plain.out)


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
