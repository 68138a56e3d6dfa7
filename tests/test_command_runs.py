"""Each command's run function, called the way a test or another tool would: with its options
value and no command line (no Typer, no argv parsing), against the sandbox over real HTTP."""

from __future__ import annotations

import ast
import json
import shutil
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fixtures_sandbox import sandbox_env
from harness import make_runtime

from qlikm2m.commands import (
    api,
    apps,
    auth,
    doctor,
    items,
    oauth,
    reload,
    spaces,
    tenant,
    user,
)
from qlikm2m.commands.common import TenantFlags
from qlikm2m.commands.context.prompting import KeyFlags
from qlikm2m.errors import ConfigError, Interrupted, UsageError

COMMANDS = Path(__file__).resolve().parent.parent / "qlikm2m" / "commands"


def test_tenant_and_user_me_print_the_resource(sandbox: Any) -> None:
    env = sandbox_env(sandbox)
    runtime = make_runtime(env)
    tenant.run_me(tenant.MeOptions(runtime, TenantFlags()))
    assert json.loads(runtime.out)["id"]
    runtime = make_runtime(env)
    user.run_me(user.MeOptions(runtime, TenantFlags()))
    assert "subject" in json.loads(runtime.out)
    assert sandbox.count("GET /api/v1/tenants/me") == 1


def test_connection_flags_in_the_options_win_over_the_environment(sandbox: Any) -> None:
    env = {**sandbox_env(sandbox), "QLIK_SERVER": "https://nowhere.invalid"}
    runtime = make_runtime(env)
    tenant.run_me(tenant.MeOptions(runtime, TenantFlags(server=sandbox.url)))
    assert json.loads(runtime.out)["id"]


def test_spaces_ls_streams_the_listing_with_its_filters(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox), output="json")
    spaces.run_ls(spaces.LsOptions(runtime, TenantFlags(), space_types=("shared",), limit=50))
    listed = json.loads(runtime.out)
    assert listed
    assert {space["type"] for space in listed} == {"shared"}


def test_items_ls_takes_its_options_as_a_value(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox), output="json")
    items.run_ls(items.LsOptions(runtime, TenantFlags(), item_types=("app",), limit=2))
    listed = json.loads(runtime.out)
    assert 0 < len(listed) <= 2
    assert {item["resourceType"] for item in listed} == {"app"}


def test_spaces_assign_refuses_half_an_assignee_before_any_request(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox))
    with pytest.raises(UsageError, match="either --user ID or --group ID"):
        spaces.run_assign(spaces.AssignOptions(runtime, TenantFlags(), space="x", roles=("a",)))
    assert sandbox.count("POST /oauth/token") == 0


def test_auth_status_returns_the_check_s_exit_code_instead_of_exiting(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox), output="json")
    assert auth.run_status(auth.StatusOptions(runtime, TenantFlags())) == 0
    shown = json.loads(runtime.out)
    assert shown["check"]["ok"] is True
    assert {"name": "connect_timeout", "value": "10", "source": "default"} in shown["settings"]


def test_auth_token_prints_the_format_asked_for(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox))
    auth.run_token(auth.TokenOptions(runtime, TenantFlags(), auth.TokenFormat.header))
    assert runtime.out.startswith("Authorization: Bearer ")


def test_doctor_returns_the_first_failure_s_exit_code(sandbox: Any) -> None:
    runtime = make_runtime({**sandbox_env(sandbox), "QLIK_SERVER": "ftp://bad"}, output="json")
    code = doctor.run_doctor(doctor.DoctorOptions(runtime, TenantFlags()))
    assert code == 3  # settings: the URL is refused
    assert json.loads(runtime.out)["ok"] is False


def test_api_calls_the_path_of_its_options(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox))
    api.run_api(api.ApiOptions(runtime=runtime, tenant=TenantFlags(), path="v1/users/me"))
    assert "subject" in json.loads(runtime.out)


