"""`qlikm2m oauth keys|secrets|tokens` end to end against the HTTPS sandbox: key generation and
registration, listings, and secret rotation, including rotations that fail part-way."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import requests

from qlikm2m.sandbox import ClientSpec, Sandbox

TOKEN = "POST /oauth/token"


def _ok(result: Any) -> Any:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


def _error(result: Any, code: int) -> dict[str, Any]:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    error: dict[str, Any] = json.loads(result.stderr)["error"]
    return error


def _works(sandbox: Sandbox, secret: str) -> bool:
    """Whether ``secret`` mints a token for the sandbox's client (asked directly, not via the CLI)."""
    body = {"client_id": sandbox.client_id, "client_secret": secret,
            "grant_type": "client_credentials"}  # fmt: skip
    with requests.Session() as session:
        session.trust_env = False
        answer = session.post(f"{sandbox.url}/oauth/token", json=body, verify=sandbox.ca_bundle,
                              timeout=10)  # fmt: skip
    return answer.status_code == 200


def test_generate_register_and_sign_in_with_the_key(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    key_file = tmp_path / "bot.pem"

    jwk = _ok(run_qlikm2m("oauth", "keys", "generate", "--out-private", str(key_file),
                          "--register", sandbox.client_id))  # fmt: skip
    listed = _ok(run_qlikm2m("oauth", "keys", "ls"))
    env = {k: v for k, v in cli_env.items() if k != "QLIK_CLIENT_SECRET"}
    env["QLIK_PRIVATE_KEY_FILE"] = str(key_file)
    signed_in = run_qlikm2m("tenant", "me", env=env)

    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-384", "ES384", "sig")
    assert "d" not in jwk
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in key_file.read_text()
    assert listed == [jwk]
    assert signed_in.returncode == 0, signed_in.stderr  # the kid is the thumbprint: no QLIK_KEY_ID


def test_generate_rsa_with_a_kid_without_registering(
    sandbox: Sandbox, run_qlikm2m: Any, tmp_path: Path
) -> None:
    jwk = _ok(run_qlikm2m("oauth", "keys", "generate", "--alg", "rs512", "--bits", "2048",
                          "--kid", "ci-2026", "--out-private", str(tmp_path / "k.pem")))  # fmt: skip

    assert (jwk["kty"], jwk["alg"], jwk["kid"]) == ("RSA", "RS512", "ci-2026")
    assert sandbox.count(TOKEN) == 0
    assert _ok(run_qlikm2m("oauth", "keys", "ls")) == []


def test_generate_needs_a_place_for_the_private_key_and_never_clobbers_one(
    run_qlikm2m: Any, tmp_path: Path
) -> None:
    existing = tmp_path / "k.pem"
    existing.write_text("keep me")

    missing = run_qlikm2m("oauth", "keys", "generate")
    clobber = run_qlikm2m("-o", "json", "oauth", "keys", "generate", "--out-private", str(existing))
    weak = run_qlikm2m("-o", "json", "oauth", "keys", "generate", "--alg", "RS256", "--bits",
                       "1024", "--out-private", str(tmp_path / "weak.pem"))  # fmt: skip

    assert missing.returncode == 2
    assert "--out-private" in missing.stderr
    assert "already exists" in _error(clobber, 2)["message"]
    assert existing.read_text() == "keep me"
    assert "2048" in _error(weak, 3)["message"]
    assert not (tmp_path / "weak.pem").exists()


def test_registering_without_the_admin_role_fails_but_keeps_the_private_key(
    make_sandbox: Any, run_qlikm2m: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    plain = ClientSpec(client_id="plain-bot", client_secret="plain-bot-secret-value",
                       may_manage_clients=False)  # fmt: skip
    sandbox: Sandbox = make_sandbox(extra_clients=(plain,))
    env = {**cli_env, "QLIK_SERVER": sandbox.url, "QLIK_CLIENT_ID": "plain-bot",
           "QLIK_CLIENT_SECRET": "plain-bot-secret-value"}  # fmt: skip
    key_file = tmp_path / "k.pem"

    result = run_qlikm2m("-o", "json", "oauth", "keys", "generate", "--out-private",
                         str(key_file), "--register", sandbox.client_id, env=env)  # fmt: skip

    assert _error(result, 5)["status"] == 403
    assert key_file.exists()
    assert sandbox.state.credentials.public_keys(sandbox.client_id) == []


def test_secrets_and_tokens_are_listed_without_their_values(
    sandbox: Sandbox, run_qlikm2m: Any
) -> None:
    secrets = _ok(run_qlikm2m("oauth", "secrets", "ls"))
    tokens = run_qlikm2m("oauth", "tokens", "ls")

    assert [s["hint"] for s in secrets] == [sandbox.client_secret[-4:]]
    listed = _ok(tokens)
    assert len(listed) == 1  # the token this command minted, of the bot user
    assert sandbox.client_id in listed[0]["description"]
    cached = _ok(run_qlikm2m("auth", "token", "--format", "json"))
    assert cached["accessToken"] not in tokens.stdout
    assert sandbox.client_secret not in tokens.stdout + json.dumps(secrets)


def test_rotation_replaces_the_secret_and_proves_the_new_one_first(
    sandbox: Sandbox, run_qlikm2m: Any, tmp_path: Path
) -> None:
    out = tmp_path / "new-secret"
    old = sandbox.client_secret

    result = run_qlikm2m("oauth", "secrets", "rotate", "--out-secret", str(out))

    report = _ok(result)
    new = out.read_text().strip()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert report["oldHint"] == old[-4:]
    assert report["newHint"] == new[-4:]
    assert (report["proved"], report["stored"], report["oldDeleted"]) == (True, True, True)
    assert report["remaining"] == []
    assert new not in result.stdout + result.stderr
    assert sandbox.live_tokens() == 1  # the command's own; the proof token was revoked again
    assert _works(sandbox, new)
    assert not _works(sandbox, old)
    assert sandbox.client_secret_hints() == [new[-4:]]


def test_rotation_prints_the_secret_only_when_asked(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    nowhere = run_qlikm2m("-o", "json", "oauth", "secrets", "rotate")
    printed = _ok(run_qlikm2m("oauth", "secrets", "rotate", "--print-secret"))

    assert _error(nowhere, 2)["message"].startswith("Say where the new secret goes")
    assert _works(sandbox, printed["clientSecret"])
    assert sandbox.client_secret_hints() == [printed["newHint"]]


def test_a_rotation_whose_proof_fails_leaves_the_old_secret_alone(
    sandbox: Sandbox, run_qlikm2m: Any, tmp_path: Path
) -> None:
    assert run_qlikm2m("auth", "token").returncode == 0  # the rotation reuses this cached token
    sandbox.force(status=401, match="POST /oauth/token",
                  body={"errors": [{"code": "OAUTH-5", "title": "Unauthorized", "status": "401"}]})  # fmt: skip
    out = tmp_path / "new-secret"

    error = _error(run_qlikm2m("-o", "json", "oauth", "secrets", "rotate", "--out-secret",
                               str(out)), 5)  # fmt: skip

    assert "could not prove the new secret" in error["message"]
    assert "old secret" in error["message"]
    assert error["rotation"]["remaining"] == []
    assert not out.exists()
    assert sandbox.client_secret_hints() == [sandbox.client_secret[-4:]]  # the new one undone
    assert _works(sandbox, sandbox.client_secret)


def test_a_rotation_that_cannot_store_the_secret_undoes_it(
    sandbox: Sandbox, run_qlikm2m: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")

    error = _error(run_qlikm2m("-o", "json", "oauth", "secrets", "rotate", "--out-secret",
                               str(blocker / "secret")), 5)  # fmt: skip

    assert "could not store the new secret" in error["message"]
    assert sandbox.client_secret_hints() == [sandbox.client_secret[-4:]]
    assert _works(sandbox, sandbox.client_secret)


def test_a_rotation_that_cannot_delete_the_old_secret_says_what_remains(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox.force(status=503, match="DELETE /api/v1/oauth-clients/", times=None,
                  body={"errors": [{"code": "HTTP-503", "title": "Service Unavailable"}]})  # fmt: skip
    out = tmp_path / "new-secret"
    env_retries = {"QLIKM2M_MAX_RETRIES": "0"}

    result = run_qlikm2m("-o", "json", "oauth", "secrets", "rotate", "--out-secret", str(out),
                         env={**cli_env, **env_retries})  # fmt: skip

    assert result.returncode != 0
    error = json.loads(result.stderr)["error"]
    old_hint = sandbox.client_secret[-4:]
    assert "could not delete the old secret" in error["message"]
    assert "the new secret still works" in error["message"].lower()
    assert error["rotation"]["remaining"] == [
        f"delete the old secret: qlikm2m oauth secrets delete {old_hint} --client "
        f"{sandbox.client_id}"
    ]
    new = out.read_text().strip()
    assert _works(sandbox, new)
    assert sorted(sandbox.client_secret_hints()) == sorted([old_hint, new[-4:]])
    sandbox.clear_forced()
    cleanup = run_qlikm2m("oauth", "secrets", "delete", old_hint,
                          env={**cli_env, "QLIK_CLIENT_SECRET": new})  # fmt: skip
    assert _ok(cleanup) == {"clientId": sandbox.client_id, "deleted": old_hint}
    assert sandbox.client_secret_hints() == [new[-4:]]


def test_a_client_with_five_secrets_is_not_rotated(
    sandbox: Sandbox, run_qlikm2m: Any, tmp_path: Path
) -> None:
    for _ in range(4):
        sandbox.state.credentials.create_secret(sandbox.client_id, None)

    error = _error(run_qlikm2m("-o", "json", "oauth", "secrets", "rotate", "--print-secret",
                               "--old-hint", sandbox.client_secret[-4:]), 2)  # fmt: skip

    assert "5 secrets" in error["message"]
    assert len(sandbox.client_secret_hints()) == 5


def test_with_several_secrets_the_one_in_use_is_the_one_replaced(
    sandbox: Sandbox, run_qlikm2m: Any
) -> None:
    spare = sandbox.state.credentials.create_secret(sandbox.client_id, None)

    report = _ok(run_qlikm2m("oauth", "secrets", "rotate", "--print-secret"))

    assert report["oldHint"] == sandbox.client_secret[-4:]
    assert sorted(sandbox.client_secret_hints()) == sorted([spare.hint, report["newHint"]])
