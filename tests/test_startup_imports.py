"""Start-up budget, as a test rather than a timer: what the hottest commands import.

`--version`, `--help` and a warm `tenant me` (the command CI scripts repeat) must not pay for
modules they do not use. Each runs in a fresh interpreter under ``-X importtime``, which lists
every module imported during the run, whoever imported it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

# Never needed to print a version, a help page or one JSON document to a pipe.
NEVER_ON_HOT_PATH = ("keyring", "rich", "jmespath", "yaml")
# Not needed before the first request either.
NETWORK_STACK = ("requests", "urllib3", "truststore", "filelock")

_IMPORT_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s*(\S+)\s*$")


def imported_modules(argv: Sequence[str], env: Mapping[str, str]) -> tuple[set[str], str]:
    """Run ``python -X importtime ARGV`` with output piped; return the modules it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules = {m.group(1) for m in map(_IMPORT_LINE.match, done.stderr.splitlines()) if m}
    return modules, done.stdout


def qlikm2m_imports(args: Sequence[str], env: Mapping[str, str]) -> tuple[set[str], str]:
    modules, stdout = imported_modules(["-m", "qlikm2m", *args], env)
    # No modules at all would mean the parsing broke, and every check below would pass.
    assert "qlikm2m.launcher" in modules
    return modules, stdout


def offenders(modules: set[str], forbidden: Sequence[str]) -> list[str]:
    return sorted(
        module
        for module in modules
        if any(module == name or module.startswith(name + ".") for name in forbidden)
    )


def test_detector_sees_an_import_made_at_run_time() -> None:
    # A module imported late, inside a function, is caught like one imported at start-up.
    code = "def later():\n    import yaml\nlater()"
    modules, _ = imported_modules(["-c", code], os.environ)
    assert "yaml" in offenders(modules, NEVER_ON_HOT_PATH)
    assert offenders({"yamlish", "richer", "rich.console"}, ("yaml", "rich")) == ["rich.console"]


@pytest.mark.parametrize("args", [["--version"], ["--help"]], ids=["version", "help"])
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    modules, stdout = qlikm2m_imports(args, os.environ)
    assert "qlikm2m" in stdout.lower()
    assert offenders(modules, NEVER_ON_HOT_PATH + NETWORK_STACK) == []


def test_help_lists_commands_without_rich() -> None:
    # Piped help is plain text, but still the full command list.
    modules, stdout = qlikm2m_imports(["--help"], os.environ)
    for command in ("tenant", "api", "auth", "context"):
        assert command in stdout
    assert offenders(modules, ("rich",)) == []


def test_warm_tenant_me_imports_only_what_it_uses(sandbox: Any, cli_env: dict[str, str]) -> None:
    first, _ = qlikm2m_imports(["tenant", "me"], cli_env)  # mints and caches a token
    modules, stdout = qlikm2m_imports(["tenant", "me"], cli_env)
    # Warm indeed: the second run reused the cached token.
    assert sandbox.count("POST /oauth/token") == 1
    assert sandbox.count("GET /api/v1/tenants/me") == 2
    assert '"id"' in stdout
    assert offenders(modules, NEVER_ON_HOT_PATH) == []
    # The cold run (token minted, cache written) has no excuse for them either.
    assert offenders(first, NEVER_ON_HOT_PATH) == []
