"""The run-time environment of one invocation: global options, terminal facts and environment.

Commands receive it as ``ctx.obj``; tests build one with explicit values instead of patching
``sys`` or ``os.environ``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

OUTPUT_FORMATS = ("json", "yaml", "table", "text")
OUTPUT_ENV = "QLIKM2M_OUTPUT"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


@dataclass
class Runtime:
    """Everything a command may ask about where it runs, set once per invocation."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    # Global options, filled in by the root callback.
    context: str | None = None
    output_flag: str | None = None
    query: str | None = None
    verbose: int = 0
    no_input: bool = False

    @staticmethod
    def _isatty(stream: TextIO) -> bool:
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def stdin_is_tty(self) -> bool:
        return self._isatty(self.stdin)

    @property
    def stdout_is_tty(self) -> bool:
        return self._isatty(self.stdout)

    @property
    def stderr_is_tty(self) -> bool:
        return self._isatty(self.stderr)

    @property
    def in_ci(self) -> bool:
        return _truthy(self.env.get("CI"))

    @property
    def can_prompt(self) -> bool:
        """Prompts are allowed only for a person at a terminal: never under --no-input or CI."""
        return not self.no_input and not self.in_ci and self.stdin_is_tty

    @property
    def output(self) -> str:
        """The output format: the -o flag, else $QLIKM2M_OUTPUT, else json."""
        chosen = self.output_flag or self.env.get(OUTPUT_ENV, "").strip().lower()
        return chosen if chosen in OUTPUT_FORMATS else "json"

    @property
    def output_explicit(self) -> bool:
        """True when the user asked for a format; then errors are JSON too when it is json."""
        return bool(self.output_flag or self.env.get(OUTPUT_ENV, "").strip())

    @property
    def json_errors(self) -> bool:
        return self.output_explicit and self.output == "json"

    def color_for(self, stream: TextIO) -> bool:
        """Colour only on a terminal and never when NO_COLOR is set (https://no-color.org)."""
        if "NO_COLOR" in self.env:
            return False
        return self._isatty(stream)
