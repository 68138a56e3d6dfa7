"""The user guides (docs/*.md) as help topics, found where the install put them.

docs/ at the top of the repository is the one source. A wheel carries a copy as package data in
``qlikm2m/_docs`` (pyproject.toml, ``[tool.hatch.build.targets.wheel.force-include]``); a source
checkout or an editable install reads ``docs/`` next to the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qlikm2m.runtime import Runtime

_PACKAGE = Path(__file__).resolve().parent
# index.md links the others: `qlikm2m help` (no topic) plays its part.
_NOT_TOPICS = frozenset({"index"})


@dataclass(frozen=True)
class Topic:
    name: str  # the file name without .md: `qlikm2m help <name>`
    title: str  # the page's first heading
    path: Path

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def docs_dir() -> Path | None:
    """The folder of the guides: the wheel's copy, else the checkout's docs/; None when neither
    exists (a wheel built without them)."""
    for candidate in (_PACKAGE / "_docs", _PACKAGE.parent / "docs"):
        if (candidate / "environment.md").is_file():
            return candidate
    return None


def _title(path: Path) -> str:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("# "):
                return line[2:].strip()
    return path.stem


def topics() -> list[Topic]:
    """Every guide, sorted by name."""
    folder = docs_dir()
    if folder is None:
        return []
    return [
        Topic(path.stem, _title(path), path)
        for path in sorted(folder.glob("*.md"))
        if path.stem not in _NOT_TOPICS
    ]


def find_topic(name: str) -> Topic | None:
    """The guide called ``name`` (``exit-codes`` or ``exit-codes.md``), or None."""
    wanted = name.strip().lower().removesuffix(".md")
    return next((topic for topic in topics() if topic.name == wanted), None)


def show_topic(runtime: Runtime, topic: Topic) -> None:
    """The guide as Markdown source on a pipe (greppable, no escape codes), rendered at a
    terminal."""
    text = topic.text()
    if runtime.stdout_is_tty:
        from qlikm2m.terminal import render_markdown

        render_markdown(runtime, text)
        return
    runtime.stdout.write(text if text.endswith("\n") else text + "\n")
