"""`qlikm2m sandbox serve`: the sandbox's own argument parser, mounted under the root command.

The options live in one place (qlikm2m/sandbox/cli.py) so that `python -m qlikm2m.sandbox` and this
command cannot drift apart; `--help` here prints that parser's help.
"""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    group = typer.Typer(
        name="sandbox",
        help="A local Qlik Cloud tenant for tests, demos and dry runs of CI scripts.",
        no_args_is_help=True,
    )

    @group.command(
        "serve",
        add_help_option=False,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help="Serve a sandbox tenant until Ctrl-C; prints QLIK_* lines first "
        "(all options: qlikm2m sandbox serve --help).",
    )
    def serve(ctx: typer.Context) -> None:
        from qlikm2m.sandbox.cli import main

        code = main(list(ctx.args), prog="qlikm2m sandbox serve")
        if code:
            raise typer.Exit(code)

    root.add_typer(group)
