"""`qlikm2m exec`: a child process gets the tenant, a fresh token and the tenant id, and nothing
else of the credentials; its stdin, stdout, exit code and signals are its own.

Real subprocesses against the HTTPS sandbox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from qlikm2m.sandbox import Sandbox

TOKEN = "POST /oauth/token"
# A child that reports what it received: its environment (the QLIK_ part) and its stdin.
REPORT = textwrap.dedent(
    """
    import json, os, sys
    data = sys.stdin.read()
    env = {k: v for k, v in os.environ.items() if k.startswith("QLIK")}
    print(json.dumps({"env": env, "stdin": data, "argv": sys.argv[1:]}))
    sys.exit(int(os.environ.get("EXIT_WITH", "0")))
    """
)


def _exec(env: dict[str, str], *child: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qlikm2m", "exec", "--", *child],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_child_gets_server_token_and_tenant_id_but_no_secret(
    sandbox: Sandbox, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    done = _exec(cli_env, sys.executable, "-c", REPORT, "--flag", "x y", stdin="line 1\nline 2\n")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    env = seen["env"]
    assert env["QLIK_SERVER"] == sandbox.url
    assert "QLIK_CLIENT_SECRET" not in env
    assert "QLIK_API_KEY" not in env
    assert sandbox.client_secret not in done.stdout
    # stdin reached the child untouched, and so did its arguments.
    assert seen["stdin"] == "line 1\nline 2\n"
    assert seen["argv"] == ["--flag", "x y"]
    # The token is the CLI's cached one and the tenant id the tenant's.
    token = run_qlikm2m("auth", "token")
    assert token.stdout.strip() == env["QLIK_ACCESS_TOKEN"]
    tenant = json.loads(run_qlikm2m("tenant", "me").stdout)
    assert env["QLIK_TENANT_ID"] == tenant["id"]
    assert sandbox.count(TOKEN) == 1


def test_with_an_api_key_the_child_gets_it_as_the_bearer_only(
    sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    env = {k: v for k, v in cli_env.items() if not k.startswith("QLIK_CLIENT")}
    env["QLIK_API_KEY"] = sandbox.api_key or ""
    done = _exec(env, sys.executable, "-c", REPORT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)["env"]
    assert "QLIK_API_KEY" not in seen
    assert seen["QLIK_ACCESS_TOKEN"] == sandbox.api_key
    assert sandbox.count(TOKEN) == 0


def test_a_tenant_that_refuses_tenants_me_costs_only_the_tenant_id(
    sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    sandbox.force(status=403, match="GET /api/v1/tenants/me", body={"errors": [{"code": "x"}]})
    cli_env["QLIK_TENANT_ID"] = "an-inherited-id-of-another-tenant"
    done = _exec(cli_env, sys.executable, "-c", REPORT)
    assert done.returncode == 0, done.stderr
    env = json.loads(done.stdout)["env"]
    assert "QLIK_TENANT_ID" not in env
    assert env["QLIK_ACCESS_TOKEN"]
    assert "warning: QLIK_TENANT_ID is not set" in done.stderr


def test_a_second_run_costs_no_request(sandbox: Sandbox, cli_env: dict[str, str]) -> None:
    first = _exec(cli_env, sys.executable, "-c", REPORT)
    assert first.returncode == 0, first.stderr
    counters = sandbox.counters()
    second = _exec(cli_env, sys.executable, "-c", REPORT)
    assert second.returncode == 0, second.stderr
    # Token and tenant id both came from the cache.
    assert sandbox.counters() == counters
    assert json.loads(first.stdout)["env"] == json.loads(second.stdout)["env"]


def test_the_token_works_for_the_child(sandbox: Sandbox, cli_env: dict[str, str]) -> None:
    # A qlikm2m inside the child uses the handed-over token (QLIK_ACCESS_TOKEN) and mints none.
    done = _exec(cli_env, sys.executable, "-m", "qlikm2m", "user", "me")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["clientId"] == sandbox.client_id
    assert sandbox.count(TOKEN) == 1


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_the_exit_code_is_the_childs(cli_env: dict[str, str], code: int) -> None:
    cli_env["EXIT_WITH"] = str(code)
    done = _exec(cli_env, sys.executable, "-c", REPORT)
    assert done.returncode == code, done.stderr


def test_a_child_killed_by_a_signal_is_128_plus_n_to_the_shell(cli_env: dict[str, str]) -> None:
    script = f'"{sys.executable}" -m qlikm2m exec -- sh -c \'kill -TERM $$\'; echo "status=$?"'
    done = subprocess.run(
        ["sh", "-c", script], env=cli_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == f"status={128 + signal.SIGTERM}", done.stderr


def test_stdout_is_passed_through_unbuffered_and_binary(cli_env: dict[str, str]) -> None:
    payload = bytes(range(256)) * 64
    done = subprocess.run(
        [sys.executable, "-m", "qlikm2m", "exec", "--", "cat"],
        env=cli_env,
        input=payload,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == payload
    assert done.stderr == b""


def test_options_end_at_the_command_name(cli_env: dict[str, str]) -> None:
    # -c after the command is the child's, not the --context of qlikm2m.
    done = subprocess.run(
        [sys.executable, "-m", "qlikm2m", "exec", sys.executable, "-c", "print('child -c')"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "child -c\n"


@pytest.mark.parametrize(
    ("child", "code", "kind"),
    [
        (["no-such-command-qlikm2m-test"], 127, "command-not-found"),
        (["/"], 126, "command-not-executable"),
    ],
)
def test_a_command_that_cannot_start(
    cli_env: dict[str, str], child: list[str], code: int, kind: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qlikm2m", "-o", "json", "exec", "--", *child],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == code
    assert json.loads(done.stderr)["error"]["kind"] == kind


def test_no_command_is_a_usage_error(cli_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qlikm2m", "exec", "--"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2


def test_bad_credentials_fail_before_the_child_starts(
    sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    cli_env["QLIK_CLIENT_SECRET"] = "wrong-secret-0123456789"
    done = _exec(cli_env, sys.executable, "-c", "print('started')")
    assert done.returncode == 4
    assert "started" not in done.stdout


def test_a_cached_token_near_expiry_is_renewed_for_the_child(
    make_sandbox: Any, run_qlikm2m: Any
) -> None:
    from fixtures_sandbox import sandbox_env

    # 20 minutes of life: fresh for the CLI (5 min margin), too short for exec (30 min).
    sandbox = make_sandbox(token_lifetime=1200)
    env = sandbox_env(sandbox)
    first = run_qlikm2m("auth", "token", env=env).stdout.strip()
    done = _exec(env, sys.executable, "-c", REPORT)
    assert done.returncode == 0, done.stderr
    handed = json.loads(done.stdout)["env"]["QLIK_ACCESS_TOKEN"]
    assert handed != first
    assert sandbox.count(TOKEN) == 2
    # The renewed token replaced the cached one: the CLI now uses it too.
    assert run_qlikm2m("auth", "token", env=env).stdout.strip() == handed


# A child that says when it is ready, then reports the first signal it gets and exits 42.
WAITER = textwrap.dedent(
    """
    import signal, sys, time
    def got(signum, frame):
        print(f"got {signum}", flush=True)
        sys.exit(42)
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), got)
    print("ready", flush=True)
    time.sleep(60)
    sys.exit(1)
    """
)


def _signal_and_wait(argv: list[str], env: dict[str, str], signum: int) -> tuple[int, str]:
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signum)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signals_reach_the_child(cli_env: dict[str, str], signum: int) -> None:
    code, out = _signal_and_wait(
        [sys.executable, "-m", "qlikm2m", "exec", "--", sys.executable, "-c", WAITER],
        cli_env,
        signum,
    )
    assert out == f"got {int(signum)}\n"
    assert code == 42


# The subprocess path (what runs where exec cannot replace the process, e.g. Windows).
SPAWNER = textwrap.dedent(
    """
    import os, sys
    from qlikm2m.execution import start
    sys.exit(start(sys.argv[1:], os.environ, replace=False))
    """
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_subprocess_path_forwards_signals(cli_env: dict[str, str], signum: int) -> None:
    code, out = _signal_and_wait(
        [sys.executable, "-c", SPAWNER, sys.executable, "-c", WAITER], cli_env, signum
    )
    assert out == f"got {int(signum)}\n"
    assert code == 42


def test_the_subprocess_path_reports_a_signalled_child_as_128_plus_n(
    cli_env: dict[str, str],
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SPAWNER, "sh", "-c", "kill -KILL $$"],
        env=cli_env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 128 + signal.SIGKILL


def test_the_subprocess_path_passes_the_exit_code(cli_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SPAWNER, "sh", "-c", "exit 9"],
        env=cli_env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 9
    assert os.name == "posix"  # these tests drive the path POSIX users do not take


def test_a_stored_context_is_handed_over_without_its_secret(
    sandbox: Sandbox, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    env = {k: v for k, v in cli_env.items() if not k.startswith("QLIK_")}
    created = run_qlikm2m(
        "context",
        "create",
        "prod",
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
        input=sandbox.client_secret + "\n",
    )
    assert created.returncode == 0, created.stderr
    done = subprocess.run(
        [sys.executable, "-m", "qlikm2m", "exec", "-c", "prod", "--", sys.executable, "-c", REPORT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)["env"]
    assert seen["QLIK_SERVER"] == sandbox.url
    # The context's CA goes along, so a qlikm2m or Python child trusts the tenant as we do.
    assert seen["QLIK_CA_BUNDLE"] == sandbox.ca_bundle
    assert sandbox.client_secret not in json.dumps(seen)
    assert {k for k in seen if k.startswith("QLIK_")} == {
        "QLIK_SERVER",
        "QLIK_ACCESS_TOKEN",
        "QLIK_TENANT_ID",
        "QLIK_CA_BUNDLE",
    }
