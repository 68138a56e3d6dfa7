"""The shape of the command line: shared options declared once and offered everywhere, metavars
that say what an option takes, and `qlikm2m help`."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from qlikm2m import cli

ROOT = Path(__file__).resolve().parent.parent
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
# Commands whose words after the name belong to something else: `each` hands them to the command
# it runs for every context (so `each 'p*' -- -o yaml tenant me` is that command's -o).
WITHOUT_SHARED = {"completion", "help", "sandbox serve", "each"}


def _tree() -> tuple[Any, Any]:
    root = typer.main.get_command(cli.build_app(None))
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


def test_api_and_listing_options_name_what_they_take() -> None:
    root, ctx = _tree()
    api = root.get_command(ctx, "api")
    page = api.get_help(typer.Context(api, info_name="api"))
    for shown in ("-X, --method METHOD", "--param KEY=VALUE", "--data JSON", "--body-file FILE"):
        assert shown in page
    items = root.get_command(ctx, "items")
    ls = items.get_command(ctx, "ls")
    listing = ls.get_help(typer.Context(ls, info_name="ls"))
    assert "--space SPACE" in listing
    assert "--limit N" in listing
    assert "--type TYPE" in listing


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qlikm2m", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_topic_prints_the_guide_as_text_on_a_pipe() -> None:
    done = _run("help", "exit-codes")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "docs" / "exit-codes.md").read_text()


def test_help_command_is_the_commands_own_help() -> None:
    via_help = _run("help", "apps", "ls")
    direct = _run("apps", "ls", "--help")
    assert via_help.returncode == direct.returncode == 0, via_help.stderr
    assert via_help.stdout.strip() == direct.stdout.strip()


def test_help_without_words_lists_commands_and_guides() -> None:
    done = _run("help")
    assert done.returncode == 0, done.stderr
    for word in ("reload", "context", "environment", "exit-codes", "troubleshooting"):
        assert f"\n  {word} " in done.stdout


@pytest.mark.parametrize("words", [["nope"], ["apps", "nope"]])
def test_help_for_something_unknown_is_a_usage_error(words: list[str]) -> None:
    done = _run("help", *words)
    assert done.returncode == 2
    assert "No command or help topic" in done.stderr
    assert "qlikm2m help" in done.stderr


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_no_message_points_at_a_docs_path_an_install_does_not_have() -> None:
    # Messages, hints and help name `qlikm2m help TOPIC`: the wheel has no docs/ folder.
    offenders = []
    for path in (ROOT / "qlikm2m").rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "docs/" in node.value
                and id(node) not in docstrings
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
