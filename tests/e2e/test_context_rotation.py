"""Rotating a stored context's credentials end to end over HTTPS against the sandbox: its client
secret (`oauth secrets rotate -c NAME`) and its key pair (`oauth keys rotate -c NAME`), including
rotations that fail or are interrupted part-way, which must leave a working context."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from harness import RunCli
from keys_support import key_pair

from qlikm2m.contexts import load_contexts
from qlikm2m.sandbox import Sandbox
from qlikm2m.secretstore import secret_file_path

TOKEN = "POST /oauth/token"
DELETE_SECRET = "DELETE /api/v1/oauth-clients/{id}/client-secrets/{hint}"


def _env(cli_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in cli_env.items() if not k.startswith("QLIK_")}


def _secret_context(run_cli: RunCli, sandbox: Sandbox, env: dict[str, str]) -> None:
    created = run_cli(
        "context", "create", "bot", "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--ca-bundle", sandbox.ca_bundle or "", "--client-secret-stdin",
        "--secret-storage", "file", "--use", env=env, input=sandbox.client_secret + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr


def _key_context(run_cli: RunCli, sandbox: Sandbox, env: dict[str, str], alg: str = "ES384") -> str:
    pair = key_pair(alg, f"first-{alg.lower()}")
    sandbox.add_public_key(pair.public_jwk)
    created = run_cli(
        "context", "create", "keybot", "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--ca-bundle", sandbox.ca_bundle or "", "--private-key-stdin",
        "--key-id", pair.kid, "--key-alg", alg, "--secret-storage", "file", "--use",
        env=env, input=pair.pem(),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    return pair.kid


def _stored(env: dict[str, str], name: str) -> str:
    return secret_file_path(name, env).read_text().strip()


def _works(run_cli: RunCli, env: dict[str, str], name: str) -> bool:
    """The context mints a new token (nothing cached helps) and calls the API with it."""
    return run_cli("-c", name, "tenant", "me", "--no-token-cache", env=env).returncode == 0


# --- client secrets ----------------------------------------------------------------------------


def test_rotating_a_contexts_secret_stores_the_new_one_in_the_context(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = _env(cli_env)
    _secret_context(run_cli, sandbox, env)
    assert run_cli("tenant", "me", env=env).returncode == 0  # a token cached for the old secret
    generation = load_contexts(env).contexts["bot"].credential_generation
    old = sandbox.client_secret

    result = run_cli("-o", "json", "oauth", "secrets", "rotate", "-c", "bot", env=env)

    assert result.returncode == 0, result.stderr
    report = result.json()
    new = _stored(env, "bot")
    assert new != old
    assert (report["context"], report["oldHint"], report["newHint"]) == ("bot", old[-4:], new[-4:])
    assert (report["proved"], report["stored"], report["oldDeleted"]) == (True, True, True)
    assert "clientSecret" not in report
    assert new not in result.stdout + result.stderr
    assert sandbox.client_secret_hints() == [new[-4:]]
    assert load_contexts(env).contexts["bot"].credential_generation != generation
    minted = sandbox.count(TOKEN)
    assert run_cli("tenant", "me", env=env).returncode == 0
    assert sandbox.count(TOKEN) == minted + 1  # the old secret's token is not used any more
    assert _works(run_cli, env, "bot")


def test_a_context_rotation_whose_proof_fails_keeps_the_old_secret(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = _env(cli_env)
    _secret_context(run_cli, sandbox, env)
    assert run_cli("tenant", "me", env=env).returncode == 0  # the rotation reuses this token
    sandbox.force(status=401, match="POST /oauth/token",
                  body={"errors": [{"code": "OAUTH-5", "title": "Unauthorized", "status": "401"}]})  # fmt: skip

    result = run_cli("-o", "json", "oauth", "secrets", "rotate", env=env)

    assert result.returncode == 5, result.stderr
    error = json.loads(result.stderr)["error"]
    assert "could not prove the new secret" in error["message"]
    assert error["rotation"]["remaining"] == []
    assert _stored(env, "bot") == sandbox.client_secret
    assert sandbox.client_secret_hints() == [sandbox.client_secret[-4:]]
    assert _works(run_cli, env, "bot")


def test_a_context_rotation_that_cannot_delete_the_old_secret_keeps_the_new_one(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = {**_env(cli_env), "QLIKM2M_MAX_RETRIES": "0"}
    _secret_context(run_cli, sandbox, env)
    sandbox.force(status=503, match="DELETE /api/v1/oauth-clients/", times=None,
                  body={"errors": [{"code": "HTTP-503", "title": "Service Unavailable"}]})  # fmt: skip

    result = run_cli("-o", "json", "oauth", "secrets", "rotate", env=env)

    error = json.loads(result.stderr)["error"]
    assert "could not delete the old secret" in error["message"]
    assert "The new secret still works" in error["message"]
    old_hint = sandbox.client_secret[-4:]
    assert error["rotation"]["remaining"] == [
        f"delete the old secret: qlikm2m oauth secrets delete {old_hint} --client "
        f"{sandbox.client_id}"
    ]
    new = _stored(env, "bot")
    assert new != sandbox.client_secret
    sandbox.clear_forced()
    assert _works(run_cli, env, "bot")
    cleanup = run_cli("oauth", "secrets", "delete", old_hint, env=env)
    assert cleanup.returncode == 0, cleanup.stderr
    assert sandbox.client_secret_hints() == [new[-4:]]


def test_a_key_context_has_no_secret_to_rotate_into_it(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = _env(cli_env)
    _key_context(run_cli, sandbox, env)

    result = run_cli("-o", "json", "oauth", "secrets", "rotate", env=env)

    assert result.returncode == 2, result.stderr
    assert "Say where the new secret goes" in json.loads(result.stderr)["error"]["message"]
    assert sandbox.client_secret_hints() == [sandbox.client_secret[-4:]]


# --- key pairs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES384", "RS512"])
def test_rotating_a_contexts_key_pair(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str], alg: str
) -> None:
    env = _env(cli_env)
    old_kid = _key_context(run_cli, sandbox, env, alg)
    old_pem = _stored(env, "keybot")
    assert run_cli("tenant", "me", env=env).returncode == 0
    live = sandbox.live_tokens()

    result = run_cli("-o", "json", "oauth", "keys", "rotate", "--bits", "2048", env=env)

    assert result.returncode == 0, result.stderr
    report = result.json()
    context = load_contexts(env).contexts["keybot"]
    assert report["context"] == "keybot"
    assert report["oldKid"] == old_kid
    assert report["newKid"] == context.key_id != old_kid
    assert context.key_alg == alg
    assert (report["proved"], report["stored"], report["oldDeleted"]) == (True, True, True)
    assert "d" not in report["publicKey"]
    assert [k["kid"] for k in sandbox.state.credentials.public_keys(sandbox.client_id)] == [
        context.key_id
    ]
    new_pem = _stored(env, "keybot")
    assert new_pem != old_pem
    for line in new_pem.splitlines()[1:-1]:
        assert line not in result.stdout + result.stderr
    assert sandbox.live_tokens() == live, json.dumps(sandbox.counters())  # proof token revoked
    assert _works(run_cli, env, "keybot")


def test_a_key_rotation_whose_proof_fails_removes_the_new_key_again(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = _env(cli_env)
    old_kid = _key_context(run_cli, sandbox, env)
    old_pem = _stored(env, "keybot")
    assert run_cli("tenant", "me", env=env).returncode == 0
    sandbox.force(status=401, match="POST /oauth/token",
                  body={"errors": [{"code": "OAUTH-23", "title": "Unauthorized", "status": "401"}]})  # fmt: skip

    result = run_cli("-o", "json", "oauth", "keys", "rotate", env=env)

    assert result.returncode == 5, result.stderr
    error = json.loads(result.stderr)["error"]
    assert "could not prove the new key" in error["message"]
    assert f"The old key ({old_kid}) still works" in error["message"]
    assert [k["kid"] for k in sandbox.state.credentials.public_keys(sandbox.client_id)] == [old_kid]
    assert _stored(env, "keybot") == old_pem
    assert load_contexts(env).contexts["keybot"].key_id == old_kid
    assert _works(run_cli, env, "keybot")


def test_keys_rotate_needs_a_key_and_keys_delete_names_the_missing_kid(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = _env(cli_env)
    _secret_context(run_cli, sandbox, env)

    secret = run_cli("-o", "json", "oauth", "keys", "rotate", env=env)
    missing = run_cli("-o", "json", "oauth", "keys", "delete", "no-such-kid", env=env)

    assert secret.returncode == 2
    assert "client secret, not a private key" in json.loads(secret.stderr)["error"]["message"]
    assert missing.returncode == 2
    assert "no public key with kid 'no-such-kid'" in json.loads(missing.stderr)["error"]["message"]


# --- generating a key into a context ----------------------------------------------------------


def test_generate_saves_the_key_in_a_new_context_and_registers_it(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    result = run_cli("-o", "json", "oauth", "keys", "generate", "--save-to-context", "gen",
                     "--secret-storage", "file", "--register", sandbox.client_id, env=cli_env)  # fmt: skip

    assert result.returncode == 0, result.stderr
    jwk = result.json()
    context = load_contexts(cli_env).contexts["gen"]
    assert (context.server, context.client_id) == (sandbox.url, sandbox.client_id)
    assert (context.key_id, context.key_alg) == (jwk["kid"], "ES384")
    assert context.ca_bundle == sandbox.ca_bundle
    assert "PRIVATE KEY" in _stored(cli_env, "gen")
    assert _works(run_cli, _env(cli_env), "gen")
    again = run_cli("-o", "json", "oauth", "keys", "generate", "--save-to-context", "gen",
                    env=cli_env)  # fmt: skip
    assert again.returncode == 2
    assert "keys rotate -c gen" in json.loads(again.stderr)["error"]["hint"]


def test_generate_with_force_turns_a_secret_context_into_a_key_context(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = _env(cli_env)
    _secret_context(run_cli, sandbox, env)

    result = run_cli("-o", "json", "oauth", "keys", "generate", "--save-to-context", "bot",
                     "--force", "--register", sandbox.client_id, env=env)  # fmt: skip

    assert result.returncode == 0, result.stderr
    context = load_contexts(env).contexts["bot"]
    assert (context.credential_type, context.key_id) == ("private_key", result.json()["kid"])
    assert _works(run_cli, env, "bot")


# --- interrupted rotations: a real process, a real SIGINT ----------------------------------------


def _wait_for(sandbox: Sandbox, key: str, count: int, child: subprocess.Popen[str]) -> None:
    """Until the sandbox has seen ``count`` requests of ``key`` (the child is then waiting for
    the answer), or the child ended."""
    done = threading.Event()
    while sandbox.count(key) < count:
        assert child.poll() is None, child.communicate()
        done.wait(0.02)


def _interrupt_rotation(
    sandbox: Sandbox, env: dict[str, str], args: list[str], key: str, count: int
) -> tuple[int, dict[str, Any]]:
    child = subprocess.Popen(
        [sys.executable, "-m", "qlikm2m", "-o", "json", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(sandbox, key, count, child)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    sandbox.clear_forced()
    lines = [line for line in err.splitlines() if line.strip()]
    error: dict[str, Any] = json.loads(lines[-1])["error"]
    return child.returncode, error


def test_a_secret_rotation_interrupted_during_the_proof_keeps_the_old_secret(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = _env(cli_env)
    _secret_context(run_cli, sandbox, env)
    assert run_cli("tenant", "me", env=env).returncode == 0  # the rotation's API token, cached
    minted = sandbox.count(TOKEN)
    sandbox.force(status=503, match="POST /oauth/token", delay=60)  # the proof hangs

    code, error = _interrupt_rotation(sandbox, env, ["oauth", "secrets", "rotate"], TOKEN,
                                      minted + 1)  # fmt: skip

    assert code == 130
    assert "Secret rotation interrupted" in error["message"]
    assert f"The old secret ({sandbox.client_secret[-4:]}) still works" in error["message"]
    assert error["rotation"]["stored"] is False
    assert _stored(env, "bot") == sandbox.client_secret
    assert sandbox.client_secret_hints() == [sandbox.client_secret[-4:]]  # the new one undone
    assert _works(run_cli, env, "bot")


def test_a_secret_rotation_interrupted_while_deleting_the_old_one_keeps_the_new_secret(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = _env(cli_env)
    _secret_context(run_cli, sandbox, env)
    sandbox.force(status=503, match="DELETE /api/v1/oauth-clients/", delay=60)

    code, error = _interrupt_rotation(sandbox, env, ["oauth", "secrets", "rotate"],
                                      DELETE_SECRET, 1)  # fmt: skip

    assert code == 130
    assert "The new secret still works" in error["message"]
    old_hint = sandbox.client_secret[-4:]
    assert f"oauth secrets delete {old_hint}" in error["hint"]
    new = _stored(env, "bot")
    assert new != sandbox.client_secret
    assert sorted(sandbox.client_secret_hints()) == sorted([old_hint, new[-4:]])
    assert _works(run_cli, env, "bot")


def test_a_key_rotation_interrupted_during_the_proof_keeps_the_old_key(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    env = _env(cli_env)
    old_kid = _key_context(run_cli, sandbox, env)
    assert run_cli("tenant", "me", env=env).returncode == 0
    minted = sandbox.count(TOKEN)
    sandbox.force(status=503, match="POST /oauth/token", delay=60)

    code, error = _interrupt_rotation(sandbox, env, ["oauth", "keys", "rotate"], TOKEN,
                                      minted + 1)  # fmt: skip

    assert code == 130
    assert f"The old key ({old_kid}) still works" in error["message"]
    assert [k["kid"] for k in sandbox.state.credentials.public_keys(sandbox.client_id)] == [old_kid]
    assert load_contexts(env).contexts["keybot"].key_id == old_kid
    assert _works(run_cli, env, "keybot")


def test_rotating_a_key_from_the_environment_writes_the_new_one_where_asked(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    pair = key_pair("ES384", "env-key")
    sandbox.add_public_key(pair.public_jwk)
    env = {k: v for k, v in cli_env.items() if k != "QLIK_CLIENT_SECRET"}
    env.update(QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID=pair.kid)
    out = tmp_path / "next.pem"

    nowhere = run_cli("-o", "json", "oauth", "keys", "rotate", env=env)
    result = run_cli("-o", "json", "oauth", "keys", "rotate", "--out-private", str(out), env=env)

    assert nowhere.returncode == 2
    assert "--out-private" in json.loads(nowhere.stderr)["error"]["message"]
    assert result.returncode == 0, result.stderr
    report = result.json()
    assert report["privateKeyFile"] == str(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [k["kid"] for k in sandbox.state.credentials.public_keys(sandbox.client_id)] == [
        report["newKid"]
    ]
    after = {k: v for k, v in env.items() if k not in ("QLIK_PRIVATE_KEY", "QLIK_KEY_ID")}
    after["QLIK_PRIVATE_KEY_FILE"] = str(out)
    assert run_cli("tenant", "me", env=after).returncode == 0
    assert run_cli("tenant", "me", "--no-token-cache", env=env).returncode == 4  # the old key
