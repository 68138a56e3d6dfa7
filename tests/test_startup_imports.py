"""Start-up budget, as a test rather than a timer: what the hottest commands import.

`--version`, `--help` and a warm `tenant me` (the command CI scripts repeat) must not pay for
modules they do not use. Each runs in a fresh interpreter under ``-X importtime``, which lists
every module imported during the run, whoever imported it; a failure names the import chain.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

# Never needed to print a version, a help page or one JSON document to a pipe.
NEVER_ON_HOT_PATH = ("keyring", "rich", "jmespath", "yaml")
# Not needed before the first request either.
NETWORK_STACK = ("requests", "urllib3", "truststore", "filelock")
# Used by no code of ours, yet Typer 0.29 imports it to coerce every parameter of a command that
# runs (typer._coercion -> typer._adapters -> pydantic): about 100 ms on the hottest path.
VALIDATION_STACK = ("pydantic", "pydantic_core", "annotated_types")

# "import time: <self us> | <cumulative us> | <two spaces per nesting level><module>"
_IMPORT_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+\d+\s+\| ( *)(\S+)\s*$")


@dataclass(frozen=True)
class ImportLog:
    """The modules one run imported, as ``-X importtime``'s tree (children before parents)."""

    tree: tuple[tuple[int, str], ...]  # (depth, module) in the order Python reports them
    stdout: str

    @property
    def modules(self) -> set[str]:
        return {name for _, name in self.tree}

    def offenders(self, forbidden: Sequence[str]) -> list[str]:
        return offenders(self.modules, forbidden)

    def chain(self, module: str) -> str:
        """Who imported `module`: its ancestors in the tree, outermost first."""
        for index, (depth, name) in enumerate(self.tree):
            if name != module:
                continue
            chain = [name]
            for parent_depth, parent in self.tree[index + 1 :]:
                if parent_depth < depth:
                    chain.append(parent)
                    depth = parent_depth
            return " -> ".join(reversed(chain))
        return f"{module} (not imported)"

    def explain(self, forbidden: Sequence[str]) -> str:
        # The first module of a package to finish loading lies under the import that entered it.
        entries: dict[str, str] = {}
        for _, name in self.tree:
            for package in forbidden:
                if name == package or name.startswith(package + "."):
                    entries.setdefault(package, name)
        return "; ".join(f"{package} via {self.chain(first)}" for package, first in entries.items())


def offenders(modules: set[str], forbidden: Sequence[str]) -> list[str]:
    return sorted(
        module
        for module in modules
        if any(module == name or module.startswith(name + ".") for name in forbidden)
    )


