"""Placeholder until its owner fills it in this session."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    del root