def test_apps_get_refuses_an_empty_id_before_any_request(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox))
    with pytest.raises(UsageError, match="app id is empty"):
        apps.run_get(apps.AppGetOptions(runtime=runtime, tenant=TenantFlags(), app_id="  "))
    assert sandbox.count("POST /oauth/token") == 0


def test_reload_returns_its_exit_code_and_prints_one_record_per_app(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox), output="json")
    app_id = sandbox.app_ids()[0]
    options = reload.ReloadOptions(runtime=runtime, tenant=TenantFlags(), app_ids=[app_id])
    assert reload.run_reload(options) == 0
    [record] = json.loads(runtime.out)
    assert record["appId"] == app_id


@pytest.mark.parametrize(("answer", "removed"), [("y\n", True), ("no\n", False)])
def test_apps_rm_asks_on_the_runtime_s_streams_not_typer_s(
    sandbox: Any, answer: str, removed: bool
) -> None:
    app_id = sandbox.app_ids()[0]
    env = {k: v for k, v in sandbox_env(sandbox).items() if k != "CI"}
    runtime = make_runtime(env, stdin=answer, stdin_tty=True)
    options = apps.AppRmOptions(runtime=runtime, tenant=TenantFlags(), app_ref=app_id)
    if removed:
        apps.run_rm(options)
        assert json.loads(runtime.out)["appId"] == app_id
    else:
        with pytest.raises(Interrupted, match="the answer was no"):
            apps.run_rm(options)
        assert runtime.out == ""
    assert "Remove app" in runtime.err
    assert "[y/N]" in runtime.err
    assert (app_id in sandbox.app_ids()) is not removed


def test_apps_rm_refuses_without_yes_when_nobody_can_answer(sandbox: Any) -> None:
    app_id = sandbox.app_ids()[0]
    runtime = make_runtime(sandbox_env(sandbox), stdin="y\n")  # stdin is not a terminal
    options = apps.AppRmOptions(runtime=runtime, tenant=TenantFlags(), app_ref=app_id)
    with pytest.raises(UsageError, match="Refusing without --yes"):
        apps.run_rm(options)
    assert app_id in sandbox.app_ids()


def test_oauth_keys_generate_register_ls_and_delete_run_without_a_command_line(
    sandbox: Any, tmp_path: Path
) -> None:
    env = sandbox_env(sandbox)
    key_file = tmp_path / "bot.pem"
    runtime = make_runtime(env)
    oauth.run_keys_generate(
        oauth.KeysGenerateOptions(
            runtime=runtime,
            tenant=TenantFlags(),
            out_private=key_file,
            register_on=sandbox.client_id,
        )
    )
    jwk = json.loads(runtime.out)
    assert (jwk["kty"], jwk["alg"]) == ("EC", "ES384")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    runtime = make_runtime(env)
    oauth.run_keys_ls(oauth.ClientOptions(runtime=runtime, tenant=TenantFlags()))
    assert json.loads(runtime.out) == [jwk]
    runtime = make_runtime(env)
    oauth.run_keys_delete(
        oauth.KeysDeleteOptions(runtime=runtime, tenant=TenantFlags(), kid=jwk["kid"])
    )
    assert json.loads(runtime.out) == {"clientId": sandbox.client_id, "deleted": jwk["kid"]}
    assert sandbox.state.credentials.public_keys(sandbox.client_id) == []


def test_oauth_keys_generate_needs_a_place_for_the_key_before_any_request(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox))
    options = oauth.KeysGenerateOptions(
        runtime=runtime, tenant=TenantFlags(), register_on=sandbox.client_id
    )
    with pytest.raises(UsageError, match="Say where the private key goes"):
        oauth.run_keys_generate(options)
    assert sandbox.count("POST /oauth/token") == 0


def test_oauth_keys_rotate_refuses_credentials_that_sign_in_with_a_secret(sandbox: Any) -> None:
    runtime = make_runtime(sandbox_env(sandbox))
    with pytest.raises(UsageError, match="sign in with a client secret"):
        oauth.run_keys_rotate(oauth.KeysRotateOptions(runtime=runtime, tenant=TenantFlags()))
    assert runtime.out == ""


