"""The shape of the command line: shared options declared once and offered everywhere, metavars
that say what an option takes, and `qlikm2m help`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer.main

from qlikm2m import cli

GLOBAL_FLAGS = {"--context", "--output", "--query", "--verbose", "--no-input"}
CONNECTION_FLAGS = {
    "--server",
    "--client-id",
    "--client-secret-stdin",
    "--scope",
    "--ca-bundle",
    "--impersonate",
    "--no-token-cache",
    "--connect-timeout",
    "--read-timeout",
}
# Commands that take no shared options: they print a script or help, or pass words on.
WITHOUT_SHARED = {"completion", "help", "sandbox serve"}


def _tree() -> tuple[Any, Any]:
    cli.register_commands(None)
    root = typer.main.get_command(cli.app)
    return root, typer.Context(root, info_name="qlikm2m")


def _commands(group: Any, ctx: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        sub = typer.Context(command, info_name=name, parent=ctx)
        path = f"{prefix}{name}"
        if hasattr(command, "list_commands"):
            yield from _commands(command, sub, path + " ")
        else:
            yield path, command, sub


def _flags(command: Any) -> set[str]:
    return {flag for param in command.params for flag in getattr(param, "opts", [])}


def test_the_root_takes_every_shared_option() -> None:
    root, _ = _tree()
    assert _flags(root) >= GLOBAL_FLAGS | CONNECTION_FLAGS


def test_every_command_takes_the_global_options_and_tenant_commands_the_connection_ones() -> None:
    root, ctx = _tree()
    for path, command, _ in _commands(root, ctx):
        if path in WITHOUT_SHARED:
            continue
        flags = _flags(command)
        assert flags >= GLOBAL_FLAGS, path
        if "--client-secret-stdin" in flags and not path.startswith("context"):
            assert flags >= CONNECTION_FLAGS, path


def test_no_help_shows_a_bare_type_for_a_metavar() -> None:
    root, ctx = _tree()
    pages = [("qlikm2m", root.get_help(ctx))]
    pages += [(path, command.get_help(sub)) for path, command, sub in _commands(root, ctx)]
    for path, page in pages:
        for bare in ("<str>", "<int>", "<float>", "<path>"):
            assert bare not in page, (path, bare)


def test_verbose_says_it_counts_and_reload_says_it_takes_several_app_ids() -> None:
    root, ctx = _tree()
    page = " ".join(root.get_help(ctx).split())
    assert "-v, --verbose Trace" in page
    assert "-vv" in page
    reload_command = root.get_command(ctx, "reload")
    reload_page = reload_command.get_help(typer.Context(reload_command, info_name="reload"))
    assert "reload [OPTIONS] APP_ID..." in reload_page
    assert "--timeout DURATION" in reload_page
    assert "--server URL" in reload_page
    assert "--ca-bundle FILE" in reload_page
    assert "--connect-timeout SECONDS" in reload_page
