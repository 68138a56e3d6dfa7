"""Helpers the app delivery commands share: printing one record, upload progress, confirmation.

Only Typer and the standard library at import time: these modules are loaded for ``--help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from qlikm2m.runtime import Runtime
    from qlikm2m.transfer import Progress

ChunkOpt = Annotated[
    int | None,
    typer.Option(
        "--chunk-size",
        help="Bytes per upload request (default 16 MiB); a dropped connection costs at most one.",
        show_default=False,
    ),
]
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask; required without a terminal.")
]


def chunk_size(value: int | None) -> int:
    from qlikm2m.transfer import DEFAULT_CHUNK_SIZE

    return DEFAULT_CHUNK_SIZE if value is None else value


def progress_for(runtime: Runtime, what: str) -> Progress | None:
    """A one-line progress meter on a terminal's stderr; nothing in scripts."""
    if not runtime.stderr_is_tty:
        return None
    stream = runtime.stderr

    def show(done: int, total: int) -> None:
        percent = 100 if total == 0 else done * 100 // total
        stream.write(f"\r{what}: {percent}% ({done / 1048576:.1f} of {total / 1048576:.1f} MiB)")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def confirm(runtime: Runtime, question: str, *, yes: bool) -> None:
    """Go on when ``yes`` or when a person at a terminal says so (``y``/``yes``; anything else is
    no). Raises UsageError when nobody can answer, Interrupted (exit 130) on no, KeyboardInterrupt
    at end of input."""
    from qlikm2m.errors import Interrupted, UsageError

    if yes:
        return
    if not runtime.can_prompt:
        raise UsageError(
            f"{question} Refusing without --yes when nobody can answer (no terminal, CI or "
            "--no-input)."
        )
    from qlikm2m.prompter import Prompter

    # On the runtime's streams, not Typer's: run functions are called without a command line.
    if not Prompter(runtime).confirm(question):
        raise Interrupted("Nothing was done: the answer was no.")


def emit(runtime: Runtime, record: Any) -> None:
    from qlikm2m.output import Output

    Output(runtime).emit(record)