def test_oauth_secrets_and_tokens_ls_print_no_secret_values(sandbox: Any) -> None:
    env = sandbox_env(sandbox)
    runtime = make_runtime(env)
    oauth.run_secrets_ls(oauth.ClientOptions(runtime=runtime, tenant=TenantFlags()))
    assert [s["hint"] for s in json.loads(runtime.out)] == [sandbox.client_secret[-4:]]
    assert sandbox.client_secret not in runtime.out
    runtime = make_runtime(env)
    oauth.run_tokens_ls(oauth.TokensLsOptions(runtime=runtime, tenant=TenantFlags()))
    [token] = json.loads(runtime.out)
    assert sandbox.client_id in token["description"]


def test_oauth_secrets_rotate_prints_the_new_secret_only_when_asked(sandbox: Any) -> None:
    env = sandbox_env(sandbox)
    runtime = make_runtime(env)
    with pytest.raises(UsageError, match="Say where the new secret goes"):
        oauth.run_secrets_rotate(oauth.SecretsRotateOptions(runtime=runtime, tenant=TenantFlags()))
    old = sandbox.client_secret
    runtime = make_runtime(env)
    options = oauth.SecretsRotateOptions(runtime=runtime, tenant=TenantFlags(), print_secret=True)
    oauth.run_secrets_rotate(options)
    report = json.loads(runtime.out)
    assert report["oldHint"] == old[-4:]
    assert sandbox.client_secret_hints() == [report["clientSecret"][-4:]]


def _run_functions() -> dict[str, ast.FunctionDef]:
    found: dict[str, ast.FunctionDef] = {}
    for path in COMMANDS.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("run_"):
                found[f"{path.relative_to(COMMANDS).with_suffix('').as_posix()}.{node.name}"] = node
    return found


def test_run_functions_know_nothing_of_typer() -> None:
    runs = _run_functions()
    assert "tenant_run.run_me" in runs  # the scan sees them
    for name, node in runs.items():
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        assert "typer" not in used, name
        assert "ctx" not in used, name
    common = ast.parse((COMMANDS / "common.py").read_text(encoding="utf-8"))
    imported = {
        alias.name for n in ast.walk(common) if isinstance(n, ast.Import) for alias in n.names
    }
    imported |= {n.module or "" for n in ast.walk(common) if isinstance(n, ast.ImportFrom)}
    assert "qlikm2m.runtime" in imported  # the scan sees imports, also those for type checking
    assert not {name for name in imported if name.split(".")[0] in ("typer", "click")}


def _stored_contexts(runtime: Any, *names: str) -> None:
    from qlikm2m.contexts import Context
    from qlikm2m.credstore import CredentialStore

    store = CredentialStore(runtime.env, interactive=False)
    for name in names:
        context = Context(
            name=name,
            server="https://t.example.com",
            auth_type="oauth",
            client_id=f"cid-{name}",
            secret_storage="file",
        )
        store.save(context, f"s-{name}", make_current=False, replace_existing=False)


def test_context_ls_use_current_get_and_clear_run_without_a_command_line() -> None:
    from qlikm2m.commands.context import listing

    runtime = make_runtime(output="json")
    _stored_contexts(runtime, "b", "a")
    listing.run_ls(listing.LsOptions(runtime))
    rows = json.loads(runtime.out)
    assert [(r["name"], r["current"]) for r in rows] == [("a", False), ("b", False)]

    runtime = make_runtime()
    listing.run_use(listing.UseOptions(runtime, name="b"))
    assert "Switched to context 'b'." in runtime.err
    runtime = make_runtime()
    listing.run_current(listing.CurrentOptions(runtime))
    assert runtime.out == "b\n"

    runtime = make_runtime(output="json")
    listing.run_get(listing.GetOptions(runtime, name="a"))
    view = json.loads(runtime.out)
    assert (view["name"], view["clientId"]) == ("a", "cid-a")
    assert {"name": "context", "value": "a", "source": "argument NAME"} in view["settings"]
    assert "s-a" not in runtime.out

    listing.run_clear(listing.ClearOptions(make_runtime()))
    with pytest.raises(ConfigError, match="No current context"):
        listing.run_current(listing.CurrentOptions(make_runtime()))


