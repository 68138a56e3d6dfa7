"""`qlikm2m help [COMMAND...|TOPIC]`: a guide from the docs shipped in the package, or a
command's help.

A word that names a guide (qlikm2m.docs_topics) shows the guide: `help sandbox` is the sandbox
guide, `sandbox --help` the command's options. Otherwise the words name a command, as after
`qlikm2m`; with no words, the list of commands and guides.
"""

from __future__ import annotations

from typing import Annotated

import typer


def _command_help(ctx: typer.Context, words: list[str]) -> str:
    from qlikm2m.errors import UsageError

    root_ctx = ctx.find_root()
    command = root_ctx.command
    current = root_ctx
    for word in words:
        get = getattr(command, "get_command", None)
        found = get(current, word) if callable(get) else None
        if found is None:
            raise UsageError(
                f"No command or help topic {' '.join(words)!r}.",
                hint="qlikm2m help lists the commands and the help topics.",
            )
        command = found
        current = typer.Context(command, info_name=command.name, parent=current)
    return command.get_help(current)


def _overview(ctx: typer.Context) -> str:
    from qlikm2m.docs_topics import topics

    root_ctx = ctx.find_root()
    group = root_ctx.command
    lines = ["Commands (qlikm2m help COMMAND, or qlikm2m COMMAND --help):"]
    names: list[str] = getattr(group, "list_commands", lambda _ctx: [])(root_ctx)
    for name in names:
        command = group.get_command(root_ctx, name)  # type: ignore[attr-defined]
        if command is None or command.hidden:
            continue
        lines.append(f"  {name:<12} {command.get_short_help_str(limit=64)}")
    lines.append("")
    lines.append("Guides (qlikm2m help TOPIC):")
    for topic in topics():
        lines.append(f"  {topic.name:<24} {topic.title}")
    return "\n".join(lines) + "\n"


def register(root: typer.Typer) -> None:
    @root.command("help")
    def help_command(
        ctx: typer.Context,
        words: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="[COMMAND...|TOPIC]",
                help="A command (e.g. apps ls) or a guide (e.g. environment, exit-codes).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Show a guide (environment, exit-codes, ci, ...) or a command's help."""
        from qlikm2m.docs_topics import find_topic, show_topic
        from qlikm2m.runtime import Runtime

        runtime = ctx.ensure_object(Runtime)
        words = words or []
        if not words:
            runtime.stdout.write(_overview(ctx))
            return
        topic = find_topic(words[0]) if len(words) == 1 else None
        if topic is not None:
            show_topic(runtime, topic)
            return
        text = _command_help(ctx, words)
        if text:
            runtime.stdout.write(text + "\n")
