"""App delivery run as real processes against the sandbox over HTTPS: deploy (created, converges,
dry run, reload with variables), import with a reset mid-upload and a 5xx on a chunk, export,
publish/republish, remove, data files, spaces and assignments, reloads by id, and the exit code
of every error path."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from fixtures_sandbox import MakeSandbox, RunQlikm2m, sandbox_env

from qlikm2m.sandbox import Sandbox

SHARED = "Sales shared space 1"
MANAGED = "Finance managed space 2"
DATA_SPACE = "Marketing data space 3"
PATCH = "PATCH /api/v1/temp-contents/files/{id}"
CHUNK = 256 * 1024


def _qvf(folder: Path, size: int = 3 * CHUNK + 1234, name: str = "Sales KPI.qvf") -> Path:
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


def _json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _published(sandbox: Sandbox, name: str) -> list[str]:
    managed = next(s["id"] for s in sandbox.state.spaces if s["name"] == MANAGED)
    return [
        a.id
        for a in sandbox.state.stores.apps
        if not a.deleted and a.space_id == managed and a.name == name
    ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- deploy -------------------------------------------------------------------------------------


def test_deploy_creates_then_converges_on_one_published_app(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m, tmp_path: Path
) -> None:
    qvf = _qvf(tmp_path)
    args = (
        "apps",
        "deploy",
        str(qvf),
        "--to",
        MANAGED,
        "--via",
        SHARED,
        "--chunk-size",
        str(CHUNK),
    )

    first = _json(run_qlikm2m(*args))
    second = _json(run_qlikm2m(*args))

    assert first["action"] == "created"
    assert second["action"] == "updated"
    assert second["appId"] == first["appId"]
    assert _published(sandbox, "Sales KPI") == [first["appId"]]
    assert first["source"]["sha256"] == _sha256(qvf)
    assert first["stagingRemoved"]
    assert second["stagingRemoved"]
    shared = next(s["id"] for s in sandbox.state.spaces if s["name"] == SHARED)
    assert not [a for a in sandbox.state.stores.apps if a.space_id == shared and not a.deleted]
    assert first["checked"]
    assert second["checked"]


def test_deploy_dry_run_only_reads(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m, tmp_path: Path
) -> None:
    qvf = _qvf(tmp_path)

    record = _json(run_qlikm2m("apps", "deploy", str(qvf), "--to", MANAGED, "--dry-run"))

    assert record["action"] == "created"
    assert record["dryRun"] is True
    assert record["appId"] is None
    assert record["source"]["bytes"] == qvf.stat().st_size
    writes = {k: v for k, v in sandbox.counters().items() if not k.startswith("GET ")}
    assert set(writes) == {"POST /oauth/token"}


def test_deploy_from_an_app_with_reload_variables(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m
) -> None:
    source = next(
        app_id
        for app_id in sandbox.app_ids()
        if sandbox.state.app_source(app_id)[1] == sandbox.state.spaces[0]["id"]  # type: ignore[index]
    )
    args = ("apps", "deploy", "--app", source, "--to", MANAGED, "--name", "Board",
            "--reload", "--var", "vRegion=EU", "--var", "vYear=2026", "--weight", "4")  # fmt: skip

    first = _json(run_qlikm2m(*args))
    second = _json(run_qlikm2m(*args))

    assert (first["action"], second["action"]) == ("created", "updated")
    assert first["reload"]["status"] == "SUCCEEDED"
    assert first["reload"]["variables"] == {"vRegion": "EU", "vYear": "2026"}
    assert first["reload"]["weight"] == 4
    assert second["originAppId"] == source
    assert _published(sandbox, "Board") == [first["appId"]]


def test_deploy_reload_timeout_is_exit_9(
    make_sandbox: MakeSandbox, run_qlikm2m: RunQlikm2m, cli_env: dict[str, str], tmp_path: Path
) -> None:
    slow = make_sandbox(reload_duration=60)
    qvf = _qvf(tmp_path, 1000)

    result = run_qlikm2m("apps", "deploy", str(qvf), "--to", MANAGED, "--reload",
                         "--timeout", "0.5s", env=sandbox_env(slow, cli_env))  # fmt: skip

    assert result.returncode == 9, result.stderr
    assert json.loads(result.stdout)["reload"]["status"] in ("QUEUED", "RELOADING")


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (("--to", "No such space"), 5, "No space is named"),
        (("--to", SHARED), 2, "managed"),
        (("--to", MANAGED, "--via", "Nowhere"), 5, "No space is named"),
        (("--to", MANAGED, "--var", "x=1"), 2, "--reload"),
        (("--to", MANAGED, "--reload", "--var", "novalue"), 2, "NAME=VALUE"),
        (("--to", MANAGED, "--reload", "--weight", "11"), 2, "1 to 10"),
        (("--to", MANAGED, "--app", "x"), 2, "either"),
        (("--to", ""), 2, "--to"),
    ],
)
def test_deploy_refusals(
    run_qlikm2m: RunQlikm2m, tmp_path: Path, args: tuple[str, ...], code: int, said: str
) -> None:
    qvf = _qvf(tmp_path, 100)

    result = run_qlikm2m("apps", "deploy", str(qvf), *args)

    assert result.returncode == code, result.stderr
    assert said in result.stderr
    assert result.stdout == ""


def test_deploy_with_two_published_apps_of_the_name_is_exit_5(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m, tmp_path: Path
) -> None:
    qvf = _qvf(tmp_path, 100)
    first = _json(run_qlikm2m("apps", "import", str(qvf), "--space", SHARED))
    for _ in range(2):
        _json(run_qlikm2m("apps", "publish", first["appId"], "--to", MANAGED))

    result = run_qlikm2m("apps", "deploy", str(qvf), "--to", MANAGED)

    assert result.returncode == 5
    assert "2 apps named 'Sales KPI'" in result.stderr
    assert sandbox.count("POST /api/v1/temp-contents/files") == 1  # nothing uploaded again


# -- import: resumable uploads --------------------------------------------------------------------


def test_import_resumes_after_a_reset_mid_upload(
    make_sandbox: MakeSandbox, run_qlikm2m: RunQlikm2m, cli_env: dict[str, str], tmp_path: Path
) -> None:
    sandbox = make_sandbox(upload_lock_seconds=0.3)
    qvf = _qvf(tmp_path, 4 * CHUNK)
    # The first PATCH is reset after 100 KiB arrived; the tenant keeps them and answers 423
    # Locked for 0.3 s, which the client waits out before asking the offset.
    sandbox.force(reset_after=100 * 1024, match="PATCH /api/v1/temp-contents/files/", times=1)

    record = _json(run_qlikm2m("apps", "import", str(qvf), "--space", SHARED,
                               "--chunk-size", str(CHUNK), env=sandbox_env(sandbox, cli_env)))  # fmt: skip

    assert record["sha256"] == _sha256(qvf)
    assert record["bytes"] == qvf.stat().st_size
    stored = sandbox.state.stores.live_app(record["appId"])
    assert stored is not None
    assert stored.content.path is not None
    assert Path(stored.content.path).read_bytes() == qvf.read_bytes()
    # 4 chunks, one of them cut: 5 PATCHes, going on from the kept offset (100 KiB): what was
    # re-sent is at most the rest of the cut chunk.
    assert sandbox.count(PATCH) == 5
    assert record["resumes"] == 1
    assert qvf.stat().st_size < record["bytesSent"] <= qvf.stat().st_size + CHUNK
    assert sandbox.count("HEAD /api/v1/temp-contents/files/{id}") >= 1


def test_import_goes_on_after_a_5xx_on_a_chunk(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m, tmp_path: Path
) -> None:
    qvf = _qvf(tmp_path, 2 * CHUNK)
    sandbox.force(status=502, body="<html>Bad gateway</html>", content_type="text/html",
                  match="PATCH /api/v1/temp-contents/files/")  # fmt: skip

    record = _json(run_qlikm2m("apps", "import", str(qvf), "--chunk-size", str(CHUNK)))

    assert record["sha256"] == _sha256(qvf)
    assert sandbox.count(PATCH) == 3
    assert record["name"] == "Sales KPI"
    assert record["spaceId"] is None


def test_import_gives_up_when_every_chunk_fails(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m, cli_env: dict[str, str], tmp_path: Path
) -> None:
    qvf = _qvf(tmp_path, CHUNK)
    sandbox.force(status=500, match="PATCH /api/v1/temp-contents/files/", times=None)
    # Giving up is the behaviour under test, not how long the default retry budget lasts.
    env = {**cli_env, "QLIKM2M_MAX_RETRIES": "1", "QLIKM2M_MAX_RETRY_WAIT": "1"}

    result = run_qlikm2m("apps", "import", str(qvf), "--chunk-size", str(CHUNK), env=env)

    assert result.returncode == 6, result.stderr
    assert "PATCH" in result.stderr
    assert sandbox.count("POST /api/v1/apps/import") == 0


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("missing.qvf",), 2),
        (("{qvf}", "--space", "No such space"), 5),
        (("{qvf}", "--space", MANAGED), 5),
        (("{qvf}", "--chunk-size", "10"), 2),
    ],
)
def test_import_refusals(
    run_qlikm2m: RunQlikm2m, tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    qvf = _qvf(tmp_path, 100)

    result = run_qlikm2m("apps", "import", *(a.format(qvf=qvf) for a in args))

    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr


# -- export, publish, republish, remove -------------------------------------------------------


def test_export_streams_the_app_to_a_file(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m, tmp_path: Path
) -> None:
    qvf = _qvf(tmp_path)
    imported = _json(run_qlikm2m("apps", "import", str(qvf), "--name", "Round trip"))
    out = tmp_path / "out.qvf"

    record = _json(run_qlikm2m("apps", "export", "Round trip", "--out", str(out)))
    again = run_qlikm2m("apps", "export", imported["appId"], "--out", str(out))
    seeded = _json(run_qlikm2m("apps", "export", sandbox.app_ids()[0], "--out",
                               str(tmp_path / "seeded.qvf"), "--no-data"))  # fmt: skip

    assert out.read_bytes() == qvf.read_bytes()
    assert record == {"appId": imported["appId"], "file": str(out), "bytes": qvf.stat().st_size,
                      "sha256": _sha256(qvf), "noData": False}  # fmt: skip
    assert again.returncode == 2
    assert "--overwrite" in again.stderr
    assert seeded["bytes"] == sandbox.config.export_bytes // 2
    assert list(tmp_path.glob(".*.part")) == []


def test_export_of_an_unknown_app_is_exit_5(run_qlikm2m: RunQlikm2m, tmp_path: Path) -> None:
    result = run_qlikm2m("apps", "export", "No such app", "--out", str(tmp_path / "x.qvf"))

    assert result.returncode == 5
    assert "No app is named 'No such app'" in result.stderr
    assert not (tmp_path / "x.qvf").exists()


def test_publish_then_republish_checks_the_origin(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m, tmp_path: Path
) -> None:
    qvf = _qvf(tmp_path, 100)
    first = _json(run_qlikm2m("apps", "import", str(qvf), "--space", SHARED, "--name", "A"))
    other = _json(run_qlikm2m("apps", "import", str(qvf), "--space", SHARED, "--name", "B"))
    published = _json(run_qlikm2m("apps", "publish", "A", "--to", MANAGED, "--name", "Pub"))

    same = _json(run_qlikm2m("apps", "republish", first["appId"], "--target", published["appId"]))
    refused = run_qlikm2m("apps", "republish", "B", "--target", published["appId"])
    forced = _json(run_qlikm2m("apps", "republish", "B", "--target", published["appId"],
                               "--no-check-origin", "--data", "target"))  # fmt: skip
    to_shared = run_qlikm2m("apps", "publish", "A", "--to", SHARED)

    assert published["originAppId"] == first["appId"]
    assert same["appId"] == published["appId"]
    assert refused.returncode == 5
    assert "checkOriginAppId" in refused.stderr
    assert forced["originAppId"] == other["appId"]
    assert to_shared.returncode == 5
    assert _published(sandbox, "Pub") == [published["appId"]]


def test_remove_asks_without_yes_and_removes_with_it(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m
) -> None:
    app_id = sandbox.app_ids()[0]

    refused = run_qlikm2m("apps", "rm", app_id)
    removed = _json(run_qlikm2m("apps", "rm", app_id, "--yes"))
    listed = _json(run_qlikm2m("apps", "ls"))
    again = run_qlikm2m("apps", "rm", app_id, "--yes")

    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert removed["appId"] == app_id
    assert app_id not in [app["resourceId"] for app in listed]
    assert again.returncode == 5


# -- names in listings ------------------------------------------------------------------------------


def test_apps_ls_space_takes_a_name_and_refuses_unknown_ones(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m
) -> None:
    by_name = _json(run_qlikm2m("apps", "ls", "--space", SHARED))
    by_id = _json(run_qlikm2m("apps", "ls", "--space", sandbox.state.spaces[0]["id"]))
    personal = _json(run_qlikm2m("items", "ls", "--space", "personal"))
    unknown = run_qlikm2m("apps", "ls", "--space", "Nowhere")
    unknown_id = run_qlikm2m("items", "ls", "--space", "0123456789abcdef01234567")

    assert by_name == by_id
    assert by_name
    assert all(a["spaceId"] == sandbox.state.spaces[0]["id"] for a in by_name)
    assert personal
    assert all("spaceId" not in item for item in personal)
    assert (unknown.returncode, unknown.stdout) == (5, "")
    assert "No space is named 'Nowhere'" in unknown.stderr
    assert unknown_id.returncode == 5


# -- spaces and assignments ------------------------------------------------------------------------


def test_spaces_create_and_ensure(sandbox: Sandbox, run_qlikm2m: RunQlikm2m) -> None:
    created = _json(run_qlikm2m("spaces", "create", "Finance (prod)", "--type", "managed"))
    again = run_qlikm2m("spaces", "create", "Finance (prod)", "--type", "managed")
    ensured = _json(run_qlikm2m("spaces", "create", "Finance (prod)", "--type", "managed",
                                "--ensure"))  # fmt: skip
    other_type = run_qlikm2m("spaces", "create", "Finance (prod)", "--type", "shared", "--ensure")
    bad = run_qlikm2m("spaces", "create", "a/b", "--type", "shared")

    assert created["action"] == "created"
    assert created["space"]["type"] == "managed"
    assert again.returncode == 5
    assert "--ensure" in again.stderr
    assert ensured == {"action": "existing", "space": ensured["space"]}
    assert ensured["space"]["id"] == created["space"]["id"]
    assert other_type.returncode == 5
    assert bad.returncode == 5
    assert [s["name"] for s in sandbox.state.spaces].count("Finance (prod)") == 1


def test_spaces_assign_and_ensure(sandbox: Sandbox, run_qlikm2m: RunQlikm2m) -> None:
    user = sandbox.state.users_sorted[0]["id"]
    args = ("spaces", "assign", SHARED, "--user", user, "--role", "producer")

    created = _json(run_qlikm2m(*args))
    again = run_qlikm2m(*args)
    ensured = _json(run_qlikm2m(*args, "--ensure"))
    group = _json(run_qlikm2m("spaces", "assign", DATA_SPACE, "--group", "g1", "--role",
                              "operator"))  # fmt: skip
    wrong_role = run_qlikm2m("spaces", "assign", MANAGED, "--user", user, "--role", "producer")
    neither = run_qlikm2m("spaces", "assign", SHARED, "--role", "producer")

    assert created["action"] == "created"
    assert created["assignment"]["roles"] == ["producer"]
    assert again.returncode == 5
    assert ensured["action"] == "existing"
    assert ensured["assignment"]["id"] == created["assignment"]["id"]
    assert group["assignment"]["type"] == "group"
    assert wrong_role.returncode == 5
    assert neither.returncode == 2


# -- data files -------------------------------------------------------------------------------------


def test_data_files_upload_replace_list_remove(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m, tmp_path: Path
) -> None:
    csv = tmp_path / "sales.csv"
    csv.write_text("region,amount\nEU,1\n")

    created = _json(run_qlikm2m("data-files", "upload", str(csv)))
    again = run_qlikm2m("data-files", "upload", str(csv))
    csv.write_text("region,amount\nEU,2\nUS,3\n")
    replaced = _json(run_qlikm2m("data-files", "upload", str(csv), "--replace"))
    listed = _json(run_qlikm2m("data-files", "ls"))
    refused = run_qlikm2m("data-files", "rm", "sales.csv")
    removed = _json(run_qlikm2m("data-files", "rm", "sales.csv", "--yes"))
    gone = run_qlikm2m("data-files", "rm", "sales.csv", "--yes")

    assert created["action"] == "created"
    assert again.returncode == 5
    assert "--replace" in again.stderr
    assert replaced["action"] == "replaced"
    assert replaced["dataFile"]["id"] == created["dataFile"]["id"]
    assert replaced["dataFile"]["size"] == csv.stat().st_size
    assert [f["name"] for f in listed] == ["sales.csv"]
    assert refused.returncode == 2
    assert removed == {"id": created["dataFile"]["id"], "name": "sales.csv"}
    assert gone.returncode == 5
    assert sandbox.state.stores.data_files == {}


# -- reloads by id ----------------------------------------------------------------------------------


def test_reloads_by_id_get_wait_log_cancel(
    make_sandbox: MakeSandbox, run_qlikm2m: RunQlikm2m, cli_env: dict[str, str]
) -> None:
    failing = "a0000000-0000-4000-8000-00000000fa11"
    sandbox = make_sandbox(fail_apps=(failing,))
    env = sandbox_env(sandbox, cli_env)
    app_id = sandbox.app_ids()[0]
    # `reload` prints one record per app id given, whatever their number (docs/output.md).
    [started] = _json(run_qlikm2m("reload", app_id, "--var", "vRegion=EU", env=env))

    got = _json(run_qlikm2m("reloads", "get", started["id"], env=env))
    [waited] = _json(run_qlikm2m("reloads", "wait", started["id"], "--poll-interval", "0.1",
                                 env=env))  # fmt: skip
    log = run_qlikm2m("reloads", "log", started["id"], env=env)
    too_late = run_qlikm2m("reloads", "cancel", started["id"], env=env)
    [fails] = _json(run_qlikm2m("reload", failing, env=env))
    failed = run_qlikm2m("reloads", "wait", fails["id"], "--poll-interval", "0.1", env=env)
    unknown = run_qlikm2m("reloads", "get", "nope", env=env)

    assert got["variables"] == {"vRegion": "EU"}
    assert waited["status"] == "SUCCEEDED"
    assert log.returncode == 0
    assert "Variable vRegion = EU" in log.stdout
    assert too_late.returncode == 5
    assert "SUCCEEDED" in too_late.stderr
    assert failed.returncode == 8
    assert unknown.returncode == 5


def test_reloads_wait_follows_several_reloads_at_once(
    make_sandbox: MakeSandbox, run_qlikm2m: RunQlikm2m, cli_env: dict[str, str]
) -> None:
    sandbox = make_sandbox(reload_duration=0.5)
    env = sandbox_env(sandbox, cli_env)
    apps = sandbox.app_ids()[:3]
    started = _json(run_qlikm2m("reload", *apps, env=env))
    ids = [record["id"] for record in started]
    waited = run_qlikm2m("reloads", "wait", *ids, "--poll-interval", "0.1", env=env)
    assert waited.returncode == 0, waited.stderr
    records = json.loads(waited.stdout)
    assert [record["id"] for record in records] == ids
    assert {record["status"] for record in records} == {"SUCCEEDED"}
    same_app = run_qlikm2m("reloads", "wait", ids[0], ids[0], env=env)
    assert same_app.returncode == 2


def test_reloads_cancel_and_wait_timeout(
    make_sandbox: MakeSandbox, run_qlikm2m: RunQlikm2m, cli_env: dict[str, str]
) -> None:
    sandbox = make_sandbox(reload_duration=60)
    env = sandbox_env(sandbox, cli_env)
    app_id = sandbox.app_ids()[0]
    [first] = _json(run_qlikm2m("reload", app_id, env=env))
    [second] = _json(run_qlikm2m("reload", sandbox.app_ids()[1], env=env))

    timed_out = run_qlikm2m("reloads", "wait", first["id"], "--timeout", "0.3s", env=env)
    canceled = _json(run_qlikm2m("reloads", "cancel", second["id"], env=env))

    assert timed_out.returncode == 9
    assert canceled["status"] == "CANCELED"


def test_export_cut_short_is_exit_6_and_leaves_no_file(
    sandbox: Sandbox, run_qlikm2m: RunQlikm2m, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "cut.qvf"
    sandbox.force(stream_bytes=100_000, stall_after=40_000, stall=0,
                  content_type="application/octet-stream", match="GET /api/v1/temp-contents/")  # fmt: skip

    result = run_qlikm2m("apps", "export", sandbox.app_ids()[0], "--out", str(out))

    assert result.returncode == 6, result.stderr
    assert "stopped after 40000 of 100000 bytes" in result.stderr
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(("answer", "code"), [("y", 0), ("n", 130)])
def test_remove_at_a_terminal_asks_first(
    sandbox: Sandbox, cli_env: dict[str, str], answer: str, code: int
) -> None:
    app_id = sandbox.app_ids()[0]
    env = {k: v for k, v in cli_env.items() if k != "CI"}
    child = pexpect.spawn(sys.executable, ["-m", "qlikm2m", "apps", "rm", app_id], env=env,
                          encoding="utf-8", timeout=30)  # fmt: skip
    child.expect(r"Remove app .* \[y/N\]")
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()

    assert child.exitstatus == code
    assert (app_id in sandbox.app_ids()) is (answer == "n")
