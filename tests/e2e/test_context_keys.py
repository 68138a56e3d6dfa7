"""Contexts that hold a private key instead of a secret (private-key JWT), end to end over HTTPS
against the sandbox, which verifies every assertion: create, init, update, mint, cache, use."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from harness import RunCli, files_under
from keys_support import ALGORITHMS, KeyPair, key_pair

from qlikm2m.contexts import load_contexts
from qlikm2m.sandbox import Sandbox
from qlikm2m.secretstore import secret_file_path

TOKEN = "POST /oauth/token"


def _no_credentials_env(cli_env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in cli_env.items() if not k.startswith("QLIK_")}


def _registered(sandbox: Sandbox, alg: str, kid: str | None = None, **kw: Any) -> KeyPair:
    pair = key_pair(alg, kid, **kw)
    sandbox.add_public_key(pair.public_jwk)
    return pair


def _create(
    run_cli: RunCli, env: dict[str, str], sandbox: Sandbox, name: str, *extra: str, **kw: Any
) -> Any:
    return run_cli(
        "-o", "json", "context", "create", name, "--server", sandbox.url, "--oauth-client-id",
        sandbox.client_id, "--ca-bundle", sandbox.ca_bundle or "", "--secret-storage", "file",
        *extra, env=env, **kw,
    )  # fmt: skip


def _key_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if "-----" not in line and len(line) >= 16]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_key_context_of_each_algorithm_mints_caches_and_uses_tokens(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str], tmp_path: Path, alg: str
) -> None:
    pair = _registered(sandbox, alg)
    key_file = tmp_path / "bot.pem"
    key_file.write_text(pair.pem())
    env = _no_credentials_env(cli_env)

    created = _create(run_cli, env, sandbox, "bot", "--private-key-file", str(key_file),
                      "--key-id", pair.kid, "--key-alg", alg.lower(), "--use")  # fmt: skip
    first = run_cli("user", "me", env=env)
    second = run_cli("tenant", "me", env=env)
    third = run_cli("-c", "bot", "api", "v1/items", env=env)

    assert created.returncode == 0, created.stderr
    view = created.json()
    assert (view["credentialType"], view["keyId"], view["keyAlg"]) == ("private_key", pair.kid, alg)
    assert view["verified"] is True
    assert [r.returncode for r in (first, second, third)] == [0, 0, 0], first.stderr
    assert first.json()["clientId"] == sandbox.client_id
    # One token for the verification, one for the context, reused by the next two commands.
    assert sandbox.count(TOKEN) == 2
    context = load_contexts(env).contexts["bot"]
    assert (context.credential_type, context.key_id, context.key_alg) == (
        "private_key",
        pair.kid,
        alg,
    )
    stored = secret_file_path("bot", env)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in stored.read_text()
    text = (Path(env["QLIKM2M_CONFIG_DIR"]) / "contexts.toml").read_text()
    assert 'credential_type = "private_key"' in text
    assert "schema_version = 3" in text
    for path in files_under(env["QLIKM2M_CONFIG_DIR"], env["QLIKM2M_CACHE_DIR"]):
        if path != stored:
            for line in _key_lines(pair.pem()):
                assert line not in path.read_text(errors="replace"), path


def test_a_key_context_shows_where_its_settings_come_from(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "ES384")
    env = _no_credentials_env(cli_env)
    assert _create(run_cli, env, sandbox, "es", "--private-key-stdin", "--no-verify",
                   input=pair.pem()).returncode == 0  # fmt: skip
    assert run_cli("context", "update", "es", "--key-id", pair.kid, env=env).returncode == 0
    # The context's own kid and alg: the environment's QLIK_KEY_* describe a key there.
    status = run_cli("-o", "json", "-c", "es", "auth", "status",
                     env={**env, "QLIK_KEY_ID": "not-this-one"})  # fmt: skip
    got = run_cli("-o", "json", "context", "get", "es", env=env)

    assert status.returncode == 0, status.stderr
    rows = {row["name"]: row for row in status.json()["settings"]}
    assert rows["private_key"] == {"name": "private_key", "value": "***",
                                   "source": "context 'es' (secret file)"}  # fmt: skip
    assert rows["key_id"] == {"name": "key_id", "value": pair.kid, "source": "context 'es'"}
    assert rows["key_alg"]["value"] == "ES384"
    assert "client_secret" not in rows
    shown = {row["name"]: row for row in got.json()["settings"]}
    assert shown["key_id"] == rows["key_id"]
    assert got.json()["keyId"] == pair.kid
    for line in _key_lines(pair.pem()):
        assert line not in status.stdout + status.stderr + got.stdout + got.stderr


def test_a_wrong_key_is_exit_4_and_nothing_is_stored(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _registered(sandbox, "ES384")
    stranger = key_pair("ES384", fresh=True)  # not the registered one, same kid
    key_file = tmp_path / "wrong.pem"
    key_file.write_text(stranger.pem())
    env = _no_credentials_env(cli_env)

    result = _create(run_cli, env, sandbox, "wrong", "--private-key-file", str(key_file),
                     "--key-id", stranger.kid)  # fmt: skip

    assert result.returncode == 4, result.stderr
    assert "signature does not match" in result.stderr
    assert load_contexts(env).contexts == {}
    assert not secret_file_path("wrong", env).exists()


def test_a_stored_key_replaced_behind_the_contexts_back_is_exit_4(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "RS256")
    env = _no_credentials_env(cli_env)
    assert _create(run_cli, env, sandbox, "rs", "--private-key-stdin", "--key-id", pair.kid,
                   "--use", "--no-verify", input=pair.pem()).returncode == 0  # fmt: skip
    stranger = key_pair("RS256", fresh=True)
    secret_file_path("rs", env).write_text(stranger.pem())

    result = run_cli("tenant", "me", env=env)

    assert result.returncode == 4, result.stderr
    assert "signature does not match" in result.stderr


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: key_pair("RS256", bits=1024, fresh=True).pem(), "1024 bits"),
        (
            lambda: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "not a private key",
        ),
        (lambda: "not a key at all\n", "not PEM"),
    ],
    ids=["weak", "public", "garbage"],
)
def test_an_unfit_key_is_exit_3_before_anything_is_sent_or_stored(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str], make: Any, words: str
) -> None:
    env = _no_credentials_env(cli_env)

    result = _create(run_cli, env, sandbox, "unfit", "--private-key-stdin", input=make())

    assert result.returncode == 3, result.stderr
    assert words in result.stderr
    assert sandbox.count(TOKEN) == 0
    assert load_contexts(env).contexts == {}


def test_an_rs512_key_must_be_named_and_an_alg_must_fit_the_key(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "RS512")
    env = _no_credentials_env(cli_env)

    mismatch = _create(run_cli, env, sandbox, "k", "--private-key-stdin", "--key-alg", "ES384",
                       input=pair.pem())  # fmt: skip
    unnamed = _create(run_cli, env, sandbox, "k", "--private-key-stdin", "--key-id", pair.kid,
                      input=pair.pem())  # fmt: skip

    assert mismatch.returncode == 3, mismatch.stderr
    assert unnamed.returncode == 4, unnamed.stderr
    assert "algorithm is not the one registered" in unnamed.stderr


def test_an_encrypted_key_is_stored_decrypted_with_the_passphrase_from_a_variable(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    pair = _registered(sandbox, "ES384")
    passphrase = "a-key-passphrase-for-the-test-0123"
    key_file = tmp_path / "enc.pem"
    key_file.write_text(pair.pem(password=passphrase.encode()))
    env = {**_no_credentials_env(cli_env), "KEY_PASS": passphrase}

    without = _create(run_cli, env, sandbox, "enc", "--private-key-file", str(key_file),
                      "--key-id", pair.kid)  # fmt: skip
    argv = _create(run_cli, env, sandbox, "enc", "--private-key-file", str(key_file),
                   "--private-key-passphrase", passphrase)  # fmt: skip
    created = _create(run_cli, env, sandbox, "enc", "--private-key-file", str(key_file),
                      "--key-id", pair.kid, "--private-key-passphrase-env", "KEY_PASS", "--use")  # fmt: skip
    used = run_cli("tenant", "me", env=env)

    assert without.returncode == 3, without.stderr
    assert "passphrase" in without.stderr
    assert argv.returncode == 2
    assert passphrase not in argv.stdout + argv.stderr
    assert created.returncode == 0, created.stderr
    assert used.returncode == 0, used.stderr
    stored = secret_file_path("enc", env).read_text()
    assert "ENCRYPTED" not in stored
    assert "PRIVATE KEY" in stored
    for path in files_under(env["QLIKM2M_CONFIG_DIR"], env["QLIKM2M_CACHE_DIR"]):
        assert passphrase not in path.read_text(errors="replace"), path


def test_update_switches_a_context_between_a_secret_and_a_key(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    pair = _registered(sandbox, "ES384")
    env = {**_no_credentials_env(cli_env), "BOT_SECRET": sandbox.client_secret}
    assert _create(run_cli, env, sandbox, "bot", "--client-secret-env", "BOT_SECRET",
                   "--use").returncode == 0  # fmt: skip
    assert run_cli("tenant", "me", env=env).returncode == 0
    generation = load_contexts(env).contexts["bot"].credential_generation
    key_file = tmp_path / "k.pem"
    key_file.write_text(pair.pem())

    to_key = run_cli("-o", "json", "context", "update", "bot", "--private-key-file", str(key_file),
                     "--key-id", pair.kid, env=env)  # fmt: skip
    minted_before = sandbox.count(TOKEN)
    with_key = run_cli("tenant", "me", env=env)
    minted_with_key = sandbox.count(TOKEN)
    back = run_cli("-o", "json", "context", "update", "bot", "--client-secret-env", "BOT_SECRET",
                   env=env)  # fmt: skip
    with_secret = run_cli("tenant", "me", env=env)

    assert to_key.returncode == 0, to_key.stderr
    assert to_key.json()["credentialType"] == "private_key"
    assert to_key.json()["droppedTokens"] == 1
    assert with_key.returncode == 0, with_key.stderr
    assert minted_with_key == minted_before + 1  # the secret's token was not reused
    assert back.returncode == 0, back.stderr
    assert "credentialType" not in back.json()
    assert with_secret.returncode == 0, with_secret.stderr
    context = load_contexts(env).contexts["bot"]
    assert (context.credential_type, context.key_id, context.key_alg) == (None, None, None)
    assert context.credential_generation != generation
    assert "PRIVATE KEY" not in secret_file_path("bot", env).read_text()


def test_update_changes_the_key_id_of_a_key_context(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "ES384", "registered-later")
    env = _no_credentials_env(cli_env)
    assert _create(run_cli, env, sandbox, "bot", "--private-key-stdin", "--no-verify", "--use",
                   input=pair.pem()).returncode == 0  # fmt: skip
    unknown = run_cli("tenant", "me", env=env)  # the kid defaulted to the thumbprint

    fixed = run_cli("context", "update", "bot", "--key-id", "registered-later", env=env)
    used = run_cli("tenant", "me", env=env)

    assert unknown.returncode == 4
    assert "key id is unknown" in unknown.stderr
    assert fixed.returncode == 0, fixed.stderr
    assert used.returncode == 0, used.stderr


def test_key_flags_that_do_not_go_together_are_usage_errors(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**_no_credentials_env(cli_env), "S": "x" * 20}
    key_file = tmp_path / "k.pem"
    key_file.write_text(key_pair("ES384").pem())

    both = _create(run_cli, env, sandbox, "x", "--private-key-file", str(key_file),
                   "--client-secret-env", "S")  # fmt: skip
    apikey = _create(run_cli, env, sandbox, "x", "--private-key-file", str(key_file),
                     "--auth-type", "apikey")  # fmt: skip
    alone = _create(run_cli, env, sandbox, "x", "--client-secret-env", "S", "--key-id", "k")
    argv = _create(run_cli, env, sandbox, "x", "--private-key", "-----BEGIN")

    for result in (both, apikey, alone, argv):
        assert result.returncode == 2, result.stderr
    assert load_contexts(env).contexts == {}


def _doctor(run_cli: RunCli, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = run_cli("-o", "json", "doctor", env=env)
    return result.returncode, {check["check"]: check for check in result.json()["checks"]}


def test_doctor_judges_a_key_contexts_own_key(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "RS512")
    env = _no_credentials_env(cli_env)
    assert _create(run_cli, env, sandbox, "rs", "--private-key-stdin", "--key-id", pair.kid,
                   "--key-alg", "RS512", "--use", input=pair.pem()).returncode == 0  # fmt: skip
    assert run_cli("tenant", "me", env=env).returncode == 0

    healthy, checks = _doctor(run_cli, env)
    assert healthy == 0, checks
    assert checks["token"]["status"] == "ok"
    assert "from the token cache (private key RS512, kid test-rs512)" in checks["token"]["detail"]

    # The stored key damaged: its cached token no longer counts, the key does not load.
    stored = secret_file_path("rs", env)
    stored.write_text(stored.read_text().replace("\n", "\n ", 3)[:300])
    broken, checks = _doctor(run_cli, env)
    assert broken == 3, checks
    assert checks["token"]["status"] == "fail"
    assert "private key" in checks["token"]["detail"]

    stored.unlink()
    missing, checks = _doctor(run_cli, env)
    assert missing == 3, checks
    assert "private key file of context 'rs' is missing" in checks["token"]["detail"]
    assert "--private-key-file" in checks["token"]["fix"]


def test_doctor_fails_a_key_context_whose_key_the_tenant_no_longer_knows(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "ES384")
    env = _no_credentials_env(cli_env)
    assert _create(run_cli, env, sandbox, "es", "--private-key-stdin", "--key-id", pair.kid,
                   "--use", "--no-verify", input=pair.pem()).returncode == 0  # fmt: skip
    sandbox.state.credentials.patch_public_keys(sandbox.client_id, "replace", [])

    code, checks = _doctor(run_cli, env)

    assert code == 4, checks
    assert "key id is unknown" in checks["token"]["detail"]


def test_a_new_rsa_key_keeps_the_contexts_rs512_and_an_ec_key_takes_es384(
    sandbox: Sandbox, run_cli: RunCli, cli_env: dict[str, str], tmp_path: Path
) -> None:
    first = _registered(sandbox, "RS512", "first-rs512")
    env = _no_credentials_env(cli_env)
    assert _create(run_cli, env, sandbox, "rs", "--private-key-stdin", "--key-id", first.kid,
                   "--key-alg", "RS512", "--use", input=first.pem()).returncode == 0  # fmt: skip
    second = key_pair("RS512", "second-rs512", fresh=True)
    sandbox.add_public_key(second.public_jwk)
    ec = _registered(sandbox, "ES384", "ec-next")

    to_rsa = run_cli("-o", "json", "context", "update", "rs", "--private-key-stdin", "--key-id",
                     second.kid, env=env, input=second.pem())  # fmt: skip
    to_ec = run_cli("-o", "json", "context", "update", "rs", "--private-key-stdin", "--key-id",
                    ec.kid, env=env, input=ec.pem())  # fmt: skip

    assert to_rsa.returncode == 0, to_rsa.stderr
    assert (to_rsa.json()["keyId"], to_rsa.json()["keyAlg"]) == (second.kid, "RS512")
    assert to_ec.returncode == 0, to_ec.stderr
    assert (to_ec.json()["keyId"], to_ec.json()["keyAlg"]) == (ec.kid, "ES384")
