"""A reader that stops early (`| head`) is not a failure: exit 0, nothing on stderr."""

from __future__ import annotations

import subprocess
import sys

from fixtures_sandbox import MakeSandbox, sandbox_env


def test_closing_the_pipe_early_exits_zero_quietly(
    make_sandbox: MakeSandbox, cli_env: dict[str, str]
) -> None:
    sandbox = make_sandbox(items=3000)
    env = sandbox_env(sandbox, cli_env)
    for args in (["items", "ls", "--ndjson"], ["api", "v1/items", "--paginate", "--ndjson"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "qlikm2m", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()
        assert first.startswith("{")
        process.stdout.close()  # what `head -1` does after its line
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 0, stderr
        assert "Traceback" not in stderr
        assert "error" not in stderr.lower()
