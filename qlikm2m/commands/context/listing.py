"""``context ls``, ``use``, ``current``, ``clear`` and ``get``: reading and choosing contexts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from qlikm2m.commands.completion import complete_context_names
from qlikm2m.commands.context.prompting import context_runtime
from qlikm2m.commands.context.shared import context_view, credential_store, emit
from qlikm2m.commands.run_options import ContextRun
from qlikm2m.prompter import Prompter

# ---- listing and selection -------------------------------------------------------------------


@dataclass(frozen=True)
class LsOptions(ContextRun):
    """``context ls`` takes nothing of its own."""


def run_ls(options: LsOptions) -> None:
    """Print the contexts, sorted by name: ``[{name, server, authType, current, comment}]``."""
    from qlikm2m.contexts import load_contexts

    runtime = options.runtime
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


def ls(ctx: typer.Context) -> None:
    """List contexts: name, server, auth type, whether current, comment."""
    run_ls(LsOptions(context_runtime(ctx)))


@dataclass(frozen=True, kw_only=True)
class UseOptions(ContextRun):
    name: str


def run_use(options: UseOptions) -> None:
    """Make ``name`` the current context (ConfigError when there is no such context)."""
    runtime = options.runtime
    credential_store(runtime).set_current(options.name)
    Prompter(runtime).say(f"Switched to context {options.name!r}.")


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
    run_use(UseOptions(context_runtime(ctx), name=name))


@dataclass(frozen=True)
class CurrentOptions(ContextRun):
    """``context current`` takes nothing of its own."""


def run_current(options: CurrentOptions) -> None:
    """Print the current context's name (a plain line, or ``{name}`` with an explicit -o);
    ConfigError (exit 3) when none is set."""
    from qlikm2m.contexts import load_contexts
    from qlikm2m.errors import ConfigError

    runtime = options.runtime
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


def current(ctx: typer.Context) -> None:
    """Print the name of the current context (exit 3 when none is set)."""
    run_current(CurrentOptions(context_runtime(ctx)))


@dataclass(frozen=True)
class ClearOptions(ContextRun):
    """``context clear`` takes nothing of its own."""


def run_clear(options: ClearOptions) -> None:
    """Unset the current context; the contexts themselves are kept."""
    runtime = options.runtime
    credential_store(runtime).set_current(None)
    Prompter(runtime).say("No context is current now.")


def clear(ctx: typer.Context) -> None:
    """Unset the current context (the contexts themselves are kept)."""
    run_clear(ClearOptions(context_runtime(ctx)))


@dataclass(frozen=True, kw_only=True)
class GetOptions(ContextRun):
    """``name`` None: the context any command would use (--context, $QLIK_CONTEXT, current)."""

    name: str | None = None


def run_get(options: GetOptions) -> None:
    """Print one context: its settings (secret masked), where its secret is, each value's
    source, or ``settingsError`` when they do not resolve; ConfigError when none is chosen."""
    from qlikm2m.contexts import load_contexts
    from qlikm2m.errors import ConfigError, QlikM2MError
    from qlikm2m.settings import resolve_settings

    runtime, name = options.runtime, options.name
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
        resolved = resolve_settings(runtime.with_context(name) if name else runtime)
        rows = resolved.describe()
        for row in rows:
            if name and row["name"] == "context":
                row["source"] = "argument NAME"
        view["settings"] = rows
    except QlikM2MError as error:
        view["settings"] = []
        view["settingsError"] = error.message
    emit(runtime, view)


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
    run_get(GetOptions(context_runtime(ctx), name=name))
