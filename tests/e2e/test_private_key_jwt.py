"""Private-key JWT from the environment, end to end: the real command in subprocesses against the
HTTPS sandbox, which verifies each assertion (signature by kid, aud, exp/iat, jti replay)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from keys_support import ALGORITHMS, KeyPair, key_pair

from qlikm2m.sandbox import Sandbox

TOKEN = "POST /oauth/token"


def _key_env(cli_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in cli_env.items() if k != "QLIK_CLIENT_SECRET"}
    env.update(extra)
    return env


def _assertions_seen(sandbox: Sandbox) -> int:
    return len(sandbox.state.credentials.clients[sandbox.client_id].seen_jtis)


def _registered(sandbox: Sandbox, alg: str, kid: str | None = None, **kw: Any) -> KeyPair:
    pair = key_pair(alg, kid, **kw)
    sandbox.add_public_key(pair.public_jwk)
    return pair


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_a_key_in_the_environment_mints_caches_and_reuses_a_token(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str], alg: str
) -> None:
    pair = _registered(sandbox, alg)
    # RS512 must be named: an RSA key alone says RS256.
    env = _key_env(cli_env, QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID=pair.kid, QLIK_KEY_ALG=alg)

    first = run_qlikm2m("user", "me", env=env)
    second = run_qlikm2m("tenant", "me", env=env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert json.loads(first.stdout)["clientId"] == sandbox.client_id
    assert sandbox.count(TOKEN) == 1  # the second command used the cached token
    assert _assertions_seen(sandbox) == 1  # and the first one signed an assertion
    assert first.stderr == second.stderr == ""


def test_the_kid_defaults_to_the_keys_thumbprint(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    from qlikm2m.assertion import thumbprint

    pair = key_pair("ES384")
    sandbox.add_public_key({**pair.public_jwk, "kid": thumbprint(pair.public_jwk)})

    result = run_qlikm2m("tenant", "me", env=_key_env(cli_env, QLIK_PRIVATE_KEY=pair.pem()))

    assert result.returncode == 0, result.stderr


def test_a_key_file_binds_the_cache_to_the_key_not_to_its_path(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    pair = _registered(sandbox, "RS512")
    first_path, moved = tmp_path / "ci-key.pem", tmp_path / "elsewhere.pem"
    first_path.write_text(pair.pem("traditional"))  # PKCS#1
    moved.write_text(pair.pem("traditional"))
    base = {"QLIK_KEY_ID": pair.kid, "QLIK_KEY_ALG": "RS512"}

    ran = [
        run_qlikm2m("tenant", "me", env=_key_env(cli_env, QLIK_PRIVATE_KEY_FILE=str(path), **base))
        for path in (first_path, moved)
    ]
    other = _registered(sandbox, "ES384", "other-key")
    with_other = run_qlikm2m(
        "tenant", "me", env=_key_env(cli_env, QLIK_PRIVATE_KEY=other.pem(), QLIK_KEY_ID="other-key")
    )

    assert [r.returncode for r in ran] == [0, 0], ran[0].stderr
    assert with_other.returncode == 0, with_other.stderr
    # Same key at another path: cached token reused; another key: a token of its own.
    assert sandbox.count(TOKEN) == 2


def test_auth_status_shows_where_the_key_settings_come_from(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    pair = _registered(sandbox, "ES384")
    path = tmp_path / "key.pem"
    path.write_text(pair.pem())
    env = _key_env(cli_env, QLIK_PRIVATE_KEY_FILE=str(path), QLIK_KEY_ID=pair.kid)

    status = run_qlikm2m("auth", "status", env=env)

    assert status.returncode == 0, status.stderr
    rows = {row["name"]: row for row in json.loads(status.stdout)["settings"]}
    assert rows["private_key"]["source"] == "env QLIK_PRIVATE_KEY_FILE"
    assert rows["private_key"]["value"].startswith("*** (sha256 ")
    assert rows["key_id"] == {"name": "key_id", "value": pair.kid, "source": "env QLIK_KEY_ID"}
    assert rows["key_alg"]["source"] == "default: from the key type"
    assert "client_secret" not in rows
    for line in pair.pem().splitlines()[1:-1]:
        assert line not in status.stdout + status.stderr


def _failure(result: Any, code: int) -> dict[str, Any]:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    error: dict[str, Any] = json.loads(result.stderr)["error"]
    return error


def test_a_key_unknown_to_the_tenant_is_exit_4_naming_the_kid(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "ES384", "registered-kid")
    env = _key_env(cli_env, QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID="some-other-kid")

    error = _failure(run_qlikm2m("-o", "json", "tenant", "me", env=env), 4)

    assert "key id is unknown to the tenant" in error["message"]
    assert "QLIK_KEY_ID" in error["hint"]
    assert error["code"] == "OAUTH-21"


@pytest.mark.parametrize("skew", [600, -600], ids=["client-slow", "client-fast"])
def test_clock_skew_is_exit_4_naming_the_clock(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str], skew: int
) -> None:
    pair = _registered(sandbox, "ES384")
    sandbox.advance_clock(skew)
    env = _key_env(cli_env, QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID=pair.kid)

    error = _failure(run_qlikm2m("-o", "json", "tenant", "me", env=env), 4)

    assert "clock skew" in error["message"]
    assert "clock" in error["hint"]
    assert error["code"] == "OAUTH-24"


def test_an_rs512_key_used_as_rs256_is_exit_4_naming_the_algorithm(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "RS512")
    env = _key_env(cli_env, QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID=pair.kid)

    error = _failure(run_qlikm2m("-o", "json", "tenant", "me", env=env), 4)

    assert "algorithm is not the one registered" in error["message"]
    assert "QLIK_KEY_ALG" in error["hint"]


def test_a_refusal_for_the_audience_is_exit_4_naming_it(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    # The sandbox accepts every URL it is reached by, so the refusal a tenant behind another
    # name would give is forced (the real check is in tests/sandbox/test_sandbox_keys.py).
    pair = _registered(sandbox, "RS256")
    sandbox.force(
        status=401,
        match="POST /oauth/token",
        body={"errors": [{"code": "OAUTH-25", "title": "Invalid audience", "status": "401",
                          "detail": "aud must be the token endpoint."}]},
    )  # fmt: skip
    env = _key_env(cli_env, QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID=pair.kid)

    error = _failure(run_qlikm2m("-o", "json", "tenant", "me", env=env), 4)

    assert "refused for its audience" in error["message"]
    assert "server URL" in error["hint"]


def test_an_unpublished_code_is_still_named_from_the_detail(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "ES384")
    sandbox.force(
        status=401,
        match="POST /oauth/token",
        body={"errors": [{"code": "OAUTH-99", "title": "Unauthorized", "status": "401",
                          "detail": "token has expired"}]},
    )  # fmt: skip
    env = _key_env(cli_env, QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID=pair.kid)

    error = _failure(run_qlikm2m("-o", "json", "tenant", "me", env=env), 4)

    assert "clock skew" in error["message"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"QLIK_CLIENT_SECRET": "also-a-secret-value"}, "Both a client secret and a private key"),
        ({"QLIK_CLIENT_ID": ""}, "no client id"),
        ({"QLIK_PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, "Both QLIK_PRIVATE_KEY and"),
        ({"QLIK_KEY_ALG": "HS256"}, "HS256"),
    ],
    ids=["secret-too", "no-client-id", "text-and-file", "bad-alg"],
)
def test_inconsistent_key_settings_are_config_errors(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str], extra: dict[str, str], message: str
) -> None:
    pair = _registered(sandbox, "ES384")
    env = _key_env(cli_env, QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID=pair.kid, **extra)

    error = _failure(run_qlikm2m("-o", "json", "tenant", "me", env=env), 3)

    assert message in error["message"]
    assert sandbox.count(TOKEN) == 0


def test_a_weak_key_is_refused_before_anything_is_sent(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    weak = key_pair("RS256", bits=1024, fresh=True)
    path = tmp_path / "weak.pem"
    path.write_text(weak.pem())

    result = run_qlikm2m(
        "-o", "json", "tenant", "me", env=_key_env(cli_env, QLIK_PRIVATE_KEY_FILE=str(path))
    )

    error = _failure(result, 3)
    assert "1024 bits" in error["message"]
    assert "env QLIK_PRIVATE_KEY_FILE" in error["message"]
    assert sandbox.count(TOKEN) == 0
    for line in weak.pem().splitlines()[1:-1]:
        assert line not in result.stderr


def test_an_encrypted_key_needs_the_passphrase_variable(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "ES384")
    env = _key_env(
        cli_env, QLIK_PRIVATE_KEY=pair.pem(password=b"ci passphrase"), QLIK_KEY_ID=pair.kid
    )

    without = run_qlikm2m("-o", "json", "tenant", "me", env=env)
    with_it = run_qlikm2m(
        "tenant", "me", env={**env, "QLIK_PRIVATE_KEY_PASSPHRASE": "ci passphrase"}
    )

    assert "QLIK_PRIVATE_KEY_PASSPHRASE" in _failure(without, 3)["hint"]
    assert with_it.returncode == 0, with_it.stderr


def test_a_pem_with_escaped_newlines_from_a_ci_variable_works(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "ES384")
    one_line = pair.pem().replace("\n", "\\n")

    result = run_qlikm2m(
        "tenant", "me", env=_key_env(cli_env, QLIK_PRIVATE_KEY=one_line, QLIK_KEY_ID=pair.kid)
    )

    assert result.returncode == 0, result.stderr


def test_every_token_request_signs_a_fresh_assertion(
    sandbox: Sandbox, run_qlikm2m: Any, cli_env: dict[str, str]
) -> None:
    pair = _registered(sandbox, "ES384")
    env = _key_env(cli_env, QLIK_PRIVATE_KEY=pair.pem(), QLIK_KEY_ID=pair.kid)

    runs = [run_qlikm2m("tenant", "me", "--no-token-cache", env=env) for _ in range(3)]

    assert [r.returncode for r in runs] == [0, 0, 0], runs[0].stderr
    assert sandbox.count(TOKEN) == 3
    assert _assertions_seen(sandbox) == 3  # no jti was replayed
