"""What is drawn for a person at a terminal: the live reload spinners.

The one module that imports rich, and only when a spinner is actually drawn: never for
``--help``, a pipe, a table or JSON output. ``reload --wait`` prints plain lines when not on a terminal.
"""

from __future__ import annotations

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
