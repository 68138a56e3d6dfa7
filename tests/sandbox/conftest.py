"""Fixtures of the sandbox's own tests (``tenant`` is in fixtures_sandbox.py)."""

from __future__ import annotations

import pytest
from harness import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """The sandbox's injectable wall clock: tests move time instead of sleeping."""
    return FakeClock()
