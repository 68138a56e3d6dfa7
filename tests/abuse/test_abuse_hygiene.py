"""Secret hygiene over a scripted run of every command, with -v, on success and failure paths.

Under a known client secret (and API key), with every access token the sandbox ever issued
known: the secret appears in no stdout or stderr (tracebacks included: -v prints them on errors),
and in no file under the config or cache folders except an opt-in 0600 secret file; a token
appears only in the output of `auth token` and in the 0600 token cache file.

tests/e2e/test_ci_hygiene.py checks a first handful of commands; this goes through all of them
(the `sandbox` command is exempt: printing its own throwaway secret is its job).
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import files_under

from qlikm2m.sandbox import Sandbox

WRONG_SECRET = "a-wrong-client-secret-that-is-long-0123456789"
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
ACCESS_TOKEN_FORMATS = ("raw", "env")


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    result: subprocess.CompletedProcess[str]
    shows_token: bool  # `auth token`: the one command whose output is a token


@dataclass
class Script:
    """Runs commands, checks each exit code at once, and keeps every run for the final sweep."""

    run_qlikm2m: Any
    env: dict[str, str]
    runs: list[Run] = field(default_factory=list)

    def __call__(
        self,
        *args: str,
        code: int | None = 0,
        env: dict[str, str] | None = None,
        input: str | None = None,
        shows_token: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        result = self.run_qlikm2m(*args, env=env or self.env, input=input)
        if code is None:  # a failure whose code depends on the check that fails (doctor)
            assert result.returncode not in (0, 1), (args, result.stderr[-3000:])
        else:
            assert result.returncode == code, (
                args,
                result.returncode,
                result.stdout[-3000:],
                result.stderr[-3000:],
            )
        self.runs.append(Run(args, result, shows_token))
        return result


def assert_no_leak(
    script: Script,
    *,
    secrets: Iterable[str],
    tokens: Iterable[str],
    folders: Iterable[str | Path],
    secret_files_allowed: bool = False,
) -> None:
    secrets = [value for value in secrets if value]
    tokens = [value for value in tokens if value]
    assert tokens, "no token was learned: the sweep would prove nothing"
    for run in script.runs:
        streams = {"stdout": run.result.stdout, "stderr": run.result.stderr}
        for name, text in streams.items():
            for secret in secrets:
                assert secret not in text, (run.args, name, "secret")
            for token in tokens:
                if run.shows_token and name == "stdout":
                    continue
                assert token not in text, (run.args, name, "token")
        # Unexpected errors (exit 1) are bugs; tracebacks come only with -v and an error.
        assert run.result.returncode != 1, (run.args, run.result.stderr[-3000:])
        if run.result.returncode == 0:
            assert "Traceback" not in run.result.stderr, run.args
    for path in files_under(*folders):
        content = path.read_bytes()
        private = stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
        if any(secret.encode() in content for secret in secrets):
            assert secret_files_allowed, path
            assert path.parent.name == "secrets", path
            assert private, path
        if any(token.encode() in content for token in tokens):
            assert path.parent.name == "tokens", path
            assert private, path


def issued_tokens(sandbox: Sandbox) -> set[str]:
    with sandbox.state.lock:
        return set(sandbox.state.tokens)


def _without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in names}


# --- environment credentials: the CI path -------------------------------------------------------


@pytest.mark.slow
def test_every_tenant_command_with_environment_credentials(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any, tmp_path: Path
) -> None:
    sandbox: Sandbox = make_sandbox(fail_apps=("a0000000-0000-4000-8000-00000000fa11",))
    env = {
        **cli_env,
        "QLIK_SERVER": sandbox.url,
        "QLIK_CLIENT_ID": sandbox.client_id,
        "QLIK_CLIENT_SECRET": sandbox.client_secret,
        "QLIKM2M_MAX_RETRIES": "1",
        "QLIKM2M_MAX_RETRY_WAIT": "2",
    }
    script = Script(run_qlikm2m, env)
    app = sandbox.app_ids()[0]
    export = tmp_path / "export" / "app.json"
    export.parent.mkdir()

    # Success paths.
    for fmt in ACCESS_TOKEN_FORMATS:
        script("-v", "auth", "token", "--format", fmt, shows_token=True)
    script("-v", "user", "me")
    script("-vv", "tenant", "me")
    script("-v", "auth", "status")
    script("-vv", "-o", "yaml", "auth", "status")
    script("-v", "api", "v1/items")
    script("-v", "api", "v1/items", "--paginate", "-q", "limit=7")
    script("-vv", "api", "v1/items", "--ndjson", "--include", "-q", "limit=20")
    script("-vv", "api", "-X", "POST", "v1/reloads", "-d", json.dumps({"appId": app}))
    script("-v", "api", f"v1/apps/{app}", "--output-file", str(export))
    script("-v", "-o", "yaml", "spaces", "ls")
    script("-v", "-o", "table", "items", "ls", "--limit", "3")
    script("-v", "apps", "ls", "--ndjson")
    script("-v", "apps", "get", app)
    script("-v", "reload", app, "--wait", "--poll-interval", "0.1")
    script("-v", "-o", "json", "doctor")
    script("-v", "user", "me", "--no-token-cache")
    no_secret = _without(env, "QLIK_CLIENT_SECRET")
    script("-v", "user", "me", "--client-secret-stdin", env=no_secret, input=sandbox.client_secret)
    api_key_env = {
        **_without(env, "QLIK_CLIENT_ID", "QLIK_CLIENT_SECRET"),
        "QLIK_API_KEY": sandbox.api_key or "",
    }
    script("-v", "user", "me", env=api_key_env)
    minted = script("auth", "token", shows_token=True).stdout.strip()
    given = {**_without(env, "QLIK_CLIENT_ID", "QLIK_CLIENT_SECRET"), "QLIK_ACCESS_TOKEN": minted}
    script("-v", "tenant", "me", env=given)

    # Failure paths.
    wrong = {**env, "QLIK_CLIENT_SECRET": WRONG_SECRET, "QLIK_API_KEY": ""}
    script("-v", "user", "me", code=4, env=wrong)
    script("-v", "-o", "json", "user", "me", code=4, env=wrong)
    script("-v", "auth", "token", code=4, env=wrong, shows_token=True)
    script("-v", "doctor", code=None, env=wrong)
    script("-v", "reload", "a0000000-0000-4000-8000-00000000fa11", "--wait", "--poll-interval",
           "0.1", code=8)  # fmt: skip
    script("-v", "reload", "no-such-app", "--wait", code=5)
    script("-v", "api", "v1/items/does-not-exist", code=5)
    script("-v", "-o", "json", "apps", "get", "no-such-app", code=5)
    script("-v", "tenant", "me", "--query", "[?", code=2)
    sandbox.force(status=403, body={"errors": [{"code": "HTTP-403", "title": "Forbidden"}]},
                  match="GET /api/v1/tenants/me", times=2)  # fmt: skip
    script("-v", "tenant", "me", code=5)
    script("-vv", "-o", "json", "tenant", "me", code=5)
    sandbox.force(status=401, body={"errors": [{"code": "HTTP-401", "title": "Unauthorized"}]},
                  match="GET /api/v1/users/me", times=None)  # fmt: skip
    script("-v", "user", "me", code=4)  # the cached token dropped, a new one refused too
    sandbox.clear_forced()
    sandbox.force(status=502, body=HTML_502, content_type="text/html",
                  match="GET /api/v1/items", times=None)  # fmt: skip
    script("-vv", "api", "v1/items", "--include", code=6)
    sandbox.clear_forced()
    untrusted = _without(env, "QLIK_CA_BUNDLE")
    script("-v", "tenant", "me", code=6, env=untrusted)
    script("-v", "-o", "json", "auth", "token", "--no-token-cache", code=6, env=untrusted,
           shows_token=True)  # fmt: skip
    sandbox.revoke_all()
    script("-v", "tenant", "me")  # a 401 on the cached token, a new one, a retry: all traced
    script("-v", "auth", "revoke")
    script("-v", "auth", "status")

    traced = [run for run in script.runs if "> GET" in run.result.stderr]
    assert len(traced) > 20  # the trace was on: the sweep below looked at real traces
    assert any("Authorization: Bearer ***" in run.result.stderr for run in script.runs)
    assert_no_leak(
        script,
        secrets=[sandbox.client_secret, WRONG_SECRET, sandbox.api_key or ""],
        tokens=issued_tokens(sandbox),
        folders=[env["QLIKM2M_CONFIG_DIR"], env["QLIKM2M_CACHE_DIR"], export.parent],
    )


# --- stored contexts: the workstation path ------------------------------------------------------


@pytest.mark.slow
def test_every_context_command_and_commands_through_contexts(
    sandbox: Sandbox, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    env = {key: value for key, value in cli_env.items() if not key.startswith("QLIK_")}
    env.update(ABUSE_SECRET=sandbox.client_secret, ABUSE_WRONG=WRONG_SECRET)
    script = Script(run_qlikm2m, env)
    ca = sandbox.ca_bundle or ""

    def create(name: str, *extra: str) -> list[str]:
        return ["-v", "context", "create", name, "--server", sandbox.url, "--oauth-client-id",
                sandbox.client_id, "--ca-bundle", ca, *extra]  # fmt: skip

    script(*create("alpha", "--client-secret-env", "ABUSE_SECRET", "--secret-storage", "file",
                   "--use", "--comment", "first"))  # fmt: skip
    script(*create("beta", "--client-secret-stdin", "--secret-storage", "file", "--no-verify"),
           input=sandbox.client_secret + "\n")  # fmt: skip
    # The keyring is the fail backend here: exit 7, with the secret given and nothing written.
    script(*create("gamma", "--client-secret-env", "ABUSE_SECRET"), code=7)
    script("-o", "json", *create("gamma", "--client-secret-stdin"), code=7,
           input=sandbox.client_secret + "\n")  # fmt: skip
    script(*create("delta", "--client-secret-env", "ABUSE_WRONG", "--secret-storage", "file"),
           code=4)  # fmt: skip
    script(*create("alpha", "--client-secret-env", "ABUSE_SECRET", "--secret-storage", "file"),
           code=2)  # exists, no --force, no terminal  # fmt: skip

    script("-v", "context", "ls")
    listed = json.loads(script("-v", "-o", "json", "context", "ls").stdout)
    assert sorted(row["name"] for row in listed) == ["alpha", "beta"]
    script("-v", "context", "get", "alpha")
    script("-v", "-o", "yaml", "context", "get", "beta")
    script("-v", "context", "current")
    script("-v", "user", "me")
    script("-vv", "tenant", "me")
    script("-v", "--context", "beta", "api", "v1/items", "--paginate")
    script("-v", "auth", "status")
    script("-v", "auth", "token", shows_token=True)
    script("-v", "doctor")
    script("-v", "context", "use", "beta")
    script("-v", "context", "update", "alpha", "--comment", "changed")
    script("-v", "context", "update", "alpha", "--client-secret-env", "ABUSE_SECRET")
    script("-v", "context", "update", "alpha", "--client-secret-env", "ABUSE_WRONG", code=4)
    script("-v", "-o", "json", "context", "update", "alpha", "--client-secret-env",
           "ABUSE_WRONG", code=4)  # fmt: skip
    script("-v", "--context", "alpha", "user", "me")
    script("-v", "context", "rename", "beta", "bravo")
    script("-v", "--context", "bravo", "auth", "revoke")
    script("-v", "context", "rm", "bravo")
    script("-v", "context", "get", "bravo", code=3)
    script("-v", "--context", "nope", "user", "me", code=3)
    script("-v", "context", "use", "alpha")
    script("-v", "context", "clear")

    secrets_dir = Path(env["QLIKM2M_CONFIG_DIR"]) / "secrets"
    assert sorted(path.name for path in secrets_dir.iterdir()) == ["alpha"]
    assert_no_leak(
        script,
        secrets=[sandbox.client_secret, WRONG_SECRET],
        tokens=issued_tokens(sandbox),
        folders=[env["QLIKM2M_CONFIG_DIR"], env["QLIKM2M_CACHE_DIR"]],
        secret_files_allowed=True,
    )


# --- servers that echo what they were sent -------------------------------------------------------


def test_a_server_echoing_the_secret_or_the_token_back_is_redacted(
    sandbox: Sandbox, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    """Proxies and debug endpoints echo requests back; whatever they echo is masked."""
    script = Script(run_qlikm2m, {**cli_env, "QLIKM2M_MAX_RETRIES": "0"})
    secret = sandbox.client_secret
    echo = {"errors": [{"code": "X", "title": "Rejected", "detail": f"client_secret={secret}"}]}
    sandbox.force(status=400, body=echo, match="POST /oauth/token")
    script("-v", "user", "me", code=4)
    token = script("auth", "token", shows_token=True).stdout.strip()  # minted and cached
    said = {"errors": [{"title": "Denied", "detail": f"Authorization: Bearer {token}"}]}
    sandbox.force(status=500, body=said, match="GET /api/v1/tenants/me")
    script("-v", "tenant", "me", code=6)
    sandbox.force(status=403, body=said, match="GET /api/v1/tenants/me")
    script("-v", "-o", "json", "tenant", "me", code=5)
    sandbox.force(status=200, body={"id": "t"}, headers={"X-Echo": f"Bearer {token}"},
                  match="GET /api/v1/tenants/me", times=2)  # fmt: skip
    script("-vv", "api", "v1/tenants/me", "--include")
    script("-vv", "api", "v1/tenants/me", "--paginate", "--include")
    html = f"<html><title>Echo {secret}</title></html>"
    sandbox.force(status=502, body=html, content_type="text/html", match="GET /api/v1/items")
    script("-v", "items", "ls", code=6)
    assert "***" in "".join(run.result.stderr for run in script.runs)
    assert_no_leak(
        script,
        secrets=[secret],
        tokens=issued_tokens(sandbox) | {token},
        folders=[cli_env["QLIKM2M_CONFIG_DIR"], cli_env["QLIKM2M_CACHE_DIR"]],
    )


# --- private keys: private-key JWT and the oauth commands ---------------------------------------


def _key_lines(pems: Iterable[str], public_jwks: Iterable[dict[str, Any]]) -> list[str]:
    """A PEM's body, line by line: a leak of any part of a key is a leak. Except lines that lie
    inside the public key the DER also holds (an RSA modulus, an EC point): those may be seen
    in a printed JWK, which is public."""
    public = [str(jwk.get(m, "")) for jwk in public_jwks for m in ("n", "x", "y")]
    lines = [line.strip() for pem in pems for line in pem.splitlines()]
    return [
        line
        for line in lines
        if "-----" not in line
        and len(line) >= 16
        and not any(line.replace("+", "-").replace("/", "_") in part for part in public)
    ]


@pytest.mark.slow
def test_no_private_key_assertion_or_new_secret_leaks_from_the_key_commands(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any, tmp_path: Path
) -> None:
    from keys_support import key_pair

    from qlikm2m.assertion import load_private_key

    sandbox: Sandbox = make_sandbox()
    es, rs = key_pair("ES384", "hygiene-es", fresh=True), key_pair("RS256", "hygiene-rs")
    sandbox.add_public_key(es.public_jwk)
    sandbox.add_public_key(rs.public_jwk)
    secret_env = {**cli_env, "QLIK_SERVER": sandbox.url, "QLIK_CLIENT_ID": sandbox.client_id,
                  "QLIK_CLIENT_SECRET": sandbox.client_secret, "QLIKM2M_MAX_RETRIES": "0"}  # fmt: skip
    key_env = {**_without(secret_env, "QLIK_CLIENT_SECRET"), "QLIK_PRIVATE_KEY": es.pem(),
               "QLIK_KEY_ID": es.kid}  # fmt: skip
    rs_file = tmp_path / "given" / "rs.pem"
    rs_file.parent.mkdir()
    rs_file.write_text(rs.pem("traditional"))
    file_env = {**_without(key_env, "QLIK_PRIVATE_KEY", "QLIK_KEY_ID"),
                "QLIK_PRIVATE_KEY_FILE": str(rs_file), "QLIK_KEY_ID": rs.kid}  # fmt: skip
    weak = key_pair("RS256", bits=1024, fresh=True)
    passphrase = "a-private-key-passphrase-0123456789"
    encrypted = es.pem(password=passphrase.encode())
    script = Script(run_qlikm2m, key_env)
    outputs = tmp_path / "asked-for"
    outputs.mkdir()

    # Success paths.
    script("-vv", "tenant", "me")
    script("-v", "user", "me", "--no-token-cache")
    script("-vv", "-o", "yaml", "auth", "status")
    script("-v", "auth", "token", shows_token=True)
    script("-vv", "tenant", "me", "--no-token-cache", env=file_env)
    script("-v", "tenant", "me", env={**key_env, "QLIK_PRIVATE_KEY": es.pem().replace("\n", "\\n")})
    script("-v", "tenant", "me", "--no-token-cache",
           env={**key_env, "QLIK_PRIVATE_KEY": encrypted,
                "QLIK_PRIVATE_KEY_PASSPHRASE": passphrase})  # fmt: skip
    script("-vv", "oauth", "keys", "generate", "--out-private", str(outputs / "new.pem"),
           "--register", sandbox.client_id)  # fmt: skip
    script("-v", "oauth", "keys", "ls")
    script("-v", "oauth", "secrets", "ls")
    script("-v", "oauth", "tokens", "ls")
    script("-vv", "oauth", "secrets", "rotate", "--out-secret", str(outputs / "secret"),
           env=secret_env)  # fmt: skip
    rotated = (outputs / "secret").read_text().strip()

    # Failure paths.
    script("-v", "tenant", "me", "--no-token-cache", code=4,
           env={**key_env, "QLIK_KEY_ID": "not-registered"})  # fmt: skip
    sandbox.advance_clock(900)
    script("-vv", "-o", "json", "tenant", "me", "--no-token-cache", code=4)
    sandbox.advance_clock(-900)
    script("-v", "tenant", "me", code=3, env={**key_env, "QLIK_PRIVATE_KEY": weak.pem()})
    script("-vv", "-o", "json", "tenant", "me", code=3,
           env={**key_env, "QLIK_PRIVATE_KEY": encrypted})  # fmt: skip
    script("-v", "tenant", "me", "--no-token-cache", code=3,
           env={**key_env, "QLIK_PRIVATE_KEY": encrypted,
                "QLIK_PRIVATE_KEY_PASSPHRASE": "wrong-passphrase-0123456789"})  # fmt: skip
    script("-v", "tenant", "me", code=3,
           env={**key_env, "QLIK_PRIVATE_KEY": es.pem()[:200] + es.pem()[260:]})  # fmt: skip
    # The deleted secret no longer mints (its cached token would still work until it expires).
    script("-v", "oauth", "secrets", "rotate", "--print-secret", "--no-token-cache", code=4,
           env=secret_env)  # fmt: skip

    traced = [run for run in script.runs if "POST " in run.result.stderr]
    assert len(traced) > 5  # the trace was on and showed the token requests
    generated = (outputs / "new.pem").read_text()
    generated_jwk = load_private_key(generated, source="test").public_jwk()
    assert stat.S_IMODE((outputs / "new.pem").stat().st_mode) == 0o600
    jwt_shape = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")
    for run in script.runs:
        # A client assertion is a JWT (header.claims.signature, both JSON objects: "eyJ"...);
        # nothing else the tool handles here is one.
        assert not jwt_shape.search(run.result.stdout + run.result.stderr), run.args
    assert_no_leak(
        script,
        secrets=[es.pem(), rs.pem(), encrypted, weak.pem(), generated, passphrase, rotated,
                 sandbox.client_secret,
                 *_key_lines([es.pem(), rs.pem("traditional"), encrypted, weak.pem(), generated],
                             [es.public_jwk, rs.public_jwk, weak.public_jwk, generated_jwk])],
        tokens=issued_tokens(sandbox),
        folders=[key_env["QLIKM2M_CONFIG_DIR"], key_env["QLIKM2M_CACHE_DIR"]],
    )  # fmt: skip


@pytest.mark.slow
def test_no_private_key_leaks_from_key_contexts_and_their_rotation(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any, tmp_path: Path
) -> None:
    """The workstation path of private keys: contexts that hold a key, created from a file, from
    stdin and encrypted, used, shown, checked, updated, rotated and removed, on success and
    failure. The key is only ever in its 0600 secret file."""
    from keys_support import key_pair

    from qlikm2m.assertion import load_private_key
    from qlikm2m.secretstore import secret_file_path

    sandbox: Sandbox = make_sandbox()
    es, rs = key_pair("ES384", "ctx-es", fresh=True), key_pair("RS512", "ctx-rs")
    sandbox.add_public_key(es.public_jwk)
    sandbox.add_public_key(rs.public_jwk)
    stranger = key_pair("ES384", "ctx-es", fresh=True)
    weak = key_pair("RS256", bits=1024, fresh=True)
    passphrase = "a-context-key-passphrase-0123456789"
    encrypted = es.pem(password=passphrase.encode())
    given = tmp_path / "given"
    given.mkdir()
    (given / "es.pem").write_text(es.pem("traditional"))
    (given / "enc.pem").write_text(encrypted)
    (given / "stranger.pem").write_text(stranger.pem())
    (given / "weak.pem").write_text(weak.pem())
    env = {key: value for key, value in cli_env.items() if not key.startswith("QLIK_")}
    env.update(KEY_PASS=passphrase, ABUSE_SECRET=sandbox.client_secret, QLIKM2M_MAX_RETRIES="0")
    script = Script(run_qlikm2m, env)
    ca = sandbox.ca_bundle or ""

    def create(name: str, *extra: str) -> list[str]:
        return ["-v", "context", "create", name, "--server", sandbox.url, "--oauth-client-id",
                sandbox.client_id, "--ca-bundle", ca, "--secret-storage", "file", *extra]  # fmt: skip

    # Success paths.
    script(*create("es", "--private-key-file", str(given / "es.pem"), "--key-id", "ctx-es",
                   "--use"))  # fmt: skip
    script("-vv", "-o", "json", *create("rs", "--private-key-stdin", "--key-id", "ctx-rs",
                                        "--key-alg", "RS512"), input=rs.pem())  # fmt: skip
    script(*create("enc", "--private-key-file", str(given / "enc.pem"), "--key-id", "ctx-es",
                   "--private-key-passphrase-env", "KEY_PASS", "--no-verify"))  # fmt: skip
    script(*create("sec", "--client-secret-env", "ABUSE_SECRET"))
    script("-vv", "user", "me")
    script("-vv", "--context", "rs", "tenant", "me", "--no-token-cache")
    script("-v", "--context", "enc", "api", "v1/items")
    script("-vv", "-o", "yaml", "auth", "status")
    script("-v", "context", "get", "rs")
    script("-v", "-o", "json", "context", "ls")
    script("-v", "doctor")
    script("-v", "auth", "token", shows_token=True)
    script("-v", "context", "update", "enc", "--key-id", "ctx-es")
    script("-vv", "oauth", "keys", "rotate", "--context", "rs", "--bits", "2048")
    script("-vv", "oauth", "keys", "rotate")
    script("-vv", "oauth", "secrets", "rotate", "--context", "sec")
    script("-vv", "--context", "sec", "oauth", "keys", "generate", "--save-to-context", "made",
           "--secret-storage", "file", "--register", sandbox.client_id)  # fmt: skip
    script("-v", "--context", "made", "tenant", "me")
    script("-v", "context", "rename", "made", "renamed")

    # Failure paths.
    script(*create("bad", "--private-key-file", str(given / "stranger.pem"), "--key-id",
                   "ctx-es"), code=4)  # fmt: skip
    script("-vv", "-o", "json", *create("bad", "--private-key-file", str(given / "weak.pem")),
           code=3)  # fmt: skip
    script(*create("bad", "--private-key-file", str(given / "enc.pem")), code=3)
    script(*create("bad", "--private-key-stdin"), code=3, input=es.pem()[:300])
    script("-v", "context", "update", "es", "--private-key-file", str(given / "stranger.pem"),
           code=4)  # fmt: skip
    secret_file_path("enc", env).write_text(stranger.pem())
    script("-vv", "--context", "enc", "tenant", "me", "--no-token-cache", code=4)
    script("-v", "--context", "enc", "doctor", code=None)
    script("-v", "context", "rm", "enc")

    stored = [secret_file_path(name, env).read_text() for name in ("es", "rs", "renamed")]
    rotated_secret = secret_file_path("sec", env).read_text().strip()
    pems = [es.pem(), es.pem("traditional"), rs.pem(), encrypted, stranger.pem(), weak.pem(),
            *stored]  # fmt: skip
    jwks = [es.public_jwk, rs.public_jwk, stranger.public_jwk, weak.public_jwk,
            *(load_private_key(pem, source="test").public_jwk() for pem in stored)]  # fmt: skip
    jwt_shape = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")
    for run in script.runs:
        assert not jwt_shape.search(run.result.stdout + run.result.stderr), run.args
    traced = [run for run in script.runs if "POST " in run.result.stderr]
    assert len(traced) > 5
    assert_no_leak(
        script,
        secrets=[*pems, passphrase, sandbox.client_secret, rotated_secret,
                 *_key_lines(pems, jwks)],
        tokens=issued_tokens(sandbox),
        folders=[env["QLIKM2M_CONFIG_DIR"], env["QLIKM2M_CACHE_DIR"]],
        secret_files_allowed=True,
    )  # fmt: skip
