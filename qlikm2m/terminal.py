"""What is drawn for a person at a terminal: result tables and the live reload spinners.

The one module that imports rich, and only when a table or a spinner is actually drawn: never for
``--help``, a pipe or JSON output. ``reload --wait`` prints plain lines when not on a terminal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from qlikm2m.reloads import Outcome, ReloadResult, describe, format_duration

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.live import Live
    from rich.spinner import Spinner

    from qlikm2m.runtime import Runtime


_TABLE_MAX_COLUMNS = 8
_TABLE_CELL_WIDTH = 60


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= _TABLE_CELL_WIDTH else text[: _TABLE_CELL_WIDTH - 1] + "…"


def render_table(runtime: Runtime, data: Any) -> None:
    """A rich table for people: rows of a list of objects, or key/value pairs of one object."""
    from rich.console import Console
    from rich.table import Table

    color = runtime.color_for(runtime.stdout)
    console = Console(
        file=runtime.stdout,
        color_system="auto" if color else None,
        no_color=not color,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if data == []:
        # An empty frame says less than a sentence, and stdout stays empty for the pipe case.
        runtime.stderr.write("(no results)\n")
        return
    if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
        columns: list[str] = []
        for row in data[:50]:
            for key in row:
                if key not in columns and len(columns) < _TABLE_MAX_COLUMNS:
                    columns.append(key)
        table = Table(*columns, show_lines=False, header_style="bold" if color else None)
        for row in data:
            table.add_row(*(_cell(row.get(column)) for column in columns))
    elif isinstance(data, dict):
        table = Table("key", "value", header_style="bold" if color else None)
        for key, value in data.items():
            table.add_row(str(key), _cell(value))
    elif isinstance(data, list):
        table = Table("value", header_style="bold" if color else None)
        for value in data:
            table.add_row(_cell(value))
    else:
        runtime.stdout.write(("" if data is None else _cell(data)) + "\n")
        return
    console.print(table)


@dataclass
class _Row:
    reload_id: str
    status: str
    started_at: float
    spinner: Spinner


class SpinnerReporter:
    """A ``reloads.Reporter`` drawing spinners; finished reloads become permanent lines above."""

    def __init__(
        self, stream: TextIO, *, color: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        from rich.console import Console

        self._clock = clock
        self._console = Console(
            file=stream,
            force_terminal=True,
            color_system="auto" if color else None,
            no_color=not color,
            highlight=False,
            markup=False,
            emoji=False,
        )
        self._rows: dict[str, _Row] = {}
        self._live: Live | None = None

    def _ensure_live(self) -> None:
        if self._live is None:
            from rich.live import Live

            self._live = Live(
                _Board(self),
                console=self._console,
                refresh_per_second=8,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()

    def rows(self) -> Iterator[tuple[str, _Row]]:
        yield from list(self._rows.items())

    def elapsed(self, row: _Row) -> str:
        return format_duration(self._clock() - row.started_at)

    def started(self, app_id: str, record: Mapping[str, Any]) -> None:
        from rich.spinner import Spinner

        self._rows[app_id] = _Row(
            str(record.get("id")), str(record.get("status")), self._clock(), Spinner("dots")
        )
        self._ensure_live()

    def polled(self, app_id: str, record: Mapping[str, Any], elapsed: float) -> None:
        row = self._rows.get(app_id)
        if row is not None:
            row.status = str(record.get("status"))

    def finished(self, result: ReloadResult) -> None:
        self._rows.pop(result.app_id, None)
        if result.outcome in (Outcome.STARTED, Outcome.NOT_STARTED, Outcome.INTERRUPTED):
            return
        mark = "✓" if result.outcome is Outcome.SUCCEEDED else "✗"
        style = "green" if result.outcome is Outcome.SUCCEEDED else "red"
        from rich.text import Text

        self._console.print(Text(f"{mark} {describe(result)}", style=style))

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


class _Board:
    """Re-rendered on every refresh, so the elapsed time ticks between two polls."""

    def __init__(self, reporter: SpinnerReporter) -> None:
        self._reporter = reporter

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        now = console.get_time()
        for app_id, row in self._reporter.rows():
            frame = row.spinner.render(now)
            line = Text.assemble(
                frame if isinstance(frame, Text) else Text(str(frame)),
                f" {row.status} {self._reporter.elapsed(row)}  app {app_id}  reload {row.reload_id}",
            )
            # One line per reload whatever the width: the ids at the end give way first.
            line.no_wrap = True
            line.overflow = "ellipsis"
            yield line


def render_markdown(runtime: Runtime, text: str) -> None:
    """A Markdown guide (`qlikm2m help TOPIC`) rendered for a person at a terminal."""
    from rich.console import Console
    from rich.markdown import Markdown

    console = Console(file=runtime.stdout, no_color="NO_COLOR" in runtime.env)
    console.print(Markdown(text))
