"""YAML in and out: ``-o yaml`` output and reading qlik-cli's contexts file.

The one module that imports PyYAML; it is itself imported only when YAML is written or read.
Always the safe loader and dumper: a contexts file is input we did not write.
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlSyntaxError(ValueError):
    """Text that is not YAML. Carries the place and the problem, never a snippet of the text:
    the file being read may hold plaintext secrets."""

    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(problem if line is None else f"line {line}: {problem}")
        self.line = line
        self.problem = problem


def dump(data: Any, *, allow_unicode: bool = True) -> str:
    """YAML text; ``allow_unicode=False`` escapes non-ASCII text inside double quotes."""
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=allow_unicode, default_flow_style=False
    )


def load(raw: bytes | str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or type(error).__name__
        raise YamlSyntaxError(mark.line + 1 if mark is not None else None, problem) from None
