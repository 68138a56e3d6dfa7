"""Suite-wide isolation: no test reads or writes the developer's real config, cache or keyring.

Sandbox fixtures live in ``fixtures_sandbox.py`` (loaded below); keyring fixtures in the keyring
tests' own module.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

pytest_plugins = ["fixtures_sandbox"]

# Variables that would make a test depend on the machine it runs on.
_LEAKY_ENV = (
    "QLIK_SERVER",
    "QLIK_CLIENT_ID",
    "QLIK_CLIENT_SECRET",
    "QLIK_API_KEY",
    "QLIK_ACCESS_TOKEN",
    "QLIK_SCOPE",
    "QLIK_CA_BUNDLE",
    "QLIK_CONTEXT",
    "QLIKM2M_OUTPUT",
    "QLIKM2M_NO_TOKEN_CACHE",
    "NO_COLOR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background by a non-interactive shell (as CI may) inherits SIGINT
    # as ignored, and an ignored signal survives exec: the Ctrl-C tests' children would never
    # see it. A handled signal is reset to the default in children instead.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point config and cache at temporary folders and start from a clean environment.

    The keyring defaults to the ``fail`` backend (as poetry's tests do) so that nothing reaches a
    developer's real keyring by accident; keyring tests opt into the real Secret Service.
    """
    config = tmp_path / "config"
    cache = tmp_path / "cache"
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QLIKM2M_CONFIG_DIR", str(config))
    monkeypatch.setenv("QLIKM2M_CACHE_DIR", str(cache))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    # Loopback traffic must never be sent to a proxy, whatever the machine's settings.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    return {"config": config, "cache": cache}