def test_context_rename_and_rm_run_without_a_command_line() -> None:
    from qlikm2m.commands.context import removal
    from qlikm2m.contexts import load_contexts

    runtime = make_runtime(output="json")
    _stored_contexts(runtime, "a", "b")
    with pytest.raises(UsageError, match="already exists"):
        removal.run_rename(removal.RenameOptions(runtime, old_name="a", new_name="b"))
    removal.run_rename(removal.RenameOptions(runtime, old_name="a", new_name="c"))
    assert json.loads(runtime.out)["renamedFrom"] == "a"

    runtime = make_runtime(output="json")
    removal.run_rm(removal.RmOptions(runtime, name="c"))
    assert json.loads(runtime.out)["removed"] == "c"
    assert "Deleted context 'c'." in runtime.err
    assert sorted(load_contexts(runtime.env).contexts) == ["b"]


def test_context_import_qlik_cli_runs_without_a_command_line(tmp_path: Path) -> None:
    from qlikm2m.commands.context import importing
    from qlikm2m.contexts import load_contexts

    source = tmp_path / "contexts.yml"
    shutil.copyfile(Path(__file__).parent / "data" / "qlik-cli" / "contexts.yml", source)
    runtime = make_runtime(output="json")
    options = importing.ImportOptions(runtime, path=str(source), dry_run=True, storage="file")
    importing.run_import_qlik_cli(options)
    listed = json.loads(runtime.out)
    names = sorted(entry["name"] for entry in listed["imported"])
    assert names == ["acme-m2m", "acme.eu.qlikcloud.com", "both-kinds"]
    assert load_contexts(runtime.env).contexts == {}  # a dry run changes nothing

    runtime = make_runtime(output="json")
    importing.run_import_qlik_cli(
        importing.ImportOptions(runtime, path=str(source), storage="file")
    )
    assert json.loads(runtime.out)["dryRun"] is False
    assert sorted(load_contexts(runtime.env).contexts) == names
    assert "fake-api-key" not in runtime.out + runtime.err


def test_context_update_changes_only_what_its_options_give() -> None:
    # By name: the package exports the Typer function `update`, which hides the module.
    from qlikm2m.commands.context.update import UpdateOptions, run_update
    from qlikm2m.contexts import load_contexts

    runtime = make_runtime(output="json")
    _stored_contexts(runtime, "a")
    run_update(UpdateOptions(runtime, name="a", comment="nightly"))
    view = json.loads(runtime.out)
    assert (view["comment"], view["droppedTokens"]) == ("nightly", 0)
    assert "Updated context 'a'." in runtime.err
    stored = load_contexts(runtime.env).get("a")
    assert (stored.comment, stored.client_id) == ("nightly", "cid-a")
    runtime = make_runtime(output="json")
    with pytest.raises(UsageError, match="holds no private key"):
        run_update(UpdateOptions(runtime, name="a", key=KeyFlags(key_id="k1")))


