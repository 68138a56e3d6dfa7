"""The output contract (docs/output.md) held by every command that prints a result.

In-process runs of the real CLI against the sandbox over HTTPS: the contract is about what lands on
stdout and stderr, not about the process boundary.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from harness import invoke


def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = invoke(list(args), env=env)
    return result.code, result.out, result.err


# Every command that prints a result, as a script would call it; APP is an app id of the sandbox.
COMMANDS: list[tuple[str, ...]] = [
    ("tenant", "me"),
    ("user", "me"),
    ("spaces", "ls"),
    ("items", "ls"),
    ("apps", "ls"),
    ("apps", "get", "APP"),
    ("auth", "status"),
    ("auth", "token", "--format", "json"),
    ("api", "v1/users/me"),
    ("reload", "APP"),
    ("doctor",),
]


def _argv(command: tuple[str, ...], app_id: str) -> list[str]:
    return [app_id if word == "APP" else word for word in command]


def _has_snake_case_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(
            ("_" in key and key != "_links") or _has_snake_case_key(v) for key, v in value.items()
        )
    if isinstance(value, list):
        return any(_has_snake_case_key(item) for item in value)
    return False


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_format_of_every_command(
    command: tuple[str, ...], sandbox: Any, cli_env: dict[str, str]
) -> None:
    argv = _argv(command, sandbox.app_ids()[0])
    code, out, err = _run(cli_env, "-o", "json", *argv)
    assert code == 0, err
    document = json.loads(out)
    if command[0] not in ("api", "tenant", "user", "spaces", "items", "apps"):
        # Our own records are camelCase; the API's records are passed through as Qlik sends them.
        assert not _has_snake_case_key(document), document

    code, out, err = _run(cli_env, "-o", "yaml", *argv)
    assert code == 0, err
    again = yaml.safe_load(out)
    if command[0] in ("auth", "doctor", "reload"):
        # A second run has other timings and reload ids: the same keys, other values.
        assert _shape(again) == _shape(document)
    else:
        assert again == document

    code, out, err = _run(cli_env, "-o", "table", *argv)
    assert code == 0, err
    lines = out.splitlines()
    assert lines, err
    assert lines[0] == lines[0].upper(), "headers are upper case"
    assert not any(ch in out for ch in "┏━│┃╭─┌"), "no boxes"
    assert '{"' not in out, "nested values are readable, not JSON fragments"

    code, out, err = _run(cli_env, "-o", "text", *argv)
    assert code == 0, err
    assert out.endswith("\n")
    assert not out.startswith('"'), "text prints strings raw"


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return None


def test_text_output_replaces_jq_r(sandbox: Any, cli_env: dict[str, str]) -> None:
    code, out, _ = _run(cli_env, "--query", "name", "-o", "text", "tenant", "me")
    assert code == 0
    assert out == "sandbox\n"
    code, out, _ = _run(cli_env, "--query", "[].resourceId", "-o", "text", "apps", "ls")
    assert code == 0
    assert out.split() == sandbox.app_ids()


def test_query_applies_to_listing_tables(sandbox: Any, cli_env: dict[str, str]) -> None:
    code, out, _ = _run(cli_env, "apps", "ls", "-o", "json")
    first = json.loads(out)[0]
    query = f"[?name=='{first['name']}']"
    code, out, err = _run(cli_env, "--query", query, "-o", "table", "apps", "ls")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    # The filtered records keep the listing's columns (APP ID among them).
    assert "APP ID" in lines[0]
    assert first["resourceId"] in lines[1]


def test_reload_prints_one_entry_per_app_in_order_failures_included(
    sandbox: Any, cli_env: dict[str, str]
) -> None:
    good = sandbox.app_ids()[0]
    code, out, err = _run(cli_env, "reload", good, "no-such-app")
    assert code == 5, err
    entries = json.loads(out)
    assert [entry["appId"] for entry in entries] == [good, "no-such-app"]
    assert entries[0]["status"] == "QUEUED"
    assert entries[1]["id"] is None
    assert entries[1]["error"]["exitCode"] == 5
