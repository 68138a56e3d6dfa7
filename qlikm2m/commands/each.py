"""`qlikm2m each PATTERN -- COMMAND...`: one command for every matching context, in parallel."""

from __future__ import annotations

from typing import Annotated

import typer

from qlikm2m.commands.tenant_options import runtime_of

_DEFAULT_PARALLEL = 4  # qlikm2m.fanout.DEFAULT_PARALLEL; not imported: --help stays light


def register(root: typer.Typer) -> None:
    @root.command(
        "each",
        # Options end at the pattern: what follows is the command's, -o and -c included.
        context_settings={"allow_interspersed_args": False},
    )
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
        from qlikm2m.errors import UsageError
        from qlikm2m.fanout import matching_targets, run_each

        runtime = runtime_of(ctx)
        if command and command[0] == "--":
            command = command[1:]
        if not command:
            raise UsageError("No command to run.", hint="e.g. qlikm2m each 'prod-*' -- tenant me")
        if command[0] in ("each", "exec"):
            raise UsageError(f"`{command[0]}` cannot run under `each`.")
        targets = matching_targets(runtime.env, pattern)
        outcome = run_each(
            targets,
            command,
            env=runtime.env,
            stdout=runtime.stdout,
            stderr=runtime.stderr,
            parallel=parallel,
            fail_fast=fail_fast,
        )
        raise typer.Exit(outcome.worst)
