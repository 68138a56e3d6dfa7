"""Fixtures of the sandbox's own tests (helpers in sandbox_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sandbox_support import FakeClock, Tenant

from qlikm2m.sandbox import Sandbox


@pytest.fixture
def tenant(sandbox: Sandbox) -> Iterator[Tenant]:
    client = Tenant(sandbox)
    yield client
    client.session.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
