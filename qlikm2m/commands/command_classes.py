"""The Click classes every qlikm2m group and command is built with.

They add what Typer leaves out and the CLI contract needs (docs/reference.md):

- **Aliases** of qlik-cli habits: ``app``, ``space``, ``item`` name ``apps``, ``spaces``,
  ``items``, and ``list`` names ``ls``; hidden from the command lists, accepted everywhere.
- **A repeated option is refused**: Click keeps the last of ``--space a --space b`` silently;
  an option that takes one value, given twice in one place, is a usage error (exit 2) naming it.
  Options that take several values say so (``multiple``) and accumulate; flags and ``-v`` counts
  may repeat.
- **Metavars that say what an option takes**: an option without one shows TEXT, INTEGER or
  NUMBER (FILE for a path) instead of Typer's ``<str>``.

``use_qlik_classes`` applies them to a Typer app and all its sub-apps before Click objects are
built.
"""

from __future__ import annotations

from typing import Any

import typer
import typer.core
import typer.models

# Typer vendors Click (0.26-0.28); the parser is the one place a repeated option is visible.
from typer._click.exceptions import BadOptionUsage
from typer._click.parser import _OptionParser

ALIASES = {"app": "apps", "space": "spaces", "item": "items", "list": "ls"}

_TYPE_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "FILE"}


class _SingleValueParser(_OptionParser):
    def parse_args(self, args: list[str]) -> tuple[dict[str, Any], list[str], list[Any]]:
        opts, rest, order = super().parse_args(args)
        if self.ctx is not None and self.ctx.resilient_parsing:
            return opts, rest, order  # completion parses partial lines: never refuse there
        seen: set[str] = set()
        for param in order:
            if not isinstance(param, typer.core.TyperOption) or param.name is None:
                continue
            if param.multiple or param.count or param.is_flag:
                continue
            if param.name in seen:
                flag = max(param.opts, key=len)
                raise BadOptionUsage(
                    flag,
                    f"Option '{flag}' was given more than once; it takes one value.",
                    ctx=self.ctx,
                )
            seen.add(param.name)
        return opts, rest, order


def _make_parser(command: Any, ctx: Any) -> _OptionParser:
    parser = _SingleValueParser(ctx)
    for param in command.get_params(ctx):
        param.add_to_parser(parser, ctx)
    return parser


def _name_metavars(params: list[Any]) -> None:
    for param in params:
        if isinstance(param, typer.core.TyperOption) and param.metavar is None:
            if param.count or param.is_flag:
                continue
            named = _TYPE_METAVARS.get(param.type.name)
            if named:
                param.metavar = named


class QlikCommand(typer.core.TyperCommand):
    """A Typer command that refuses repeated single-value options and names its metavars."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _name_metavars(self.params)

    def make_parser(self, ctx: Any) -> _OptionParser:
        return _make_parser(self, ctx)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        # Typer writes a required argument as {APP_ID...}; usage lines say APP_ID... as man does.
        return [
            piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
            for piece in super().collect_usage_pieces(ctx)
        ]


class QlikGroup(typer.core.TyperGroup):
    """A Typer group with the same option rules, that also resolves the aliases."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _name_metavars(self.params)

    def make_parser(self, ctx: Any) -> _OptionParser:
        return _make_parser(self, ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in ALIASES:
            found = super().get_command(ctx, ALIASES[cmd_name])
        return found

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        # The canonical name, so usage lines and errors read `qlikm2m apps ls`, not `app list`.
        name, command, rest = super().resolve_command(ctx, args)
        return (command.name if command is not None else name), command, rest


def use_qlik_classes(app: typer.Typer) -> None:
    """Build ``app``'s commands and sub-apps (recursively) with QlikCommand and QlikGroup."""
    for command_info in app.registered_commands:
        if command_info.cls in (None, typer.core.TyperCommand):
            command_info.cls = QlikCommand
    for group_info in app.registered_groups:
        if group_info.typer_instance is None:
            continue
        group_info.cls = QlikGroup
        use_qlik_classes(group_info.typer_instance)
