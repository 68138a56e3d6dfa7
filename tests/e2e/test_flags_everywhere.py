"""Every shared option works before and after the command name, repeats accumulate or are
refused, and the qlik-cli aliases and `help` work: real processes against the sandbox."""

from __future__ import annotations

import json

import pytest
from fixtures_sandbox import RunQlikm2m

from qlikm2m.sandbox import Sandbox


def _without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in names}


def test_connection_options_before_and_after_the_command_name(
    run_qlikm2m: RunQlikm2m, sandbox: Sandbox, cli_env: dict[str, str]
) -> None:
    env = _without(cli_env, "QLIK_SERVER")
    before = run_qlikm2m("--server", sandbox.url, "user", "me", env=env)
    after = run_qlikm2m("user", "me", "--server", sandbox.url, env=env)
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.stdout == after.stdout
    assert json.loads(before.stdout)["subject"].startswith("qlikbot")

    # Given in both places, the one after the command name (closest to it) wins.
    closest = run_qlikm2m(
        "--server", "https://127.0.0.1:9", "user", "me", "--server", sandbox.url, env=env
    )
    assert closest.returncode == 0, closest.stderr
    farthest = run_qlikm2m(
        "--server", sandbox.url, "user", "me", "--server", "https://127.0.0.1:9",
        env={**env, "QLIKM2M_MAX_RETRIES": "0"},
    )  # fmt: skip
    assert farthest.returncode != 0
    assert "Could not reach 127.0.0.1" in farthest.stderr


def test_impersonate_before_the_command_name_reaches_the_token_request(
    run_qlikm2m: RunQlikm2m, sandbox: Sandbox
) -> None:
    before = run_qlikm2m("--impersonate", "userId:nobody", "user", "me")
    after = run_qlikm2m("user", "me", "--impersonate", "userId:nobody")
    assert "No such option" not in before.stderr
    # The same refusal either way: the unknown user, with a hint about the id, not the secret.
    assert before.returncode == after.returncode == 4, before.stderr
    assert before.stderr == after.stderr
    assert "OAUTH-10" in before.stderr
    assert "check the user id" in before.stderr.lower()
    assert "secret" not in before.stderr.lower()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--server", "https://tenant.example", "context", "ls"], "--server before"),
        (
            ["--scope", "x", "--ca-bundle", "f.pem", "context", "create", "n"],
            "--scope, --ca-bundle",
        ),
    ],
)
def test_connection_options_before_a_command_that_ignores_them_are_refused(
    run_qlikm2m: RunQlikm2m, args: list[str], named: str
) -> None:
    # Silently dropped, `qlikm2m --server URL context create` would save a context without it.
    done = run_qlikm2m(*args, env=None)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr
    assert "after the command name" in done.stderr


def test_global_options_after_a_context_command(run_qlikm2m: RunQlikm2m) -> None:
    # -v and --no-input after the name too, not only -o/--query.
    listed = run_qlikm2m("context", "ls", "-v", "--no-input", "-o", "json", env=None)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_repeated_type_filters_accumulate_into_one_comma_list(
    run_qlikm2m: RunQlikm2m, sandbox: Sandbox
) -> None:
    repeated = run_qlikm2m("items", "ls", "--type", "app", "--type", "dataset", "-v")
    assert repeated.returncode == 0, repeated.stderr
    kinds = {record["resourceType"] for record in json.loads(repeated.stdout)}
    assert kinds == {"app", "dataset"}
    # items.json: resourceType takes several types as one comma-separated value.
    assert "resourceType=app%2Cdataset" in repeated.stderr
    comma = run_qlikm2m("items", "ls", "--type", "app,dataset")
    assert json.loads(comma.stdout) == json.loads(repeated.stdout)


def test_repeated_space_types_accumulate(run_qlikm2m: RunQlikm2m, sandbox: Sandbox) -> None:
    both = run_qlikm2m("spaces", "ls", "--type", "shared", "--type", "managed")
    assert both.returncode == 0, both.stderr
    kinds = [record["type"] for record in json.loads(both.stdout)]
    assert set(kinds) == {"shared", "managed"}
    everything = json.loads(run_qlikm2m("spaces", "ls").stdout)
    assert len(kinds) == sum(1 for s in everything if s["type"] in ("shared", "managed"))


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["apps", "ls", "--space", "a", "--space", "b"], "--space"),
        (["-o", "json", "-o", "yaml", "user", "me"], "--output"),
        (["user", "me", "-c", "a", "--context", "b"], "--context"),
        (["--server", "https://a.example", "--server", "https://b.example", "user", "me"],
         "--server"),
        (["reload", "x", "--timeout", "1m", "--timeout", "2m"], "--timeout"),
    ],
)  # fmt: skip
def test_a_single_value_option_given_twice_is_a_usage_error(
    run_qlikm2m: RunQlikm2m, cli_env: dict[str, str], args: list[str], option: str
) -> None:
    # No server in reach: the refusal comes before any request.
    done = run_qlikm2m(*args, env=_without(cli_env, "QLIK_SERVER"))
    assert done.returncode == 2, done.stderr
    assert f"'{option}' was given more than once" in done.stderr
    assert done.stdout == ""


def test_flags_and_counts_may_repeat(run_qlikm2m: RunQlikm2m) -> None:
    done = run_qlikm2m("-v", "user", "me", "-v", "--no-token-cache", "--no-token-cache")
    assert done.returncode == 0, done.stderr
    # -v before and -v after add up to -vv: headers are traced (redacted).
    assert "authorization:" in done.stderr.lower()


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        (["app", "list"], ["apps", "ls"]),
        (["space", "list"], ["spaces", "ls"]),
        (["item", "list", "--limit", "3"], ["items", "ls", "--limit", "3"]),
        (["apps", "list"], ["apps", "ls"]),
    ],
)
def test_qlik_cli_aliases(
    run_qlikm2m: RunQlikm2m, sandbox: Sandbox, alias: list[str], canonical: list[str]
) -> None:
    via_alias = run_qlikm2m(*alias)
    direct = run_qlikm2m(*canonical)
    assert via_alias.returncode == direct.returncode == 0, via_alias.stderr
    assert via_alias.stdout == direct.stdout
    assert json.loads(via_alias.stdout)


def test_aliases_stay_out_of_the_command_list(run_qlikm2m: RunQlikm2m) -> None:
    listed = run_qlikm2m("--help", env=None)
    commands = listed.stdout.split("Commands:")[1].split()
    assert "apps" in commands
    assert "app" not in commands
    assert "app, space, item and list" in " ".join(listed.stdout.split())
