"""`qlikm2m each`: one command for many contexts at once, against several HTTPS sandboxes.

Contexts keep their secrets in 0600 files (`--secret-storage file`): every context's command runs
in its own process, which must read its own secret.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from qlikm2m.sandbox import Sandbox

TENANT_ME = "GET /api/v1/tenants/me"
TOKEN = "POST /oauth/token"


def _create(
    run_qlikm2m: Any, env: dict[str, str], name: str, sandbox: Sandbox, secret: str
) -> None:
    done = run_qlikm2m(
        "context",
        "create",
        name,
        "--server",
        sandbox.url,
        "--client-id",
        sandbox.client_id,
        "--client-secret-stdin",
        "--ca-bundle",
        sandbox.ca_bundle or "",
        "--secret-storage",
        "file",
        "--no-verify",
        env=env,
        input=secret + "\n",
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def tenants(make_sandbox: Any, run_qlikm2m: Any) -> tuple[dict[str, Sandbox], dict[str, str]]:
    """prod-a, prod-b (a wrong secret), prod-c on three sandboxes, and test-z, which no
    'prod-*' matches; an environment whose QLIK_* settings must not leak into the children."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("QLIK_")}
    boxes = {name: make_sandbox() for name in ("prod-a", "prod-b", "prod-c")}
    for name, box in boxes.items():
        secret = "wrong-secret-0123456789" if name == "prod-b" else box.client_secret
        _create(run_qlikm2m, env, name, box, secret)
    _create(run_qlikm2m, env, "test-z", boxes["prod-a"], boxes["prod-a"].client_secret)
    # A CI job's own settings: the children must use their contexts, not these.
    env["QLIK_SERVER"] = boxes["prod-c"].url
    env["QLIK_CLIENT_ID"] = "someone-else"
    env["QLIK_CLIENT_SECRET"] = "not-for-the-children-0123"
    return boxes, env


def _records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_one_record_per_context_in_order_past_failures(
    tenants: tuple[dict[str, Sandbox], dict[str, str]], run_qlikm2m: Any
) -> None:
    boxes, env = tenants
    # prod-a is slow: the others finish first, yet the records keep the contexts' order.
    boxes["prod-a"].force(match=TENANT_ME, delay=1.0, body={"id": "slow-tenant"})
    done = run_qlikm2m("each", "prod-*", "--", "tenant", "me", env=env)
    records = _records(done.stdout)
    assert [r["context"] for r in records] == ["prod-a", "prod-b", "prod-c"]
    assert [r["server"] for r in records] == [boxes[n].url for n in ("prod-a", "prod-b", "prod-c")]
    assert [r["exitCode"] for r in records] == [0, 4, 0]
    assert records[0]["result"] == {"id": "slow-tenant"}
    assert records[2]["result"]["hostnames"] == [boxes["prod-c"].url.removeprefix("https://")]
    assert "result" not in records[1]
    assert records[1]["error"]["kind"] == "auth"
    assert records[1]["error"]["exitCode"] == 4
    # The worst exit code, and a summary for people.
    assert done.returncode == 4
    assert "3 contexts: 2 succeeded, 1 failed (prod-b: exit 4)" in done.stderr
    # Each context's process minted with its own secret, once; test-z was not run.
    assert [boxes[n].count(TOKEN) for n in ("prod-a", "prod-b", "prod-c")] == [1, 1, 1]
    assert boxes["prod-a"].count(TENANT_ME) == 1
    assert "not-for-the-children" not in done.stdout + done.stderr


def test_fail_fast_starts_nothing_after_the_first_failure(
    tenants: tuple[dict[str, Sandbox], dict[str, str]], run_qlikm2m: Any
) -> None:
    boxes, env = tenants
    done = run_qlikm2m("each", "--parallel", "1", "--fail-fast", "prod-*", "user", "me", env=env)
    records = _records(done.stdout)
    assert [(r["context"], r["exitCode"]) for r in records] == [
        ("prod-a", 0),
        ("prod-b", 4),
        ("prod-c", None),
    ]
    assert records[2]["skipped"] is True
    assert boxes["prod-c"].counters().get(TOKEN, 0) == 0
    assert done.returncode == 4
    assert "1 skipped after --fail-fast (prod-c)" in done.stderr


def test_the_commands_own_options_pass_through(
    tenants: tuple[dict[str, Sandbox], dict[str, str]], run_qlikm2m: Any
) -> None:
    _, env = tenants
    done = run_qlikm2m("each", "prod-[ac]", "--", "spaces", "ls", "--query", "length(@)", env=env)
    assert done.returncode == 0, done.stderr
    assert [r["result"] for r in _records(done.stdout)] == [3, 3]


def test_no_matching_context_is_a_config_error(
    tenants: tuple[dict[str, Sandbox], dict[str, str]], run_qlikm2m: Any
) -> None:
    _, env = tenants
    done = run_qlikm2m("each", "staging-*", "--", "tenant", "me", env=env)
    assert done.returncode == 3
    assert "prod-a" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_stops_the_commands_and_names_them(
    tenants: tuple[dict[str, Sandbox], dict[str, str]], signum: int
) -> None:
    boxes, env = tenants
    # Every command hangs inside a request: prod-b (the wrong secret) at its token request.
    waits = {"prod-a": TENANT_ME, "prod-b": TOKEN, "prod-c": TENANT_ME}
    for name, request in waits.items():
        boxes[name].force(match=request, delay=60.0, body={"id": "never"})
    process = subprocess.Popen(
        [sys.executable, "-m", "qlikm2m", "-o", "json", "each", "prod-*", "--", "tenant", "me"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait (bounded) until every command is inside its request.
        deadline = time.monotonic() + 60
        while not all(boxes[name].count(request) for name, request in waits.items()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the commands never reached the sandboxes"
            time.sleep(0.05)
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert error["kind"] == "interrupted"
    assert error["running"] == ["prod-a", "prod-b", "prod-c"]
    assert "prod-a, prod-b, prod-c" in error["message"]
    assert out == ""
