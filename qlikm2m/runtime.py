"""The run-time environment of one invocation: global options, terminal facts and environment.

Commands receive it as ``ctx.obj``; tests build one with explicit values instead of patching
``sys`` or ``os.environ``.

Mutable state that modules would otherwise keep in globals (the secrets to redact, loaded keyring
backends) lives in the current ``RunScope`` instead: ``cli.main`` opens one per invocation with
``open_run()``, so several runs in one process (the test suite, a host embedding the CLI) never
see each other's secrets or caches.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO, TypeVar, cast

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

OUTPUT_FORMATS = ("json", "yaml", "table", "text")
OUTPUT_ENV = "QLIKM2M_OUTPUT"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


class Runtime:
    """Everything a command may ask about where it runs, set once per invocation: the
    environment (default: a copy of ``os.environ``), the three standard streams (default: this
    process's) and the global options, filled in by the root command (``context``, the ``-o``
    value as ``output_flag``, ``query``, ``verbose``, ``no_input``).

    A plain class, not a dataclass: every command builds one at start-up, and the hottest
    commands import no ``dataclasses`` at all (issue 14; benchmarks/README.md).
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        *,
        context: str | None = None,
        output_flag: str | None = None,
        query: str | None = None,
        verbose: int = 0,
        no_input: bool = False,
    ) -> None:
        self.env: Mapping[str, str] = dict(os.environ) if env is None else env
        self.stdin: TextIO = sys.stdin if stdin is None else stdin
        self.stdout: TextIO = sys.stdout if stdout is None else stdout
        self.stderr: TextIO = sys.stderr if stderr is None else stderr
        self.context = context
        self.output_flag = output_flag
        self.query = query
        self.verbose = verbose
        self.no_input = no_input

    def with_context(self, name: str | None) -> Runtime:
        """A copy of this runtime (same class, streams, environment and options) with
        ``context`` set to ``name``."""
        import copy

        clone = copy.copy(self)
        clone.context = name
        return clone

    def __repr__(self) -> str:
        # Never the environment: it holds secrets (QLIK_CLIENT_SECRET).
        return (
            f"{type(self).__name__}(context={self.context!r}, output_flag={self.output_flag!r}, "
            f"query={self.query!r}, verbose={self.verbose!r}, no_input={self.no_input!r})"
        )

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


class RunScope:
    """The mutable state of one run: values created on first use, dropped when the run ends.

    Scopes nest (a run opened inside another, a test around a run): ``chain()`` yields this
    scope and then the enclosing ones, innermost first, for state that a run should also see
    from its callers (redaction masks what the caller registered too, never less).
    """

    def __init__(self, parent: RunScope | None = None) -> None:
        self.parent = parent
        self._values: dict[str, Any] = {}
        self._lock = threading.Lock()

    def local(self, key: str, factory: Callable[[], T]) -> T:
        """This scope's value under ``key``, created with ``factory()`` on first use."""
        with self._lock:
            if key not in self._values:
                self._values[key] = factory()
            return cast(T, self._values[key])

    def peek(self, key: str) -> Any | None:
        """This scope's value under ``key`` if it was ever created, else None (creates nothing)."""
        with self._lock:
            return self._values.get(key)

    def chain(self) -> Iterator[RunScope]:
        scope: RunScope | None = self
        while scope is not None:
            yield scope
            scope = scope.parent


# Code that runs outside any run (the sandbox, a library caller) shares this one scope.
_PROCESS_SCOPE = RunScope()
_current_scope: ContextVar[RunScope] = ContextVar("qlikm2m_run_scope")


def current_run() -> RunScope:
    """The innermost open run scope of this context (threads started with a copied context see
    their starter's), or the process-wide scope when no run is open."""
    return _current_scope.get(_PROCESS_SCOPE)


@contextmanager
def open_run() -> Iterator[RunScope]:
    """Open a fresh scope nested in the current one for the duration of the ``with`` block."""
    scope = RunScope(current_run())
    token = _current_scope.set(scope)
    try:
        yield scope
    finally:
        _current_scope.reset(token)


class RunLocalDict(MutableMapping[K, V]):
    """A dict that each run gets afresh: a drop-in for a module-level cache dict whose entries
    must not outlive the run that filled them."""

    def __init__(self, key: str) -> None:
        self._key = key

    def current(self) -> dict[K, V]:
        """The current run's dict (pass it to threads that do not share the run's context)."""
        return current_run().local(self._key, dict)

    def __getitem__(self, key: K) -> V:
        return self.current()[key]

    def __setitem__(self, key: K, value: V) -> None:
        self.current()[key] = value

    def __delitem__(self, key: K) -> None:
        del self.current()[key]

    def __iter__(self) -> Iterator[K]:
        return iter(list(self.current()))

    def __len__(self) -> int:
        return len(self.current())
