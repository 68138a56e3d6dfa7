"""``qlikm2m context ...``: qlik-cli's context commands, with the secret in the OS keyring.

Secrets come only from hidden prompts, stdin (``--client-secret-stdin``, ``--api-key-stdin``) or a
named environment variable (``--client-secret-env``, ``--api-key-env``), never from argv. Every
change goes through one transaction of ``qlikm2m.credstore``; the commands here only ask, check
and render. Core modules are imported inside the commands so that ``--help`` stays cheap.
"""

from __future__ import annotations

import typer

from qlikm2m.commands.context.create import create, init
from qlikm2m.commands.context.importing import import_qlik_cli
from qlikm2m.commands.context.listing import clear, current, get, ls, use
from qlikm2m.commands.context.removal import rename, rm
from qlikm2m.commands.context.update import update
from qlikm2m.commands.tenant_options import output_command

__all__ = ["register"]


def register(root: typer.Typer) -> None:
    app = typer.Typer(
        name="context",
        help="Named tenant settings (like qlik-cli's contexts), with secrets in the OS keyring.",
        no_args_is_help=True,
    )
    app.command("init")(output_command(init))
    app.command("create")(output_command(create))
    app.command("update")(output_command(update))
    app.command("ls")(output_command(ls))
    app.command("use")(output_command(use))
    app.command("current")(output_command(current))
    app.command("clear")(output_command(clear))
    app.command("get")(output_command(get))
    app.command("rm")(output_command(rm))
    app.command("rename")(output_command(rename))
    app.command("import-qlik-cli")(output_command(import_qlik_cli))
    root.add_typer(app, name="context")
