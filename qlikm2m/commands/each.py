"""`qlikm2m each PATTERN -- COMMAND...`: one command for every matching context, in parallel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from qlikm2m.commands.tenant_options import runtime_of

if TYPE_CHECKING:
    from qlikm2m.runtime import Runtime

_DEFAULT_PARALLEL = 4  # qlikm2m.fanout.DEFAULT_PARALLEL; not imported: --help stays light


@dataclass(frozen=True, kw_only=True)
class EachOptions:
    runtime: Runtime
    pattern: str  # context names, shell-style
    command: list[str]  # the qlikm2m command and its arguments (a leading `--` is dropped)
    parallel: int = _DEFAULT_PARALLEL
    fail_fast: bool = False


def run_each(options: EachOptions) -> int:
    """Run a qlikm2m command for every context matching the pattern; the highest exit code.

    ``options`` is the command line of ``each``, parsed; nothing here knows Typer.
    """
    from qlikm2m.errors import UsageError
    from qlikm2m.fanout import matching_targets
    from qlikm2m.fanout import run_each as run_for_each

    runtime, pattern, command = options.runtime, options.pattern, options.command
    parallel, fail_fast = options.parallel, options.fail_fast
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("No command to run.", hint="e.g. qlikm2m each 'prod-*' -- tenant me")
    if command[0] in ("each", "exec"):
        raise UsageError(f"`{command[0]}` cannot run under `each`.")
    targets = matching_targets(runtime.env, pattern)
    outcome = run_for_each(
        targets,
        command,
        env=runtime.env,
        stdout=runtime.stdout,
        stderr=runtime.stderr,
        parallel=parallel,
        fail_fast=fail_fast,
    )
    return int(outcome.worst)


def each(
    ctx: typer.Context,
    pattern: Annotated[
        str,
        typer.Argument(
            help="Context names to run for, shell-style: 'prod-*', 'eu-?', '[ab]*' (quote it).",
            metavar="PATTERN",
            show_default=False,
        ),
    ],
    command: Annotated[
        list[str],
        typer.Argument(
            help="The qlikm2m command and its arguments, after `--`.",
            metavar="COMMAND [ARGS]...",
            show_default=False,
        ),
    ],
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel",
            "-p",
            help="Commands run at once (never two for the same tenant server).",
            min=1,
            max=32,
        ),
    ] = _DEFAULT_PARALLEL,
    fail_fast: Annotated[
        bool,
        typer.Option(
            "--fail-fast",
            help="After the first failure start no more commands (running ones finish).",
        ),
    ] = False,
) -> None:
    """Run a qlikm2m command for every context matching PATTERN.

    One NDJSON line per context on stdout, in the contexts' sorted order: context, server,
    exitCode, and result (the command's JSON output) and/or error (its JSON error). A summary
    goes to stderr; the exit code is the highest of the commands' (0: all succeeded).

    e.g. qlikm2m each 'prod-*' -- tenant me
    """
    options = EachOptions(
        runtime=runtime_of(ctx),
        pattern=pattern,
        command=command,
        parallel=parallel,
        fail_fast=fail_fast,
    )
    raise typer.Exit(run_each(options))


def register(root: typer.Typer) -> None:
    root.command(
        "each",
        # Options end at the pattern: what follows is the command's, -o and -c included.
        context_settings={"allow_interspersed_args": False},
    )(each)
