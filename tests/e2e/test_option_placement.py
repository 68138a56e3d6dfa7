"""`-o`, `--query` and `--context` work after the command name as well as before it.

Parsing needs no process boundary: these run the real entry point in-process."""

from __future__ import annotations

import json

from harness import RunCli

from qlikm2m.sandbox import Sandbox


def test_output_options_after_the_subcommand(sandbox_cli: RunCli) -> None:
    listed = sandbox_cli("context", "ls", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []

    table = sandbox_cli("context", "ls", "-o", "table")
    assert table.returncode == 0, table.stderr
    assert table.stdout == ""
    assert "(no results)" in table.stderr

    before = sandbox_cli("-o", "yaml", "user", "me")
    after = sandbox_cli("user", "me", "-o", "yaml")
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout
    assert "subject: qlikbot" in after.stdout

    name = sandbox_cli("tenant", "me", "--query", "name")
    assert json.loads(name.stdout) == "sandbox"


def test_context_after_the_command_name_like_qlik_cli(
    sandbox_cli: RunCli, sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    # Only the context can reach the sandbox: the environment names no server or client.
    bare = {k: v for k, v in cli_env.items() if k not in ("QLIK_SERVER", "QLIK_CLIENT_ID")}
    bare.pop("QLIK_CLIENT_SECRET")
    created = sandbox_cli(
        "context", "create", "sbx", "--server", sandbox.url,
        "--oauth-client-id", sandbox.client_id, "--client-secret-stdin",
        "--ca-bundle", sandbox.ca_bundle or "", "--secret-storage", "file", "--no-verify",
        env=bare, input=sandbox.client_secret + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert sandbox_cli("context", "clear", env=bare).returncode == 0

    after = sandbox_cli("tenant", "me", "--context", "sbx", env=bare)
    short = sandbox_cli("user", "me", "-c", "sbx", "--query", "clientId", env=bare)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["name"] == "sandbox"
    assert json.loads(short.stdout) == sandbox.client_id

    # After the command name it wins over the same option before it, as -o does.
    wins = sandbox_cli("-c", "nope", "tenant", "me", "-c", "sbx", env=bare)
    assert wins.returncode == 0, wins.stderr
    missing = sandbox_cli("tenant", "me", "--context", "nope", env=bare)
    assert missing.returncode == 3
    assert "nope" in missing.stderr
