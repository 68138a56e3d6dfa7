"""`-o`, `--query` and `--context` work after the command name as well as before it."""

from __future__ import annotations

import json

from fixtures_sandbox import RunQlikm2m

from qlikm2m.sandbox import Sandbox


def test_output_options_after_the_subcommand(run_qlikm2m: RunQlikm2m) -> None:
    listed = run_qlikm2m("context", "ls", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []

    table = run_qlikm2m("context", "ls", "-o", "table")
    assert table.returncode == 0, table.stderr
    assert table.stdout == ""
    assert "(no results)" in table.stderr

    before = run_qlikm2m("-o", "yaml", "user", "me")
    after = run_qlikm2m("user", "me", "-o", "yaml")
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout
    assert "subject: qlikbot" in after.stdout

    name = run_qlikm2m("tenant", "me", "--query", "name")
    assert json.loads(name.stdout) == "sandbox"


def test_context_after_the_command_name_like_qlik_cli(
    run_qlikm2m: RunQlikm2m, sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    # Only the context can reach the sandbox: the environment names no server or client.
    bare = {k: v for k, v in cli_env.items() if k not in ("QLIK_SERVER", "QLIK_CLIENT_ID")}
    bare.pop("QLIK_CLIENT_SECRET")
    created = run_qlikm2m(
        "context", "create", "sbx", "--server", sandbox.url,
        "--oauth-client-id", sandbox.client_id, "--client-secret-stdin",
        "--ca-bundle", sandbox.ca_bundle or "", "--secret-storage", "file", "--no-verify",
        env=bare, input=sandbox.client_secret + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert run_qlikm2m("context", "clear", env=bare).returncode == 0

    after = run_qlikm2m("tenant", "me", "--context", "sbx", env=bare)
    short = run_qlikm2m("user", "me", "-c", "sbx", "--query", "clientId", env=bare)
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["name"] == "sandbox"
    assert json.loads(short.stdout) == sandbox.client_id

    # After the command name it wins over the same option before it, as -o does.
    wins = run_qlikm2m("-c", "nope", "tenant", "me", "-c", "sbx", env=bare)
    assert wins.returncode == 0, wins.stderr
    missing = run_qlikm2m("tenant", "me", "--context", "nope", env=bare)
    assert missing.returncode == 3
    assert "nope" in missing.stderr
