"""The layering the design notes promise, checked on the source: each third-party library has
one home module, and the core knows nothing of Typer. (The sandbox's isolation is checked in
tests/sandbox/test_sandbox_serve.py.)"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "qlikm2m"

# The one module (or package) allowed to import each library (typer: the command layer, below).
HOME_OF = {
    # PyJWT and the cryptography it signs with: the private-key JWT module, loaded only when a
    # key is used (tests/test_startup_imports.py keeps them off the warm path).
    "cryptography": "qlikm2m.assertion",
    "filelock": "qlikm2m.fileio",
    "jwt": "qlikm2m.assertion",
    "jmespath": "qlikm2m.output",
    "keyring": "qlikm2m.secretstore",
    "platformdirs": "qlikm2m.paths",
    "requests": "qlikm2m.http",
    "rich": "qlikm2m.terminal",
    "tomli_w": "qlikm2m.contexts",
    "truststore": "qlikm2m.http",
    "urllib3": "qlikm2m.http",
    "yaml": "qlikm2m.yaml_codec",
}


def _imports() -> dict[str, set[str]]:
    """Top-level names imported (at any depth, including inside functions) by each module."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found[module].update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found[module].add(node.module)
    return found


def _top(name: str) -> str:
    return name.split(".")[0]


def test_each_third_party_library_has_one_home_module() -> None:
    homes: dict[str, set[str]] = defaultdict(set)
    for module, names in _imports().items():
        for name in names:
            top = _top(name)
            if top not in sys.stdlib_module_names and top not in ("qlikm2m", "typer"):
                home = HOME_OF.get(top, "")
                # A home may be a package (qlikm2m.http): any module inside it counts as home.
                homes[top].add(home if module.startswith(home + ".") else module)
    assert {library: sorted(modules) for library, modules in homes.items()} == {
        library: [module] for library, module in HOME_OF.items()
    }


def test_only_the_command_layer_knows_typer() -> None:
    users = {m for m, names in _imports().items() if any(_top(n) == "typer" for n in names)}
    assert "qlikm2m.cli" in users
    assert all(m == "qlikm2m.cli" or m.startswith("qlikm2m.commands.") for m in users), users


def test_the_fast_path_and_what_it_runs_know_no_typer() -> None:
    # The launcher serves the hottest command lines without the command line's framework
    # (tests/test_startup_imports.py checks the whole import tree of a run).
    imports = _imports()
    fast = {"qlikm2m.fast_path", "qlikm2m.boundary", "qlikm2m.commands.common"}
    fast |= {m for m in imports if m.startswith("qlikm2m.commands.") and m.endswith("_run")}
    assert {"qlikm2m.commands.api_run", "qlikm2m.commands.tenant_run"} <= fast
    for module in fast:
        assert not {n for n in imports[module] if _top(n) in ("typer", "click", "rich")}, module
