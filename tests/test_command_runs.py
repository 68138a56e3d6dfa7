"""Each command's run function, called the way a test or another tool would: with its options
value and no command line (no Typer, no argv parsing), against the sandbox over real HTTP."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from fixtures_sandbox import sandbox_env
from harness import make_runtime

from qlikm2m.commands import api, apps, auth, doctor, items, reload, spaces, tenant, user
from qlikm2m.commands.common import TenantFlags
from qlikm2m.errors import Interrupted, UsageError

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


def _run_functions() -> dict[str, ast.FunctionDef]:
    found: dict[str, ast.FunctionDef] = {}
    for path in COMMANDS.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("run_"):
                found[f"{path.stem}.{node.name}"] = node
    return found


def test_run_functions_know_nothing_of_typer() -> None:
    runs = _run_functions()
    assert "tenant.run_me" in runs  # the scan sees them
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
