"""Write docs/reference.md from the command tree itself, so the reference cannot drift.

Run `python scripts/gen_reference.py` after changing a command; `--check` (run by
tests/test_docs.py in a fresh interpreter, so the command tree is built exactly as the CLI builds
it) fails when the committed file differs from what this produces.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference.md"
HEADER = """# Command reference

Generated from the CLI by `scripts/gen_reference.py`; do not edit by hand. Every command also
takes the global options shown first, before or after its name (`qlikm2m -c NAME user me` or
`qlikm2m user me -c NAME`; after the name wins). Exit codes:
[exit-codes.md](exit-codes.md).
"""


def _walk(command: Any, ctx: Any, path: list[str]) -> list[tuple[list[str], str]]:
    pages = [(path, command.get_help(ctx))]
    subcommands = getattr(command, "commands", {})
    for name in sorted(subcommands) if path else list(subcommands):
        sub = subcommands[name]
        if getattr(sub, "hidden", False):
            continue
        sub_ctx = type(ctx)(
            sub, info_name=name, parent=ctx, terminal_width=100, max_content_width=100
        )
        pages += _walk(sub, sub_ctx, [*path, name])
    return pages


def render() -> str:
    # Plain (non-rich) help text, independent of the terminal this runs in.
    os.environ["TERM"] = "dumb"
    import typer

    from qlikm2m.cli import build_app

    # Plain help whatever stdout is: the CLI picks rich panels only for a terminal.
    root = typer.main.get_command(build_app(None, rich_help=False))
    # The root's context settings (-h as well as --help) reach every subcommand through it.
    ctx = typer.Context(
        root,
        info_name="qlikm2m",
        terminal_width=100,
        max_content_width=100,
        **root.context_settings,
    )
    parts = [HEADER]
    for path, text in _walk(root, ctx, []):
        title = " ".join(["qlikm2m", *path])
        parts.append(f"\n## `{title}`\n\n```text\n{text.rstrip()}\n```\n")
    return "".join(parts)


def main(argv: list[str]) -> int:
    text = render()
    if argv == ["--check"]:
        if REFERENCE.read_text() != text:
            sys.stderr.write(f"{REFERENCE} is stale: run python scripts/gen_reference.py\n")
            return 1
        return 0
    REFERENCE.write_text(text)
    sys.stdout.write(f"wrote {REFERENCE}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
