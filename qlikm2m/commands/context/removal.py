"""``context rm`` and ``context rename``: each one transaction of the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from qlikm2m.commands.completion import complete_context_names
from qlikm2m.commands.context.options import ForceOpt
from qlikm2m.commands.context.prompting import context_runtime
from qlikm2m.commands.context.shared import context_view, credential_store, emit, say_warnings
from qlikm2m.commands.run_options import ContextRun
from qlikm2m.prompter import Prompter


@dataclass(frozen=True, kw_only=True)
class RmOptions(ContextRun):
    name: str
    force: bool = False


def run_rm(options: RmOptions) -> None:
    """Delete a context, its secret and the tokens minted with it; print ``{removed,
    secretDeleted, droppedTokens}``. ConfigError for an unknown name; with ``force`` a secret
    that cannot be removed is a warning, not an error."""
    from qlikm2m.credstore import Slot

    runtime, name = options.runtime, options.name
    prompter = Prompter(runtime)
    store = credential_store(runtime)
    context = store.load().get(name)
    outcome = store.remove(name, force=options.force)
    say_warnings(prompter, outcome)
    prompter.say(f"Deleted context {name!r}.")
    secret_deleted = outcome.deleted.get(Slot.of(context), False)
    emit(
        runtime,
        {"removed": name, "secretDeleted": secret_deleted, "droppedTokens": outcome.dropped},
    )


def rm(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="The context to delete.", autocompletion=complete_context_names
        ),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force", "-f", help="Delete the context even if its keyring entry cannot be removed."
        ),
    ] = False,
) -> None:
    """Delete a context, its keyring entry (or secret file) and its cached tokens.

    Only the tokens minted with this context's secret go: other contexts of the same client
    keep theirs.
    """
    run_rm(RmOptions(context_runtime(ctx), name=name, force=force))


@dataclass(frozen=True, kw_only=True)
class RenameOptions(ContextRun):
    old_name: str
    new_name: str
    force: bool = False


def run_rename(options: RenameOptions) -> None:
    """Rename a context (its secret moves along); print its view with ``renamedFrom``.
    UsageError for a bad or unchanged name, or a taken one without ``force``."""
    from qlikm2m.contexts import validate_name
    from qlikm2m.errors import UsageError

    runtime, old_name, new_name, force = (
        options.runtime,
        options.old_name,
        options.new_name,
        options.force,
    )
    prompter = Prompter(runtime)
    validate_name(new_name)
    if old_name == new_name:
        raise UsageError("The old and new names are the same.")
    store = credential_store(runtime)
    contexts = store.load()
    contexts.get(old_name)
    if new_name in contexts.contexts and not force:
        raise UsageError(
            f"A context named {new_name!r} already exists.", hint="Pass --force to replace it."
        )
    outcome = store.rename(old_name, new_name, replace_existing=force)
    say_warnings(prompter, outcome)
    prompter.say(
        f"Renamed {old_name!r} to {new_name!r}. Cached tokens belong to the context's credentials, "
        "not to its name, so they stay valid for the new name."
    )
    view = context_view(outcome.after.get(new_name), outcome.after.current, runtime.env)
    view["renamedFrom"] = old_name
    emit(runtime, view)


def rename(
    ctx: typer.Context,
    old_name: Annotated[
        str,
        typer.Argument(
            metavar="OLD", help="The current name.", autocompletion=complete_context_names
        ),
    ],
    new_name: Annotated[str, typer.Argument(metavar="NEW", help="The new name.")],
    force: ForceOpt = False,
) -> None:
    """Rename a context; its secret moves to the new name. Cached tokens stay valid."""
    run_rename(
        RenameOptions(context_runtime(ctx), old_name=old_name, new_name=new_name, force=force)
    )
