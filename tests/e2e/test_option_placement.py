"""`-o` and `--query` work after the command name as well as before it."""

from __future__ import annotations

import json

from fixtures_sandbox import RunQlikm2m


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
