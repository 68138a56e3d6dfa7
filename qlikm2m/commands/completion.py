"""`qlikm2m completion SHELL`: the shell's completion script on stdout, and the completers of
context names and app ids that the options and arguments use.

The script calls ``qlikm2m`` with ``_QLIKM2M_COMPLETE=complete_<shell>`` on each <TAB> (Typer's
protocol); these completers run then, so they read only local files: the contexts file (never the
keyring) and the app ids the last ``apps ls`` left in the cache (qlikm2m.completion_cache). They
never call the network, and a broken file completes nothing rather than failing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

import typer

PROG_NAME = "qlikm2m"
COMPLETE_VAR = "_QLIKM2M_COMPLETE"


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


def _env(ctx: typer.Context | None) -> Mapping[str, str]:
    from qlikm2m.runtime import Runtime

    runtime = ctx.find_object(Runtime) if ctx is not None else None
    return runtime.env if runtime is not None else os.environ


def complete_context_names(ctx: typer.Context | None, incomplete: str) -> list[str]:
    """Names of the stored contexts starting with ``incomplete``, sorted; [] on any problem.

    Attach to any option or argument that takes a context name (``-c``, ``context use NAME``)
    with ``autocompletion=complete_context_names``.
    """
    from qlikm2m.contexts import load_contexts
    from qlikm2m.errors import QlikM2MError

    try:
        names = load_contexts(_env(ctx)).contexts
    except (QlikM2MError, OSError):
        return []
    return sorted(name for name in names if name.startswith(incomplete))


def complete_app_ids(ctx: typer.Context | None, incomplete: str) -> list[tuple[str, str]]:
    """``(app id, app name)`` pairs from the last ``apps ls`` (a few minutes old at most)."""
    from qlikm2m.completion_cache import recent_app_ids

    return [
        (app_id, name)
        for app_id, name in recent_app_ids(_env(ctx))
        if app_id.startswith(incomplete) or name.lower().startswith(incomplete.lower())
    ]


def completion_script(shell: Shell) -> str:
    """The completion script of ``shell`` for the ``qlikm2m`` command (Typer's templates)."""
    # Typer keeps its script templates and shell classes in private modules; typer is pinned
    # below 0.29 in pyproject.toml, and tests/test_completion.py runs each script.
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell.value)


def register(root: typer.Typer) -> None:
    @root.command("completion")
    def completion(
        shell: Annotated[Shell, typer.Argument(help="The shell to print the script for.")],
    ) -> None:
        """Print the shell completion script for SHELL (bash, zsh, fish or powershell).

        Load it in the current shell with `source <(qlikm2m completion bash)`, or save it where
        your shell reads completions, e.g. `qlikm2m completion zsh > ~/.zfunc/_qlikm2m`
        (details: `qlikm2m help completion`).
        """
        import sys

        sys.stdout.write(completion_script(shell) + "\n")