def import_log(argv: Sequence[str], env: Mapping[str, str]) -> ImportLog:
    """Run ``python -X importtime ARGV`` with its output piped, as a script would."""
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
    tree = tuple(
        (len(m.group(1)) // 2, m.group(2))
        for m in map(_IMPORT_LINE.match, done.stderr.splitlines())
        if m
    )
    return ImportLog(tree, done.stdout)


def qlikm2m_imports(args: Sequence[str], env: Mapping[str, str]) -> ImportLog:
    log = import_log(["-m", "qlikm2m", *args], env)
    # No modules at all would mean the parsing broke, and every check below would pass.
    assert "qlikm2m.launcher" in log.modules
    return log


def assert_none_of(log: ImportLog, forbidden: Sequence[str]) -> None:
    assert log.offenders(forbidden) == [], log.explain(forbidden)


def test_detector_sees_imports_at_run_time_and_names_the_chain() -> None:
    # A module imported late, inside a function, is caught like one imported at start-up, and the
    # chain that brought it in is named.
    code = "def later():\n    import json\nlater()"
    log = import_log(["-c", code], os.environ)
    assert "json.decoder" in log.offenders(("json",))
    assert log.chain("json.scanner") == "json -> json.decoder -> json.scanner"
    assert log.explain(("json",)).startswith("json via json")
    assert offenders({"yamlish", "richer", "rich.console"}, ("yaml", "rich")) == ["rich.console"]


@pytest.mark.parametrize("args", [["--version"], ["--help"]], ids=["version", "help"])
def test_version_and_help_import_nothing_heavy(args: list[str]) -> None:
    log = qlikm2m_imports(args, os.environ)
    assert "qlikm2m" in log.stdout.lower()
    assert_none_of(log, NEVER_ON_HOT_PATH + NETWORK_STACK + VALIDATION_STACK)


def test_a_piped_root_help_imports_no_command_group() -> None:
    # The root help lists every command from ROOT_LISTING (qlikm2m/cli.py): no group's module
    # is imported or built for it.
    from qlikm2m import cli

    log = qlikm2m_imports(["--help"], os.environ)
    assert "data-files" in log.stdout
    assert_none_of(log, tuple(f"qlikm2m.commands.{name}" for name in cli.COMMAND_MODULES))


def test_help_lists_commands_without_rich() -> None:
    # Piped help is plain text, but still the full command list.
    log = qlikm2m_imports(["--help"], os.environ)
    for command in ("tenant", "api", "auth", "context"):
        assert command in log.stdout
    assert_none_of(log, ("rich",))


def test_warm_tenant_me_imports_only_what_it_uses(sandbox: Any, cli_env: dict[str, str]) -> None:
    cold = qlikm2m_imports(["tenant", "me"], cli_env)  # mints and caches a token
    warm = qlikm2m_imports(["tenant", "me"], cli_env)
    # Warm indeed: the second run reused the cached token.
    assert sandbox.count("POST /oauth/token") == 1
    assert sandbox.count("GET /api/v1/tenants/me") == 2
    assert '"id"' in warm.stdout
    assert_none_of(warm, NEVER_ON_HOT_PATH)
    # Qlik's error shapes and the causes of a failed connection are for failures only.
    assert_none_of(warm, ("qlikm2m.http.error_bodies", "qlikm2m.http.causes"))
    # The cold run (token minted, cache written) has no excuse for them either.
    assert_none_of(cold, NEVER_ON_HOT_PATH)


# The command line's framework: the launcher serves the hottest command lines without it; and
# `dataclasses` (it imports `inspect`), whose generated code cost the hottest commands ~10 ms a
# start (their records are NamedTuples or written out: issue 14).
COMMAND_LINE_FRAMEWORK = ("typer", "click", "rich", "dataclasses")


@pytest.mark.parametrize(
    "args",
    [
        ["tenant", "me"],
        ["user", "me", "-o", "yaml"],
        ["-v", "api", "v1/spaces", "--query", "data"],
        ["api", "v1/items?limit=5", "--paginate", "--ndjson"],
    ],
    ids=["tenant-me", "user-me", "api", "api-paginate"],
)
def test_warm_hot_commands_import_no_command_line_framework(
    sandbox: Any, cli_env: dict[str, str], args: list[str]
) -> None:
    qlikm2m_imports(["tenant", "me"], cli_env)  # mints and caches the token
    warm = qlikm2m_imports(args, cli_env)
    assert sandbox.count("POST /oauth/token") == 1
    assert warm.stdout.strip()
    assert "qlikm2m.fast_path" in warm.modules  # the detector sees the way in
    assert_none_of(warm, COMMAND_LINE_FRAMEWORK)


def test_a_command_line_the_fast_path_does_not_serve_goes_through_typer(
    sandbox: Any, cli_env: dict[str, str]
) -> None:
    log = qlikm2m_imports(["tenant", "me", "--no-input"], cli_env)
    assert '"id"' in log.stdout
    assert "typer" in log.modules


def test_warm_tenant_me_builds_no_validation_models(sandbox: Any, cli_env: dict[str, str]) -> None:
    qlikm2m_imports(["tenant", "me"], cli_env)
    warm = qlikm2m_imports(["tenant", "me"], cli_env)
    assert_none_of(warm, VALIDATION_STACK)


def test_a_warm_run_with_a_private_key_loads_no_jose_or_crypto(
    sandbox: Any, cli_env: dict[str, str]
) -> None:
    from keys_support import key_pair

    pair = key_pair("ES384")
    sandbox.add_public_key(pair.public_jwk)
    env = {k: v for k, v in cli_env.items() if k != "QLIK_CLIENT_SECRET"}
    env.update(QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID=pair.kid)
    cold = qlikm2m_imports(["tenant", "me"], env)  # signs an assertion, caches the token
    warm = qlikm2m_imports(["tenant", "me"], env)

    assert sandbox.count("POST /oauth/token") == 1
    assert "jwt" in cold.modules  # the detector would see them
    # The cached token is bound to the key by a stdlib digest of its text.
    assert_none_of(warm, ("jwt", "cryptography", *NEVER_ON_HOT_PATH))
