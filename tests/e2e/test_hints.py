"""Hints name the fix for the case at hand, and error texts say each thing once: real processes
against the sandbox."""

from __future__ import annotations

from fixtures_sandbox import RunQlikm2m

from qlikm2m.sandbox import Sandbox

CREDENTIAL_VARS = ("QLIK_SERVER", "QLIK_CLIENT_ID", "QLIK_CLIENT_SECRET")


def _bare(cli_env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in cli_env.items() if key not in CREDENTIAL_VARS}


def _create(run: RunQlikm2m, env: dict[str, str], sandbox: Sandbox, name: str, secret: str) -> None:
    created = run(
        "context", "create", name, "--server", sandbox.url, "--client-id", sandbox.client_id,
        "--client-secret-stdin", "--ca-bundle", sandbox.ca_bundle or "",
        "--secret-storage", "file", "--no-verify", env=env, input=secret + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr


def test_a_wrong_stored_secret_names_context_update(
    run_qlikm2m: RunQlikm2m, sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    env = _bare(cli_env)
    _create(run_qlikm2m, env, sandbox, "typo", "not-the-secret-at-all")
    done = run_qlikm2m("-c", "typo", "user", "me", "--no-token-cache", env=env)
    assert done.returncode == 4, done.stderr
    assert "OAUTH-5" in done.stderr
    assert "`qlikm2m context update typo --prompt-secret`" in done.stderr


def test_a_wrong_secret_from_the_environment_keeps_the_general_hint(
    run_qlikm2m: RunQlikm2m, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "QLIK_CLIENT_SECRET": "not-the-secret-at-all"}
    done = run_qlikm2m("user", "me", "--no-token-cache", env=env)
    assert done.returncode == 4, done.stderr
    assert "context update" not in done.stderr
    assert "Check the client id and secret" in done.stderr


def test_contexts_without_a_current_one_are_named(
    run_qlikm2m: RunQlikm2m, sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    env = _bare(cli_env)
    _create(run_qlikm2m, env, sandbox, "prod", sandbox.client_secret)
    _create(run_qlikm2m, env, sandbox, "qa", sandbox.client_secret)
    assert run_qlikm2m("context", "clear", env=env).returncode == 0
    done = run_qlikm2m("user", "me", env=env)
    assert done.returncode == 3, done.stderr
    assert "No context is current" in done.stderr
    assert "'prod', 'qa'" in done.stderr
    assert "`qlikm2m context use prod`" in done.stderr
    assert "`-c prod`" in done.stderr
    assert "No credentials are configured" not in done.stderr


def test_no_contexts_and_no_credentials_says_so(
    run_qlikm2m: RunQlikm2m, cli_env: dict[str, str]
) -> None:
    done = run_qlikm2m("user", "me", env=_bare(cli_env))
    assert done.returncode == 3, done.stderr
    assert "No credentials are configured" in done.stderr
    assert "context init" in done.stderr


def test_a_mistyped_app_id_says_to_check_the_id(run_qlikm2m: RunQlikm2m, sandbox: Sandbox) -> None:
    done = run_qlikm2m("reload", "no-such-app-id")
    assert done.returncode == 5, done.stderr
    assert "RELOADS-005" in done.stderr
    assert "hint: Check the app id" in done.stderr
    assert "lacks the permission" not in done.stderr


def test_error_texts_do_not_repeat_themselves(run_qlikm2m: RunQlikm2m, sandbox: Sandbox) -> None:
    done = run_qlikm2m("api", "v1/items/no-such-item")
    assert done.returncode == 5, done.stderr
    first = done.stderr.splitlines()[0]
    assert (
        first
        == "error: GET /api/v1/items/no-such-item failed with HTTP 404 Not Found: Item not found."
    )
