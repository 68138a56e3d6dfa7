"""``context import-qlik-cli``: qlik-cli's contexts, all or nothing, as one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from qlikm2m.commands.context.options import StorageOpt
from qlikm2m.commands.context.prompting import context_runtime
from qlikm2m.commands.context.shared import credential_store, emit, say_warnings
from qlikm2m.commands.run_options import ContextRun
from qlikm2m.prompter import Prompter

if TYPE_CHECKING:
    from qlikm2m.contexts import SecretStorage

# ---- import from qlik-cli --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ImportOptions(ContextRun):
    """``path`` None: qlik-cli's default file (~/.qlik/contexts.yml)."""

    path: str | None = None
    dry_run: bool = False
    force: bool = False
    storage: SecretStorage = "keyring"


def run_import_qlik_cli(options: ImportOptions) -> None:
    """Import qlik-cli's contexts in one transaction (or with ``dry_run`` only list them);
    print ``{source, dryRun, imported, skipped, current}``. The qlik-cli file is only read.
    Raises the storage error (exit 7) when the secrets cannot be stored, after a dry run's
    listing too.
    """
    from pathlib import Path

    from qlikm2m.contexts import load_contexts
    from qlikm2m.errors import QlikM2MError
    from qlikm2m.qlikcli_import import default_path, read_qlik_cli_contexts
    from qlikm2m.secretstore import check_storage, describe_location

    runtime, dry_run, force, storage = (
        options.runtime,
        options.dry_run,
        options.force,
        options.storage,
    )
    prompter = Prompter(runtime)
    source = Path(options.path).expanduser() if options.path else default_path(runtime.env)
    found = read_qlik_cli_contexts(source, secret_storage=storage)
    existing = load_contexts(runtime.env)
    skipped = [{"name": entry.name, "reason": entry.reason} for entry in found.skipped]
    chosen = []
    for candidate in found.candidates:
        if candidate.context.name in existing.contexts and not force:
            skipped.append(
                {
                    "name": candidate.context.name,
                    "reason": "a qlikm2m context of that name exists (--force replaces it)",
                }
            )
        else:
            chosen.append(candidate)
    make_current = (
        existing.current is None
        and found.current is not None
        and any(candidate.context.name == found.current for candidate in chosen)
    )
    storage_problem: QlikM2MError | None = None
    if chosen and dry_run:
        # A dry run lists what it would do, then fails the way the import would (exit 7 with
        # the remedies) when the secrets could not be stored.
        try:
            check_storage(chosen[0].context, runtime.env, interactive=runtime.can_prompt)
        except QlikM2MError as problem:
            storage_problem = problem
    if chosen and not dry_run:
        check_storage(chosen[0].context, runtime.env, interactive=runtime.can_prompt)
        if storage == "file":
            prompter.say(
                "warning: the imported secrets are stored unencrypted in 0600 files, as asked "
                "with --secret-storage file."
            )
        outcome = credential_store(runtime).import_contexts(
            [(candidate.context, candidate.secret) for candidate in chosen],
            current=found.current if make_current else None,
            replace_existing=force,
        )
        say_warnings(prompter, outcome)
    imported = [
        {
            "name": candidate.context.name,
            "server": candidate.context.server,
            "authType": candidate.context.auth_type,
            "secretLocation": describe_location(candidate.context, runtime.env).description,
            "notes": list(candidate.notes),
        }
        for candidate in chosen
    ]
    verb = "Would import" if dry_run else "Imported"
    prompter.say(f"{verb} {len(imported)} context(s) from {source}; skipped {len(skipped)}.")
    for entry in skipped:
        prompter.say(f"  skipped {entry['name']!r}: {entry['reason']}")
    if chosen and not dry_run:
        prompter.say(
            f"qlik-cli still keeps these secrets in plaintext in {source}; remove them there once "
            "you no longer use qlik-cli."
        )
    emit(
        runtime,
        {
            "source": str(source),
            "dryRun": dry_run,
            "imported": imported,
            "skipped": skipped,
            "current": found.current if make_current else None,
        },
    )
    if storage_problem is not None:
        raise storage_problem


def import_qlik_cli(
    ctx: typer.Context,
    path: Annotated[
        str | None,
        typer.Argument(
            metavar="PATH",
            help="qlik-cli's contexts file (default: ~/.qlik/contexts.yml).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be imported; change nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Replace qlikm2m contexts of the same name.")
    ] = False,
    secret_storage: StorageOpt = None,
) -> None:
    """Import qlik-cli's contexts (API key and M2M OAuth); secrets go to the keyring.

    The qlik-cli file is only read, never changed. Nothing is verified against the tenants.
    """
    storage: SecretStorage = secret_storage.value if secret_storage else "keyring"
    run_import_qlik_cli(
        ImportOptions(
            context_runtime(ctx), path=path, dry_run=dry_run, force=force, storage=storage
        )
    )
