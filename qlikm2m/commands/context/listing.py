"""``context ls``, ``use``, ``current``, ``clear`` and ``get``: reading and choosing contexts."""

from __future__ import annotations

from typing import Annotated

import typer

from qlikm2m.commands.completion import complete_context_names
from qlikm2m.commands.context.prompting import context_runtime
from qlikm2m.commands.context.shared import context_view, credential_store, emit
from qlikm2m.prompter import Prompter

# ---- listing and selection -------------------------------------------------------------------


def ls(ctx: typer.Context) -> None:
    """List contexts: name, server, auth type, whether current, comment."""
    from qlikm2m.contexts import load_contexts

    runtime = context_runtime(ctx)
    contexts = load_contexts(runtime.env)
    rows = [
        {
            "name": context.name,
            "server": context.server,
            "authType": context.auth_type,
            "current": context.name == contexts.current,
            "comment": context.comment,
        }
        for context in sorted(contexts.contexts.values(), key=lambda c: c.name)
    ]
    # A listing like `spaces ls`: a table for a person at a terminal, JSON in a pipe.
    emit(runtime, rows, listing=True)


def use(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="The context to make current.",
            autocompletion=complete_context_names,
        ),
    ],
) -> None:
    """Make NAME the current context (--context / QLIK_CONTEXT still win per command)."""
    runtime = context_runtime(ctx)
    credential_store(runtime).set_current(name)
    Prompter(runtime).say(f"Switched to context {name!r}.")


def current(ctx: typer.Context) -> None:
    """Print the name of the current context (exit 3 when none is set)."""
    from qlikm2m.contexts import load_contexts
    from qlikm2m.errors import ConfigError

    runtime = context_runtime(ctx)
    contexts = load_contexts(runtime.env)
    if contexts.current is None:
        raise ConfigError(
            "No current context is set.",
            hint="Pick one with `qlikm2m context use NAME` (see `qlikm2m context ls`).",
        )
    if runtime.output_explicit:
        emit(runtime, {"name": contexts.current})
    else:
        runtime.stdout.write(contexts.current + "\n")


def clear(ctx: typer.Context) -> None:
    """Unset the current context (the contexts themselves are kept)."""
    runtime = context_runtime(ctx)
    credential_store(runtime).set_current(None)
    Prompter(runtime).say("No context is current now.")


def get(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="Context (default: --context, $QLIK_CONTEXT, then the current one).",
            show_default=False,
            autocompletion=complete_context_names,
        ),
    ] = None,
) -> None:
    """Show a context: its settings with the secret masked, where the secret is, each value's source."""
    from dataclasses import replace

    from qlikm2m.contexts import load_contexts
    from qlikm2m.errors import ConfigError, QlikM2MError
    from qlikm2m.settings import resolve_settings

    runtime = context_runtime(ctx)
    contexts = load_contexts(runtime.env)
    chosen = (
        name or runtime.context or runtime.env.get("QLIK_CONTEXT", "").strip() or contexts.current
    )
    if not chosen:
        raise ConfigError(
            "No context given and none is current.",
            hint="Name one (`qlikm2m context get NAME`) or set one with `qlikm2m context use NAME`.",
        )
    context = contexts.get(chosen)
    view = context_view(context, contexts.current, runtime.env)
    try:
        # Without NAME, resolve exactly as any command would (--context, $QLIK_CONTEXT, current).
        resolved = resolve_settings(replace(runtime, context=name) if name else runtime)
        rows = resolved.describe()
        for row in rows:
            if name and row["name"] == "context":
                row["source"] = "argument NAME"
        view["settings"] = rows
    except QlikM2MError as error:
        view["settings"] = []
        view["settingsError"] = error.message
    emit(runtime, view)
