"""`reload [--wait]` run as real processes against the sandbox: success, failure, cancel, timeout,
Ctrl-C, several apps at once, and 429s while polling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from types import SimpleNamespace
from typing import IO, Any

import pytest
from fixtures_sandbox import sandbox_env
from harness import FakeClock, RunCli

import qlikm2m.reloads
from qlikm2m.sandbox import Sandbox

POST_RELOADS = "POST /api/v1/reloads"
GET_RELOAD = "GET /api/v1/reloads/{reloadId}"
FAST = ("--poll-interval", "0.1")
FAILING_APP = "a0000000-0000-4000-8000-00000000fa11"


def _env_for(sandbox: Sandbox, cli_env: dict[str, str]) -> dict[str, str]:
    return sandbox_env(sandbox, cli_env)


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qlikm2m", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(stream: IO[str], marker: str) -> list[str]:
    """Lines of a child's stderr up to the first containing ``marker`` (the child is waiting)."""
    seen: list[str] = []
    for line in stream:
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never appeared; stderr was: {''.join(seen)}")


def _interrupted(
    args: list[str], env: dict[str, str], *, after: list[str], signum: int
) -> tuple[int, str, str]:
    """Run qlikm2m, send ``signum`` once each of the ``after`` stderr markers has appeared in
    turn, and return (exit code, stdout, stderr)."""
    child = _start(args, env)
    try:
        assert child.stderr is not None
        for marker in after:
            _read_until(child.stderr, marker)
        child.send_signal(signum)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    return child.returncode, out, err


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_reload_without_wait_starts_it_and_returns(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    app_id = sandbox.app_ids()[0]
    result = run_qlikm2m("reload", app_id, "--partial")
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["appId"] == app_id
    assert record["status"] == "QUEUED"
    assert record["partial"] is True
    assert sandbox.count(POST_RELOADS) == 1
    assert sandbox.count(GET_RELOAD) == 0


def test_wait_until_succeeded_prints_the_final_record(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    app_id = sandbox.app_ids()[0]
    result = run_qlikm2m("reload", app_id, "--wait", *FAST)
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["status"] == "SUCCEEDED"
    assert record["appId"] == app_id
    # Not a terminal: plain status lines, no spinner escape codes.
    assert f"reload {record['id']} SUCCEEDED" in result.stderr
    assert "\x1b[" not in result.stderr
    assert sandbox.count(POST_RELOADS) == 1
    assert sandbox.count(GET_RELOAD) >= 1


@pytest.mark.parametrize(
    ("ending", "status", "log_line"),
    [
        ("fail_apps", "FAILED", "Error: Field 'Amount' not found"),
        (
            "exceed_limit_apps",
            "EXCEEDED_LIMIT",
            "The reload exceeded the tenant's reload time limit",
        ),
    ],
)
def test_a_reload_that_ends_without_data_is_exit_8_with_its_log_on_stderr(
    make_sandbox: Any,
    cli_env: dict[str, str],
    run_qlikm2m: Any,
    ending: str,
    status: str,
    log_line: str,
) -> None:
    failing = make_sandbox(**{ending: (FAILING_APP,)})
    result = run_qlikm2m("reload", FAILING_APP, "--wait", *FAST, env=_env_for(failing, cli_env))
    assert result.returncode == 8, result.stderr
    [record] = json.loads(result.stdout)
    assert record["status"] == status
    assert "the end of its log:" in result.stderr
    assert f"  | {log_line}" in result.stderr
    assert f"error: reload {record['id']} of app {FAILING_APP} ended {status}" in result.stderr
    # The tail comes from the apps service's full script log, not the record's excerpt.
    assert failing.count("GET /api/v1/apps/{appId}/reloads/logs/{reloadId}") == 1
    assert "Traceback" not in result.stderr


def test_a_failed_reload_as_a_json_error(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    failing = make_sandbox(fail_apps=(FAILING_APP,))
    result = run_qlikm2m(
        "reload", FAILING_APP, "--wait", *FAST, "-o", "json", env=_env_for(failing, cli_env)
    )
    assert result.returncode == 8
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert error["kind"] == "reload-failed"
    assert error["exitCode"] == 8
    assert error["status"] == "FAILED"
    assert error["reloadId"] == json.loads(result.stdout)[0]["id"]


def test_a_reload_canceled_elsewhere_is_exit_8(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    slow = make_sandbox(reload_duration=60)
    env = _env_for(slow, cli_env)
    app_id = slow.app_ids()[0]
    child = _start(["reload", app_id, "--wait", *FAST], env)
    try:
        assert child.stderr is not None
        started = _read_until(child.stderr, "started")[-1]
        reload_id = started.split("reload ")[1].split()[0]
        cancel = run_qlikm2m("api", "-X", "POST", f"v1/reloads/{reload_id}/actions/cancel", env=env)
        assert cancel.returncode == 0, cancel.stderr
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 8, err
    assert json.loads(out)[0]["status"] == "CANCELED"
    assert "Reload was canceled" in err


def test_timeout_is_exit_9_and_the_reload_goes_on(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    slow = make_sandbox(reload_duration=120)
    app_id = slow.app_ids()[0]
    env = _env_for(slow, cli_env)
    result = run_qlikm2m(
        "reload", app_id, "--wait", "--timeout", "1s", "--poll-interval", "0.3", env=env
    )
    assert result.returncode == 9, result.stderr
    [record] = json.loads(result.stdout)
    assert record["status"] in ("QUEUED", "RELOADING")
    assert f"reload {record['id']} of app {app_id} was still" in result.stderr
    assert "server-side" in result.stderr
    # Nobody canceled it: the tenant still has it running.
    after = run_qlikm2m("api", f"v1/reloads/{record['id']}", env=env)
    assert json.loads(after.stdout)["status"] == "RELOADING"


# SIGTERM is how CI runners cancel a job: it must end the wait the way Ctrl-C does.
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_waiting_with_130_and_names_the_reload(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any, signum: signal.Signals
) -> None:
    slow = make_sandbox(reload_duration=120)
    env = _env_for(slow, cli_env)
    app_id = slow.app_ids()[0]
    code, out, err = _interrupted(
        ["reload", app_id, "--wait", *FAST], env, after=["RELOADING"], signum=signum
    )
    assert code == 130, err
    [record] = json.loads(out)
    assert f"stopped waiting; reload {record['id']} goes on server-side" in err
    assert "Traceback" not in err
    after = run_qlikm2m("api", f"v1/reloads/{record['id']}", env=env)
    assert json.loads(after.stdout)["status"] == "RELOADING"


def test_a_canceled_job_with_json_output_ends_in_a_json_error(
    make_sandbox: Any, cli_env: dict[str, str]
) -> None:
    slow = make_sandbox(reload_duration=120)
    args = ["-o", "json", "reload", slow.app_ids()[0], "--wait", *FAST]
    code, _, err = _interrupted(
        args, _env_for(slow, cli_env), after=["RELOADING"], signum=signal.SIGTERM
    )
    assert code == 130, err
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert (error["kind"], error["exitCode"]) == ("interrupted", 130)


def test_several_apps_run_concurrently_within_max_parallel(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    tenant = make_sandbox(items=60, fail_apps=(FAILING_APP,), reload_duration=0.5)
    apps = [*tenant.app_ids()[:5], FAILING_APP]
    assert len(set(apps)) == 6
    result = run_qlikm2m(
        "reload", *apps, "--wait", *FAST, "--max-parallel", "2", env=_env_for(tenant, cli_env)
    )
    assert result.returncode == 8, result.stderr
    records = json.loads(result.stdout)
    assert [r["appId"] for r in records] == apps
    assert [r["status"] for r in records] == ["SUCCEEDED"] * 5 + ["FAILED"]
    assert tenant.count(POST_RELOADS) == 6
    # The tenant's own timestamps: never more than two reloads alive at once, and two at times.
    events = sorted(
        [(_time(r["creationTime"]), 1) for r in records]
        + [(_time(r["endTime"]), -1) for r in records]
    )
    alive = peak = 0
    for _, change in events:
        alive += change
        peak = max(peak, alive)
    assert peak == 2
    summary = result.stderr[result.stderr.index("APP ") :]
    for record in records:
        assert record["appId"] in summary
        assert record["id"] in summary
    assert "error: 6 reloads: 5 succeeded, 1 failed." in result.stderr


def test_an_unknown_app_is_the_apis_refusal(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    result = run_qlikm2m("reload", "no-such-app", "--wait", *FAST)
    assert result.returncode == 5
    assert "403" in result.stderr
    # Still one entry per app id given, the failure included with its error.
    [entry] = json.loads(result.stdout)
    assert entry["appId"] == "no-such-app"
    assert entry["id"] is None
    assert entry["error"]["exitCode"] == 5


def test_429s_while_polling_are_absorbed(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    sandbox.force(
        status=429,
        headers={"retry-after": "1"},
        body={"errors": [{"code": "HTTP-429", "title": "API rate limit reached."}]},
        match="GET /api/v1/reloads/",
        times=2,
    )
    result = run_qlikm2m("-v", "reload", sandbox.app_ids()[0], "--wait", *FAST)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "SUCCEEDED"
    assert len(sandbox.forced) == 0  # both 429s were served, and waited out
    assert result.stderr.count("after: HTTP 429") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "5m"], "--timeout only applies with --wait"),
        (["--wait", "--timeout", "soon"], "--timeout 'soon' is not a duration"),
        (["--wait", "--max-parallel", "0"], "--max-parallel must be at least 1"),
        (["--wait", "--poll-interval", "0"], "--poll-interval must be at least"),
    ],
)
def test_bad_options_are_usage_errors_before_any_request(
    sandbox: Sandbox, run_qlikm2m: Any, args: list[str], message: str
) -> None:
    result = run_qlikm2m("reload", sandbox.app_ids()[0], *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert sandbox.count(POST_RELOADS) == 0


def test_the_same_app_twice_is_a_usage_error(sandbox: Sandbox, run_qlikm2m: Any) -> None:
    app_id = sandbox.app_ids()[0]
    result = run_qlikm2m("reload", app_id, app_id, "--wait")
    assert result.returncode == 2
    assert "given twice" in result.stderr
    assert sandbox.count(POST_RELOADS) == 0


@pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX only")
def test_on_a_terminal_the_wait_shows_a_spinner(sandbox: Sandbox, cli_env: dict[str, str]) -> None:
    import pexpect

    env = {**cli_env, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("CI", None)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qlikm2m", "reload", sandbox.app_ids()[0], "--wait", *FAST],
        env=env,
        encoding="utf-8",
        timeout=30,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    screen = child.before or ""
    # A spinner frame followed by the state and elapsed time, then the final tick line.
    assert any(frame in screen for frame in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
    assert "SUCCEEDED" in screen
    assert "✓ app" in screen


def test_the_tenants_own_rate_limit_while_polling_is_waited_out(
    make_sandbox: Any, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    limited = make_sandbox(rate_limit_tier1=3, rate_limit_window=1.0, reload_duration=1.5)
    env = _env_for(limited, cli_env)
    result = run_qlikm2m("-v", "reload", limited.app_ids()[0], "--wait", *FAST, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "SUCCEEDED"
    assert "after: HTTP 429" in result.stderr


def test_ctrl_c_with_several_apps_names_every_reload_still_running(
    make_sandbox: Any, cli_env: dict[str, str]
) -> None:
    slow = make_sandbox(reload_duration=120)
    env = _env_for(slow, cli_env)
    apps = slow.app_ids()[:3]
    code, out, err = _interrupted(
        ["reload", *apps, "--wait", *FAST, "--max-parallel", "2"],
        env,
        after=["started", "started"],
        signum=signal.SIGINT,
    )
    assert code == 130, err
    entries = json.loads(out)
    # One entry per app id given: the third never started, so it has no reload id.
    assert [r["appId"] for r in entries] == apps
    assert entries[2]["id"] is None
    records = entries[:2]
    assert "stopped waiting; these reloads go on server-side: " in err
    for record in records:
        assert f"{record['id']} (app {record['appId']})" in err
    third = next(line for line in err.splitlines() if line.startswith(apps[2]))
    assert "not started" in third
    assert slow.count(POST_RELOADS) == 2


def test_a_wrong_secret_is_one_auth_error_not_a_row_per_app(
    sandbox: Sandbox, cli_env: dict[str, str], run_qlikm2m: Any
) -> None:
    env = {**cli_env, "QLIK_CLIENT_SECRET": "not-the-secret-at-all"}
    result = run_qlikm2m("reload", *sandbox.app_ids()[:2], "--wait", *FAST, env=env)
    assert result.returncode == 4
    assert result.stderr.count("error:") == 1
    assert "APP " not in result.stderr
    assert sandbox.count(POST_RELOADS) == 0


# --- a bot that may not list reloads: the items tick, on a clock shared with the tenant ----------


def _shared_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A simulated clock for both the tenant and the wait's scheduler: the run is real HTTPS to
    the sandbox, but a 7 s reload takes no time and its timings are exact."""
    shared = FakeClock(start=float(int(time.time())))  # whole seconds: the tenant stamps ms
    monkeypatch.setattr(
        qlikm2m.reloads, "time", SimpleNamespace(monotonic=shared, sleep=shared.sleep)
    )
    return shared


def test_waiting_on_many_reloads_without_list_rights_reads_the_items_and_exits_at_the_ends(
    make_sandbox: Any, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = _shared_clock(monkeypatch)
    # The sandbox's bot is not a TenantAdmin: GET /api/v1/reloads without appId is refused.
    tenant = make_sandbox(items=60, clock=shared, reload_queue_time=1.0, reload_duration=6.0)
    apps = tenant.app_ids()[:8]
    result = run_cli("reload", *apps, "--wait", "--max-parallel", "8", env=sandbox_env(tenant))
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["status"] for r in records] == ["SUCCEEDED"] * 8
    # Seen ending within the one-second tick: the tenant's own end times against its clock.
    last_end = max(_time(r["endTime"]) for r in records)
    assert 0 <= shared.now - last_end <= 1.0
    counters = tenant.counters()
    assert counters.get("GET /api/v1/reloads", 0) == 1  # the list, tried once and refused
    # One items request a tick; each reload read once, when its item showed it had ended.
    assert 1 <= counters.get("GET /api/v1/items", 0) <= 8
    assert counters.get("GET /api/v1/reloads/{reloadId}", 0) == len(apps)


def test_items_refused_the_wait_falls_back_to_reading_each_reload(
    make_sandbox: Any, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = _shared_clock(monkeypatch)
    tenant = make_sandbox(items=60, clock=shared, reload_queue_time=1.0, reload_duration=6.0)
    tenant.force(
        status=403,
        body={"errors": [{"code": "HTTP-403", "title": "Forbidden"}], "traceId": "0" * 32},
        match="GET /api/v1/items",
        times=1,
    )
    apps = tenant.app_ids()[:3]
    result = run_cli("reload", *apps, "--wait", env=sandbox_env(tenant))
    assert result.returncode == 0, result.stderr
    assert [r["status"] for r in json.loads(result.stdout)] == ["SUCCEEDED"] * 3
    assert len(tenant.forced) == 0  # the items were asked for once
    # Each reload polled on its own schedule: several reads each.
    assert tenant.count("GET /api/v1/reloads/{reloadId}") > 2 * len(apps)