def test_context_create_and_init_run_without_a_command_line(sandbox: Any) -> None:
    from qlikm2m.commands.context.create import (
        Answers,
        CreateOptions,
        InitOptions,
        run_create,
        run_init,
    )
    from qlikm2m.commands.context.prompting import SecretFlags
    from qlikm2m.contexts import load_contexts

    env = sandbox_env(sandbox)
    answers = Answers(
        server=sandbox.url,
        auth_type=None,
        client_id=sandbox.client_id,
        scope=None,
        ca_bundle=env["QLIK_CA_BUNDLE"],
        comment=None,
        storage="file",
        secrets=SecretFlags(client_secret_env="QLIK_CLIENT_SECRET"),
    )
    runtime = make_runtime(env, output="json")
    run_create(CreateOptions(runtime, name="sbx", answers=answers, use=True))
    assert json.loads(runtime.out)["name"] == "sbx"
    assert sandbox.client_secret not in runtime.out + runtime.err
    assert load_contexts(runtime.env).current == "sbx"
    assert sandbox.count("GET /api/v1/users/me") == 1  # verified before it was saved

    runtime = make_runtime(env)  # stdin is no terminal: init names the flag instead of asking
    with pytest.raises(UsageError, match="--server URL"):
        run_init(InitOptions(runtime, answers=replace(answers, server=None)))


CONVERTED = {
    "api": {"run_api"},
    "apps": {"run_ls", "run_get", "run_export", "run_import", "run_publish", "run_republish"}
    | {"run_deploy", "run_rm"},
    "auth": {"run_token", "run_status", "run_revoke"},
    "data_files": {"run_ls", "run_upload", "run_rm"},
    "doctor": {"run_doctor"},
    "each": {"run_each"},
    "exec": {"run_exec"},
    "items": {"run_ls"},
    "oauth": {"run_keys_generate", "run_keys_ls", "run_keys_delete", "run_keys_rotate"}
    | {"run_secrets_ls", "run_secrets_delete", "run_secrets_rotate", "run_tokens_ls"},
    "reload": {"run_reload"},
    "reloads": {"run_get", "run_wait", "run_cancel", "run_log"},
    "spaces": {"run_ls", "run_create", "run_assign"},
    "tenant": {"run_me"},
    "user": {"run_me"},
    "context/listing": {"run_ls", "run_use", "run_current", "run_clear", "run_get"},
    "context/removal": {"run_rm", "run_rename"},
    "context/importing": {"run_import_qlik_cli"},
    "context/update": {"run_update"},
    "context/create": {"run_init", "run_create"},
}


def test_the_command_functions_of_a_converted_module_call_its_run_functions() -> None:
    runs = _run_functions()
    for module, expected in CONVERTED.items():
        # Defined in the module, or in its Typer-free companion (``api_run`` for ``api``) that
        # the launcher's fast path runs without Typer.
        defined = {name.replace("_run.", ".", 1) if "_run." in name else name for name in runs}
        assert {f"{module}.{name}" for name in expected} <= defined, module
        tree = ast.parse((COMMANDS / f"{module}.py").read_text(encoding="utf-8"))
        commands = [
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and not node.name.startswith("_")
            and [a.arg for a in node.args.args[:1]] == ["ctx"]
        ]
        called = {
            call.func.id
            for node in commands
            for call in ast.walk(node)
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
        }
        # Nested commands (defined inside register) would not be seen here: none may remain.
        nested = [
            inner.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == "register"
            for inner in ast.walk(node)
            if isinstance(inner, ast.FunctionDef) and inner is not node
        ]
        assert nested == [], (module, nested)
        assert expected <= called, (module, expected - called)


def test_an_interrupted_wait_concludes_with_130_for_the_caller_to_exit_with() -> None:
    # reload and reloads wait share the conclusion; it returns the code instead of exiting.
    from qlikm2m.commands.reload import _conclude
    from qlikm2m.output import Output
    from qlikm2m.reloads import Outcome, ReloadResult, RunReport

    runtime = make_runtime(output="json")
    stopped = ReloadResult("app-1", Outcome.INTERRUPTED, record={"id": "r-1", "status": "QUEUED"})
    report = RunReport((stopped,), interrupted=True)
    assert _conclude(runtime, Output(runtime), report, waited=True) == 130
    assert json.loads(runtime.out)[0]["id"] == "r-1"
    done = ReloadResult("app-1", Outcome.SUCCEEDED, record={"id": "r-1", "status": "SUCCEEDED"})
    assert _conclude(runtime, Output(runtime), RunReport((done,)), waited=True) == 0
