"""The CI path end to end: environment-only settings, the token economy, auth commands.

Every test runs the real command in subprocesses against the HTTPS sandbox with the test CA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from qlikm2m.sandbox import Sandbox

TOKEN = "POST /oauth/token"


def _json(stdout: str) -> Any:
    return json.loads(stdout)


def test_user_me_and_tenant_me_from_the_environment_only(
    sandbox: Sandbox, run_qlikm2m: Any
) -> None:
    user = run_qlikm2m("user", "me")
    assert user.returncode == 0, user.stderr
    # Mint, 301 and the user: three requests over one reused connection.
    assert sandbox.connections == 1
    me = _json(user.stdout)
    assert me["clientId"] == sandbox.client_id
    assert me["subject"] == f"qlikbot\\{sandbox.client_id}"
    tenant = run_qlikm2m("tenant", "me")
    assert tenant.returncode == 0, tenant.stderr
    assert _json(tenant.stdout)["id"] == me["tenantId"]
    # Data only on stdout: nothing else was printed.
    assert user.stderr == ""
    assert tenant.stderr == ""
    # The */me redirects were followed with the token.
    assert sandbox.count("GET /api/v1/tenants/me") == 1
    assert sandbox.count("GET /api/v1/tenants/{tenantId}") == 1


def test_api_key_mode(sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if not k.startswith("QLIK_CLIENT")}
    env["QLIK_API_KEY"] = sandbox.api_key or ""
    result = run_qlikm2m("user", "me", env=env)
    assert result.returncode == 0, result.stderr
    assert "id" in _json(result.stdout)
    assert sandbox.count(TOKEN) == 0


def test_pre_minted_token_mode(sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]) -> None:
    minted = run_qlikm2m("auth", "token")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    env = {k: v for k, v in cli_env.items() if not k.startswith("QLIK_CLIENT")}
    env["QLIK_ACCESS_TOKEN"] = token
    env["QLIKM2M_CACHE_DIR"] = os.path.join(env["QLIKM2M_CACHE_DIR"], "unused")
    result = run_qlikm2m("tenant", "me", env=env)
    assert result.returncode == 0, result.stderr
    assert _json(result.stdout)["name"] == "sandbox"
    assert sandbox.count(TOKEN) == 1
    # A refused given token is final: exit 4, no minting.
    sandbox.revoke_all()
    refused = run_qlikm2m("tenant", "me", env=env)
    assert refused.returncode == 4
    assert "QLIK_ACCESS_TOKEN" in refused.stderr
    assert sandbox.count(TOKEN) == 1


@pytest.mark.slow
def test_ten_sequential_commands_make_one_token_request(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    for index in range(10):
        command = ("user", "me") if index % 2 else ("tenant", "me")
        result = run_qlikm2m(*command)
        assert result.returncode == 0, result.stderr
    assert sandbox.count(TOKEN) == 1


@pytest.mark.slow
def test_eight_cold_processes_make_one_token_request(
    sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "qlikm2m", "tenant", "me"],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outcomes = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0] * 8, outcomes
    assert sandbox.count(TOKEN) == 1
    assert sandbox.live_tokens(sandbox.client_id) == 1


def test_revoking_every_token_costs_exactly_one_more(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    assert run_qlikm2m("tenant", "me").returncode == 0
    assert sandbox.count(TOKEN) == 1
    sandbox.revoke_all()
    for _ in range(3):
        result = run_qlikm2m("tenant", "me")
        assert result.returncode == 0, result.stderr
    assert sandbox.count(TOKEN) == 2


def test_a_second_401_is_exit_4(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    assert run_qlikm2m("user", "me").returncode == 0
    sandbox.force(
        status=401,
        body={"errors": [{"code": "HTTP-401", "title": "Unauthorized", "status": 401}]},
        match="GET /api/v1/users/me",
        times=2,
    )
    result = run_qlikm2m("user", "me")
    assert result.returncode == 4
    assert "Unauthorized" in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox.count(TOKEN) == 2  # the cached one was dropped and one was minted


def test_no_token_cache_mints_per_command(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    assert run_qlikm2m("user", "me", "--no-token-cache").returncode == 0
    env = {**cli_env, "QLIKM2M_NO_TOKEN_CACHE": "1"}
    assert run_qlikm2m("user", "me", env=env).returncode == 0
    assert sandbox.count(TOKEN) == 2
    assert not list(_token_files(cli_env))


def _token_files(env: dict[str, str]) -> list[str]:
    folder = os.path.join(env["QLIKM2M_CACHE_DIR"], "tokens")
    if not os.path.isdir(folder):
        return []
    return [name for name in os.listdir(folder) if name.endswith(".json")]


def test_auth_token_formats(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    raw = run_qlikm2m("auth", "token").stdout.strip()
    header = run_qlikm2m("auth", "token", "--format", "header").stdout.strip()
    env_line = run_qlikm2m("auth", "token", "--format", "env").stdout.strip()
    document = _json(run_qlikm2m("auth", "token", "--format", "json").stdout)
    assert header == f"Authorization: Bearer {raw}"
    assert env_line == f"QLIK_ACCESS_TOKEN={raw}"
    assert document["accessToken"] == raw
    assert document["tokenType"] == "Bearer"
    assert 21000 < document["expiresIn"] <= 21600
    assert sandbox.count(TOKEN) == 1


def test_auth_status_shows_sources_and_masks_the_secret(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    result = run_qlikm2m("auth", "status")
    assert result.returncode == 0, result.stderr
    status = _json(result.stdout)
    rows = {row["name"]: row for row in status["settings"]}
    assert rows["server"]["value"] == sandbox.url
    assert rows["server"]["source"] == "env QLIK_SERVER"
    assert rows["client_secret"]["source"] == "env QLIK_CLIENT_SECRET"
    assert sandbox.client_secret not in result.stdout
    assert status["check"]["ok"] is True
    assert status["token"]["expiresIn"] > 0
    table = run_qlikm2m("-o", "table", "auth", "status")
    assert table.returncode == 0
    assert "env QLIK_SERVER" in table.stdout


def test_auth_status_reports_a_failed_check_with_its_exit_code(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "QLIK_CLIENT_SECRET": "not-the-right-secret-at-all-000"}
    result = run_qlikm2m("auth", "status", env=env)
    assert result.returncode == 4
    assert _json(result.stdout)["check"]["ok"] is False


def test_auth_revoke_revokes_and_drops(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    assert run_qlikm2m("tenant", "me").returncode == 0
    assert sandbox.live_tokens(sandbox.client_id) == 1
    result = run_qlikm2m("auth", "revoke")
    assert result.returncode == 0, result.stderr
    assert _json(result.stdout) == {"revoked": 1, "alreadyInvalid": 0, "dropped": 1}
    assert sandbox.count("POST /oauth/revoke") == 1
    assert sandbox.live_tokens(sandbox.client_id) == 0
    assert _token_files(cli_env) == []
    assert run_qlikm2m("tenant", "me").returncode == 0
    assert sandbox.count(TOKEN) == 2


def test_secret_from_stdin(sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if not k.startswith("QLIK_CLIENT")}
    result = run_qlikm2m(
        "user",
        "me",
        "--client-id",
        sandbox.client_id,
        "--client-secret-stdin",
        env=env,
        input=sandbox.client_secret + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert _json(result.stdout)["clientId"] == sandbox.client_id


def test_partial_environment_credentials_are_exit_3(
    run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    env = {k: v for k, v in cli_env.items() if k != "QLIK_CLIENT_SECRET"}
    result = run_qlikm2m("user", "me", env=env)
    assert result.returncode == 3
    assert "no client secret" in result.stderr


def test_plain_http_to_a_remote_host_is_refused(run_qlikm2m: Any, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "QLIK_SERVER": "http://tenant.example.com"}
    result = run_qlikm2m("user", "me", env=env)
    assert result.returncode == 3
    assert "http://" in result.stderr


def test_plain_http_sandbox_on_loopback(make_sandbox: Any, run_qlikm2m: Any) -> None:
    plain = make_sandbox(tls=False)
    env = {
        **os.environ,
        "QLIK_SERVER": plain.url,
        "QLIK_CLIENT_ID": plain.client_id,
        "QLIK_CLIENT_SECRET": plain.client_secret,
    }
    result = run_qlikm2m("tenant", "me", env=env)
    assert result.returncode == 0, result.stderr
    assert plain.url.startswith("http://127.0.0.1")


def test_json_errors_when_json_output_is_asked_for(
    run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "QLIK_CLIENT_SECRET": "not-the-right-secret-at-all-000"}
    result = run_qlikm2m("-o", "json", "user", "me", env=env)
    assert result.returncode == 4
    error = _json(result.stderr)["error"]
    assert error["kind"] == "auth"
    assert error["exitCode"] == 4
    assert error["status"] == 401
