"""The reload scheduler against a scripted tenant and a fake clock: no sleeping, no HTTP."""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import FakeClock

from qlikm2m.errors import (
    ApiError,
    AuthError,
    ExitCode,
    NetworkError,
    ReloadFailedError,
    UsageError,
    WaitTimeoutError,
)
from qlikm2m.reloads import (
    ADAPTIVE_FIRST_POLL,
    ADAPTIVE_MAX_POLL,
    LIST_MAX_TICK,
    MAX_POLLS_PER_TICK,
    SAFETY_POLL,
    Outcome,
    PlainReporter,
    ReloadResult,
    RunReport,
    WaitOptions,
    format_duration,
    parse_duration,
    run_reloads,
    summary_lines,
    wait_for_reloads,
    worst_exit_code,
)


class FakeTenant:
    """Each app has a script: (seconds after start, status) steps; the last one sticks."""

    def __init__(self, clock: FakeClock, scripts: Mapping[str, Sequence[tuple[float, str]]]):
        self.clock = clock
        self.scripts = scripts
        self.started: dict[str, tuple[str, float]] = {}
        self.gets: list[str] = []
        self.log_requests: list[tuple[str, str]] = []
        self.start_errors: dict[str, Exception] = {}
        self.get_errors: dict[str, Exception] = {}
        self.interrupt_on_get: int | None = None
        self.partial_flags: list[bool] = []
        self.log_lines: Sequence[str] | Exception = ("line 1", "ScriptError: field not found")

    def in_flight(self) -> int:
        return sum(1 for app, (rid, _) in self.started.items() if self._status(app) not in _FINAL)

    def _status(self, app_id: str) -> str:
        _, started = self.started[app_id]
        status = "QUEUED"
        for after, state in self.scripts[app_id]:
            if self.clock.now - started >= after:
                status = state
        return status

    def _record(self, app_id: str) -> dict[str, Any]:
        rid, _ = self.started[app_id]
        record: dict[str, Any] = {"id": rid, "appId": app_id, "status": self._status(app_id)}
        if record["status"] == "FAILED":
            record["errorMessage"] = "script error"
            record["log"] = "Started loading\nscript error\n"
        return record

    def start(self, app_id: str, *, partial: bool) -> Mapping[str, Any]:
        if app_id in self.start_errors:
            raise self.start_errors[app_id]
        self.partial_flags.append(partial)
        self.started[app_id] = (f"r-{app_id}", self.clock.now)
        return self._record(app_id)

    def get(self, reload_id: str) -> Mapping[str, Any]:
        self.gets.append(reload_id)
        if self.interrupt_on_get is not None and len(self.gets) >= self.interrupt_on_get:
            raise KeyboardInterrupt
        app_id = reload_id.removeprefix("r-")
        if app_id in self.get_errors:
            raise self.get_errors[app_id]
        return self._record(app_id)

    def log_tail(self, app_id: str, reload_id: str, lines: int) -> Sequence[str]:
        self.log_requests.append((app_id, reload_id))
        if isinstance(self.log_lines, Exception):
            raise self.log_lines
        return list(self.log_lines)[-lines:]


_FINAL = {"SUCCEEDED", "FAILED", "CANCELED", "EXCEEDED_LIMIT"}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


def run(tenant: FakeTenant, clock: FakeClock, apps: Sequence[str], **wait: Any) -> RunReport:
    return run_reloads(tenant, apps, wait=WaitOptions(**wait), clock=clock, sleep=clock.sleep)


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("2s500ms", 2.5),
        (" 2M ", 120.0),
        ("0", 0.0),
        ("0.25", 0.25),
    ],
)
def test_parse_duration_accepts_the_usual_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "m", "30x", "1h30", "30m1h", "1m1m", "-5", "5 minutes", "nan", "inf", "1h-5m"]
)
def test_parse_duration_refuses_anything_else_with_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--timeout"):
        parse_duration(text, option="--timeout")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0.4s"), (45, "45s"), (125, "2m05s"), (3720, "1h02m")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_wait_options_refuse_nonsense() -> None:
    with pytest.raises(UsageError, match="max-parallel"):
        WaitOptions(max_parallel=0)
    with pytest.raises(UsageError, match="poll-interval"):
        WaitOptions(poll_interval=0.0)
    with pytest.raises(UsageError, match="timeout"):
        WaitOptions(timeout=-1)


# --- one reload ---------------------------------------------------------------------------------


def test_without_wait_the_reload_is_started_and_never_polled(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "QUEUED")], "b": [(0, "QUEUED")]})
    report = run_reloads(tenant, ["a", "b"], partial=True, clock=clock, sleep=clock.sleep)
    assert [r.outcome for r in report.results] == [Outcome.STARTED, Outcome.STARTED]
    assert [r.reload_id for r in report.results] == ["r-a", "r-b"]
    assert tenant.gets == []
    assert tenant.partial_flags == [True, True]
    assert report.exit_code is ExitCode.OK
    assert report.error() is None


def test_wait_polls_until_succeeded(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "QUEUED"), (2, "RELOADING"), (7, "SUCCEEDED")]})
    report = run(tenant, clock, ["a"], poll_interval=1.0)
    (result,) = report.results
    assert result.outcome is Outcome.SUCCEEDED
    assert result.status == "SUCCEEDED"
    assert result.elapsed == pytest.approx(7.0)
    assert len(tenant.gets) == 7
    assert report.exit_code is ExitCode.OK
    assert tenant.log_requests == []


def test_adaptive_polling_backs_off_to_a_ceiling(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "RELOADING"), (300, "SUCCEEDED")]})
    report = run(tenant, clock, ["a"])
    assert report.results[0].outcome is Outcome.SUCCEEDED
    assert clock.sleeps[0] == pytest.approx(ADAPTIVE_FIRST_POLL)
    assert all(b >= a for a, b in zip(clock.sleeps, clock.sleeps[1:], strict=False))
    assert max(clock.sleeps) == pytest.approx(ADAPTIVE_MAX_POLL)
    # Backing off keeps a 5-minute reload to a few dozen requests, not hundreds.
    assert len(tenant.gets) < 45


@pytest.mark.parametrize("final", ["FAILED", "CANCELED", "EXCEEDED_LIMIT"])
def test_failed_canceled_or_over_limit_is_exit_8_with_the_log_tail(
    clock: FakeClock, final: str
) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "RELOADING"), (3, final)]})
    report = run(tenant, clock, ["a"], poll_interval=1.0)
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.exit_code is ExitCode.RELOAD_FAILED
    assert tenant.log_requests == [("a", "r-a")]
    excerpt = result.failure_excerpt()
    assert "ScriptError: field not found" in excerpt
    if final == "FAILED":
        assert excerpt[-1] == "errorMessage: script error"
    error = report.error()
    assert isinstance(error, ReloadFailedError)
    assert final in error.message
    assert "r-a" in error.message


def test_a_failure_is_reported_even_when_the_log_cannot_be_read(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "RELOADING"), (1, "FAILED")]})
    tenant.log_lines = ApiError("404 not found")
    report = run(tenant, clock, ["a"], poll_interval=1.0)
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    # Falls back to the record's own short log and its errorMessage.
    assert result.failure_excerpt() == ["Started loading", "script error"]


def test_timeout_polls_at_the_deadline_then_gives_up(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "RELOADING"), (100, "SUCCEEDED")]})
    report = run(tenant, clock, ["a"], poll_interval=4.0, timeout=10.0)
    (result,) = report.results
    assert result.outcome is Outcome.TIMED_OUT
    assert result.status == "RELOADING"
    assert result.elapsed == pytest.approx(10.0)
    # Polls at 4 and 8, then one last look exactly at the deadline rather than at 12.
    assert clock.sleeps == pytest.approx([4.0, 4.0, 2.0])
    error = report.error()
    assert isinstance(error, WaitTimeoutError)
    assert error.exit_code == 9
    assert "r-a" in error.message
    assert "server-side" in error.message


def test_a_reload_ending_exactly_at_the_deadline_counts(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "RELOADING"), (10, "SUCCEEDED")]})
    report = run(tenant, clock, ["a"], poll_interval=4.0, timeout=10.0)
    assert report.results[0].outcome is Outcome.SUCCEEDED


def test_timeout_zero_waits_without_limit(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "RELOADING"), (7200, "SUCCEEDED")]})
    report = run(tenant, clock, ["a"], poll_interval=60.0, timeout=0)
    assert report.results[0].outcome is Outcome.SUCCEEDED


def test_an_unknown_status_keeps_the_wait_going(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "WARMING_UP"), (3, "SUCCEEDED")]})
    report = run(tenant, clock, ["a"], poll_interval=1.0)
    assert report.results[0].outcome is Outcome.SUCCEEDED


def test_start_refused_is_that_error(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "QUEUED")]})
    refused = ApiError("app a not found")
    tenant.start_errors["a"] = refused
    report = run(tenant, clock, ["a"])
    assert report.results[0].outcome is Outcome.ERROR
    assert report.error() is refused
    assert report.exit_code is ExitCode.API


def test_an_error_while_polling_ends_that_reload_only(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "RELOADING"), (3, "SUCCEEDED")], "b": [(0, "RELOADING")]})
    tenant.get_errors["b"] = NetworkError("gave up after retries")
    report = run(tenant, clock, ["a", "b"], poll_interval=1.0)
    a, b = report.results
    assert a.outcome is Outcome.SUCCEEDED
    assert b.outcome is Outcome.ERROR
    assert b.reload_id == "r-b"
    assert report.exit_code is ExitCode.NETWORK


# --- several apps -------------------------------------------------------------------------------


def test_several_apps_run_concurrently_within_max_parallel(clock: FakeClock) -> None:
    scripts = {
        f"app{i}": [(0, "QUEUED"), (1, "RELOADING"), (2 + i % 3, "SUCCEEDED")] for i in range(7)
    }
    tenant = FakeTenant(clock, scripts)
    peak = 0
    original_get = tenant.get

    def counting_get(reload_id: str) -> Mapping[str, Any]:
        nonlocal peak
        peak = max(peak, tenant.in_flight())
        return original_get(reload_id)

    tenant.get = counting_get  # type: ignore[method-assign]
    report = run(tenant, clock, list(scripts), poll_interval=0.5, max_parallel=3)
    assert [r.app_id for r in report.results] == list(scripts)
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    assert peak == 3
    # Concurrent: 7 reloads of 2-4 s each, 3 at a time, end well before 7 sequential ones would.
    assert clock.now - 1000.0 < sum(2 + i % 3 for i in range(7))


def test_with_max_parallel_one_they_run_one_after_the_other(clock: FakeClock) -> None:
    scripts = {name: [(0, "RELOADING"), (2, "SUCCEEDED")] for name in "abc"}
    tenant = FakeTenant(clock, scripts)
    report = run(tenant, clock, list(scripts), poll_interval=1.0, max_parallel=1)
    starts = sorted(started for _, started in tenant.started.values())
    assert starts == pytest.approx([1000.0, 1002.0, 1004.0])
    assert report.exit_code is ExitCode.OK


def test_exit_code_is_the_worst_and_the_error_summarises(clock: FakeClock) -> None:
    tenant = FakeTenant(
        clock,
        {
            "ok": [(0, "RELOADING"), (1, "SUCCEEDED")],
            "bad": [(0, "RELOADING"), (1, "FAILED")],
            "slow": [(0, "RELOADING")],
        },
    )
    report = run(tenant, clock, ["ok", "bad", "slow"], poll_interval=1.0, timeout=5.0)
    assert [r.outcome for r in report.results] == [
        Outcome.SUCCEEDED,
        Outcome.FAILED,
        Outcome.TIMED_OUT,
    ]
    assert report.exit_code is ExitCode.RELOAD_FAILED
    error = report.error()
    assert isinstance(error, ReloadFailedError)
    assert "3 reloads" in error.message
    assert "1 failed" in error.message
    assert "1 timed out" in error.message


def test_worst_exit_code_ranking() -> None:
    assert worst_exit_code([]) is ExitCode.OK
    assert worst_exit_code([ExitCode.OK, ExitCode.WAIT_TIMEOUT]) is ExitCode.WAIT_TIMEOUT
    assert worst_exit_code([ExitCode.WAIT_TIMEOUT, ExitCode.RELOAD_FAILED]) == 8
    assert worst_exit_code([ExitCode.RELOAD_FAILED, ExitCode.API]) is ExitCode.API
    assert worst_exit_code([ExitCode.AUTH, ExitCode.INTERRUPTED]) is ExitCode.INTERRUPTED


def test_ctrl_c_reports_running_reloads_with_their_ids(clock: FakeClock) -> None:
    scripts = {name: [(0, "RELOADING")] for name in "abc"}
    tenant = FakeTenant(clock, scripts)
    tenant.interrupt_on_get = 3
    report = run(tenant, clock, ["a", "b", "c"], poll_interval=1.0, max_parallel=2)
    assert report.interrupted
    a, b, c = report.results
    assert a.outcome is Outcome.INTERRUPTED
    assert a.reload_id == "r-a"
    assert b.outcome is Outcome.INTERRUPTED
    assert b.reload_id == "r-b"
    assert c.outcome is Outcome.NOT_STARTED
    assert report.exit_code is ExitCode.INTERRUPTED


def test_ctrl_c_while_starting_says_a_reload_may_exist(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "QUEUED")]})
    tenant.start_errors["a"] = KeyboardInterrupt()
    report = run(tenant, clock, ["a"])
    assert report.interrupted
    assert report.results[0].outcome is Outcome.INTERRUPTED
    assert report.results[0].reload_id is None


# --- reporting ----------------------------------------------------------------------------------


def test_plain_reporter_prints_changes_and_a_heartbeat_only(clock: FakeClock) -> None:
    stream = io.StringIO()
    tenant = FakeTenant(clock, {"a": [(0, "QUEUED"), (3, "RELOADING"), (200, "SUCCEEDED")]})
    run_reloads(
        tenant,
        ["a"],
        wait=WaitOptions(poll_interval=1.0),
        reporter=PlainReporter(stream, heartbeat=60.0),
        clock=clock,
        sleep=clock.sleep,
    )
    lines = stream.getvalue().splitlines()
    assert lines[0] == "app a: reload r-a started (QUEUED)"
    assert "app a: RELOADING after 3s" in lines
    heartbeats = [line for line in lines if line.startswith("app a: RELOADING")]
    # 197 s of RELOADING: the change itself and a heartbeat about once a minute, not 197 lines.
    assert 3 <= len(heartbeats) <= 5
    assert lines[-1] == "app a: reload r-a SUCCEEDED in 3m20s"


def test_summary_lines_align_one_row_per_app() -> None:
    report = RunReport(
        (
            ReloadResult("a", Outcome.SUCCEEDED, {"id": "r1", "status": "SUCCEEDED"}, 12.0),
            ReloadResult(
                "bb",
                Outcome.FAILED,
                {"id": "r22", "status": "FAILED", "errorMessage": "boom"},
                3.0,
            ),
            ReloadResult("c", Outcome.ERROR, error=ApiError("not found")),
        )
    )
    lines = summary_lines(report)
    assert lines[0].split() == ["APP", "RELOAD", "STATUS", "TIME"]
    assert lines[1].split() == ["a", "r1", "SUCCEEDED", "12s"]
    assert lines[2].split() == ["bb", "r22", "FAILED", "3s", "boom"]
    assert lines[3].split()[:4] == ["c", "-", "error", "-"]
    assert lines[3].endswith("not found")
    assert lines[1].index("r1") == lines[2].index("r22") == lines[0].index("RELOAD")


def test_bad_credentials_on_the_first_request_fail_the_whole_run(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "QUEUED")], "b": [(0, "QUEUED")]})
    refused = AuthError("the tenant refused the client secret")
    tenant.start_errors = {"a": refused, "b": refused}
    with pytest.raises(AuthError) as raised:
        run(tenant, clock, ["a", "b"])
    assert raised.value is refused


def test_an_auth_error_after_a_start_is_that_apps_row_only(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, {"a": [(0, "RELOADING"), (2, "SUCCEEDED")], "b": [(0, "QUEUED")]})
    tenant.start_errors["b"] = AuthError("token refused")
    report = run(tenant, clock, ["a", "b"], poll_interval=1.0)
    assert [r.outcome for r in report.results] == [Outcome.SUCCEEDED, Outcome.ERROR]
    assert report.exit_code is ExitCode.AUTH
    error = report.error()
    assert isinstance(error, AuthError)
    assert error.message == "2 reloads: 1 succeeded, 1 error."


# --- one list request a tick (TenantAdmin), bounded single GETs otherwise -----------------------


class ListingTenant(FakeTenant):
    """A tenant whose credentials may list every reload (GET /api/v1/reloads without appId)."""

    def __init__(
        self,
        clock: FakeClock,
        scripts: Mapping[str, Sequence[tuple[float, str]]],
        *,
        refuse: Exception | None = None,
        newest: int | None = None,
    ) -> None:
        super().__init__(clock, scripts)
        self.lists: list[float] = []
        self.get_times: list[float] = []
        self.refuse = refuse
        self.newest = newest  # how many of the newest reloads the list shows

    def list_recent(self, limit: int) -> Sequence[Mapping[str, Any]]:
        self.lists.append(self.clock.now)
        if self.refuse is not None:
            raise self.refuse
        newest_first = list(self.started)[::-1]  # started in that order
        shown = newest_first[: min(limit, self.newest or limit)]
        return [self._record(app) for app in shown]

    def get(self, reload_id: str) -> Mapping[str, Any]:
        self.get_times.append(self.clock.now)
        return super().get(reload_id)


def _batch(count: int, seconds: float) -> dict[str, list[tuple[float, str]]]:
    return {f"app{i:02}": [(0, "RELOADING"), (seconds, "SUCCEEDED")] for i in range(count)}


def _most_at_one_moment(times: Sequence[float]) -> int:
    return max(times.count(t) for t in set(times)) if times else 0


def test_twenty_parallel_reloads_are_seen_ending_within_a_second_with_one_request_a_tick(
    clock: FakeClock,
) -> None:
    tenant = ListingTenant(clock, _batch(20, 6.0))
    report = run(tenant, clock, list(tenant.scripts), max_parallel=20)
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    last_end = max(started for _, started in tenant.started.values()) + 6.0
    assert clock.now - last_end <= 1.0
    # One list request a tick, no single GETs: the count does not grow with the reloads.
    assert tenant.gets == []
    assert len(tenant.lists) == len(set(tenant.lists)) <= 7


def test_with_the_list_requests_per_minute_stay_at_most_one_a_second(clock: FakeClock) -> None:
    tenant = ListingTenant(clock, _batch(20, 300.0))
    run(tenant, clock, list(tenant.scripts), max_parallel=20)
    requests = len(tenant.lists) + len(tenant.gets)
    # The old default polled each of 4 reloads at 1, 2.5, 4.75 s...: up to 4 requests a second.
    assert requests <= 300 / ADAPTIVE_FIRST_POLL
    assert _most_at_one_moment(tenant.lists) == 1
    # ...and backs off once nothing changes: far fewer than one a second over 5 minutes.
    assert requests < 100


def test_a_refused_list_falls_back_to_at_most_four_gets_a_tick(clock: FakeClock) -> None:
    refusal = ApiError("appId is required.")
    tenant = ListingTenant(clock, _batch(20, 6.0), refuse=refusal)
    report = run(tenant, clock, list(tenant.scripts), max_parallel=20)
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    assert len(tenant.lists) == 1  # tried once, then single GETs for the run
    # The refused list request counts against its tick's budget.
    every = [*tenant.lists, *tenant.get_times]
    assert _most_at_one_moment(every) <= MAX_POLLS_PER_TICK
    # Ticks are at least the first poll interval apart: at most 4 requests a second.
    moments = sorted(set(tenant.get_times))
    assert all(b - a >= ADAPTIVE_FIRST_POLL - 1e-9 for a, b in itertools.pairwise(moments))


def test_a_reload_the_list_no_longer_shows_is_polled_on_its_own(clock: FakeClock) -> None:
    scripts = {"old": [(0, "RELOADING"), (5, "SUCCEEDED")], **_batch(3, 5.0)}
    tenant = ListingTenant(clock, scripts, newest=3)
    report = run(tenant, clock, list(scripts), max_parallel=4)
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    # The first reload started is the one past the list's newest three.
    assert set(tenant.gets) == {"r-old"}


def test_a_failed_reload_seen_in_the_list_still_gets_its_log_tail(clock: FakeClock) -> None:
    scripts = {"a": [(0, "RELOADING"), (3, "FAILED")], "b": [(0, "RELOADING"), (4, "SUCCEEDED")]}
    tenant = ListingTenant(clock, scripts)
    report = run(tenant, clock, ["a", "b"])
    assert [r.outcome for r in report.results] == [Outcome.FAILED, Outcome.SUCCEEDED]
    assert tenant.log_requests == [("a", "r-a")]
    assert report.exit_code is ExitCode.RELOAD_FAILED


def test_a_deadline_still_ends_the_wait_in_list_mode(clock: FakeClock) -> None:
    tenant = ListingTenant(clock, _batch(3, 600.0))
    report = run(tenant, clock, list(tenant.scripts), timeout=20.0)
    assert all(r.outcome is Outcome.TIMED_OUT for r in report.results)
    assert clock.now - 1000.0 == pytest.approx(20.0)


def test_per_reload_gets_are_bounded_per_tick_without_a_list(clock: FakeClock) -> None:
    tenant = FakeTenant(clock, _batch(12, 4.0))
    times: list[float] = []
    original_get = tenant.get

    def timed_get(reload_id: str) -> Mapping[str, Any]:
        times.append(clock.now)
        return original_get(reload_id)

    tenant.get = timed_get  # type: ignore[method-assign]
    report = run(tenant, clock, list(tenant.scripts), max_parallel=12)
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    assert _most_at_one_moment(times) <= MAX_POLLS_PER_TICK


# --- no list rights: one items request a tick, a read of each reload it shows may have ended ------

SERVER_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class ItemsTenant(ListingTenant):
    """A normal M2M bot's tenant: the reload list is refused (reloads.json: appId required unless
    TenantAdmin), but the apps' items show when their last reload ended (items.json
    resourceReloadEndTime), in the tenant's own clock. A CANCELED reload leaves the item as it
    was unless ``canceled_shows``; ``hidden`` apps' items are not visible to the bot."""

    def __init__(
        self,
        clock: FakeClock,
        scripts: Mapping[str, Sequence[tuple[float, str]]],
        *,
        items_refuse: Exception | None = None,
        hidden: Sequence[str] = (),
        hidden_from: float = 0.0,
        canceled_shows: bool = False,
        items_skew: float = 0.0,
        earlier_end: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(clock, scripts, refuse=ApiError("appId is required."))
        self.items_refuse = items_refuse
        self.hidden = set(hidden)
        self.hidden_from = hidden_from  # seconds after the first start
        self.canceled_shows = canceled_shows
        self.items_skew = items_skew  # the items service's clock against the reloads service's
        self.earlier_end = dict(earlier_end or {})  # another reload's end, after this one's start
        self.items_calls: list[tuple[float, tuple[str, ...]]] = []
        self.final_reads: list[float] = []

    def _stamp(self, seconds: float) -> str:
        # Far from the local clock (FakeClock at 1000 s): only tenant times are ever compared.
        return (SERVER_EPOCH + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    def _record(self, app_id: str) -> dict[str, Any]:
        record = super()._record(app_id)
        record["creationTime"] = self._stamp(self.started[app_id][1])
        return record

    def get(self, reload_id: str) -> Mapping[str, Any]:
        record = super().get(reload_id)
        if record["status"] in _FINAL:
            self.final_reads.append(self.clock.now)
        return record

    def _ended_at(self, app_id: str) -> float | None:
        _, started = self.started[app_id]
        status = self._status(app_id)
        if status in _FINAL and (status != "CANCELED" or self.canceled_shows):
            return started + next(after for after, state in self.scripts[app_id] if state == status)
        if app_id in self.earlier_end:
            return started + self.earlier_end[app_id]
        return None

    def app_reload_ends(self, app_ids: Sequence[str]) -> Mapping[str, str | None]:
        self.items_calls.append((self.clock.now, tuple(app_ids)))
        if self.items_refuse is not None:
            raise self.items_refuse
        ends: dict[str, str | None] = {}
        for app_id in app_ids:
            if app_id in self.hidden and self.clock.now >= 1000.0 + self.hidden_from:
                continue
            ended = self._ended_at(app_id)
            ends[app_id] = None if ended is None else self._stamp(ended + self.items_skew)
        return ends

    @property
    def items_times(self) -> list[float]:
        return [at for at, _ in self.items_calls]

    def polls_without_final_reads(self) -> list[float]:
        """When each request but the final reads went: what the ticks cost while nothing ends."""
        reads = list(self.get_times)
        for at in self.final_reads:
            reads.remove(at)
        return sorted([*self.lists, *self.items_times, *reads])


def test_without_list_rights_the_items_tick_sees_twenty_ends_within_a_second(
    clock: FakeClock,
) -> None:
    tenant = ItemsTenant(clock, _batch(20, 6.0))
    report = run(tenant, clock, list(tenant.scripts), max_parallel=20)
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    last_end = max(started for _, started in tenant.started.values()) + 6.0
    assert clock.now - last_end <= 1.0
    assert len(tenant.lists) == 1  # tried once, refused
    # One items request a tick for all twenty; each reload read once, when its item showed its end.
    assert len(tenant.items_calls) == len(set(tenant.items_times)) <= 7
    assert all(len(ids) == 20 for _, ids in tenant.items_calls[:1])
    assert sorted(tenant.gets) == sorted(f"r-{app}" for app in tenant.scripts)
    assert len(tenant.final_reads) == 20


@pytest.mark.parametrize("tenant_kind", ["list", "items"])
def test_long_reloads_are_seen_ending_within_the_longest_tick(
    clock: FakeClock, tenant_kind: str
) -> None:
    # Ten minutes of reloading: long past the fast phase, the tick has backed off to its ceiling
    # (not to the single polls' 10 s), and still costs one request however many reloads run.
    scripts = _batch(20, 600.0)
    tenant = ListingTenant(clock, scripts) if tenant_kind == "list" else ItemsTenant(clock, scripts)
    report = run(tenant, clock, list(scripts), max_parallel=20)
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    last_end = max(started for _, started in tenant.started.values()) + 600.0
    assert clock.now - last_end <= LIST_MAX_TICK
    ticks = sorted(set(tenant.lists if tenant_kind == "list" else tenant.items_times))
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) == pytest.approx(LIST_MAX_TICK)
    # Twelve ticks a minute at most once backed off: well under the tier-1 rate limits.
    assert len(ticks) <= 30 + 600 / LIST_MAX_TICK


def test_items_tick_requests_do_not_grow_with_the_reloads(clock: FakeClock) -> None:
    costs = {}
    for count in (20, 60):
        timer = FakeClock(start=1000.0)
        tenant = ItemsTenant(timer, _batch(count, 120.0))
        report = run(tenant, timer, list(tenant.scripts), max_parallel=count)
        assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
        polls = tenant.polls_without_final_reads()
        # Each reload read once at its end, whatever the number: the tenant's 50 reload starts a
        # minute (reloads.json POST tier) bound those reads too.
        assert len(tenant.final_reads) == count
        costs[count] = (len(polls), _most_at_one_moment(polls), timer.now)
    # The ticks cost the same for 60 reloads as for 20: one items request and at most one
    # safety read each (plus the refused list on the first).
    assert costs[20] == costs[60]
    assert costs[20][1] <= 2


def test_more_than_a_hundred_reloads_take_one_items_request_per_hundred(clock: FakeClock) -> None:
    tenant = ItemsTenant(clock, _batch(150, 3.0))
    report = run(tenant, clock, list(tenant.scripts), max_parallel=150)
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    first = [ids for at, ids in tenant.items_calls if at == tenant.items_times[0]]
    assert [len(ids) for ids in first] == [100, 50]


@pytest.mark.parametrize("canceled_shows", [True, False], ids=["item-shows", "item-silent"])
def test_failed_and_canceled_reloads_are_concluded_from_their_records(
    clock: FakeClock, canceled_shows: bool
) -> None:
    scripts = {
        "bad": [(0, "RELOADING"), (3, "FAILED")],
        "stopped": [(0, "QUEUED"), (4, "CANCELED")],
        "good": [(0, "RELOADING"), (30, "SUCCEEDED")],
    }
    tenant = ItemsTenant(clock, scripts, canceled_shows=canceled_shows)
    report = run(tenant, clock, list(scripts))
    by_app = {r.app_id: r for r in report.results}
    assert by_app["bad"].outcome is Outcome.FAILED
    assert by_app["bad"].status == "FAILED"
    assert by_app["stopped"].outcome is Outcome.FAILED
    assert by_app["stopped"].status == "CANCELED"
    assert by_app["good"].outcome is Outcome.SUCCEEDED
    assert sorted(tenant.log_requests) == [("bad", "r-bad"), ("stopped", "r-stopped")]
    assert report.exit_code is ExitCode.RELOAD_FAILED
    # The failure shows on the item: seen within a tick.
    assert by_app["bad"].elapsed <= 3.0 + 1.0
    if canceled_shows:
        assert by_app["stopped"].elapsed <= 4.0 + 1.0
    else:
        # Nothing on the item: the safety net's own read ends it, within its interval.
        assert 4.0 + 1.0 < by_app["stopped"].elapsed <= SAFETY_POLL + 1.0


def test_refused_items_fall_back_to_at_most_four_gets_a_tick(clock: FakeClock) -> None:
    tenant = ItemsTenant(clock, _batch(20, 6.0), items_refuse=ApiError("Forbidden."))
    report = run(tenant, clock, list(tenant.scripts), max_parallel=20)
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    assert len(tenant.lists) == 1
    assert len(tenant.items_calls) == 1  # tried once, then single GETs for the run
    every = [*tenant.lists, *tenant.items_times, *tenant.get_times]
    assert _most_at_one_moment(every) <= MAX_POLLS_PER_TICK
    # Every reload polled on its own: more reads than reloads.
    assert len(tenant.gets) > 20


def test_an_app_missing_from_the_items_is_polled_on_its_own(clock: FakeClock) -> None:
    scripts = _batch(4, 6.0)
    tenant = ItemsTenant(clock, scripts, hidden=["app02"])
    report = run(tenant, clock, list(scripts))
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    # The three the items show are read once each; the hidden one on its adaptive schedule.
    assert sorted(set(tenant.gets)) == ["r-app00", "r-app01", "r-app02", "r-app03"]
    assert tenant.gets.count("r-app02") > 1
    assert all(tenant.gets.count(f"r-app0{k}") == 1 for k in (0, 1, 3))
    last_end = max(started for _, started in tenant.started.values()) + 6.0
    assert clock.now - last_end <= ADAPTIVE_MAX_POLL


def test_an_item_that_goes_out_of_sight_hands_its_reload_back_to_its_own_schedule(
    clock: FakeClock,
) -> None:
    scripts = {**_batch(3, 30.0), "app03": [(0, "RELOADING"), (5, "SUCCEEDED")]}
    tenant = ItemsTenant(clock, scripts, hidden=["app03"], hidden_from=1.5)
    report = run(tenant, clock, list(scripts))
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    # Watched at the first tick, then missing: read on its own, well before its safety read.
    assert report.results[3].elapsed < SAFETY_POLL - 2


def test_an_earlier_reloads_end_costs_one_read_not_one_a_tick(clock: FakeClock) -> None:
    # app00 was queued behind an earlier reload of the same app that ended 2 s later.
    scripts = {
        "app00": [(0, "QUEUED"), (3, "RELOADING"), (8, "SUCCEEDED")],
        "app01": [(0, "RELOADING"), (20, "SUCCEEDED")],
    }
    tenant = ItemsTenant(clock, scripts, earlier_end={"app00": 2.0})
    report = run(tenant, clock, list(scripts))
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    # Read once when the earlier end showed (still QUEUED), once at its own end.
    assert tenant.gets.count("r-app00") == 2
    assert report.results[0].elapsed <= 8.0 + 1.0


def test_an_end_slightly_before_creation_by_the_items_clock_still_counts(
    clock: FakeClock,
) -> None:
    # The items service's clock runs 0.8 s behind the reloads service's; the reloads take 0.5 s.
    tenant = ItemsTenant(clock, _batch(3, 0.5), items_skew=-0.8)
    report = run(tenant, clock, list(tenant.scripts))
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    assert len(tenant.items_calls) == 1
    assert clock.now - 1000.0 <= 1.0


def test_an_end_well_before_creation_is_an_earlier_reloads(clock: FakeClock) -> None:
    # The app's last reload ended long before this one was created: nothing to read yet.
    tenant = ItemsTenant(clock, _batch(2, 5.0), earlier_end={"app00": -60.0, "app01": -60.0})
    report = run(tenant, clock, list(tenant.scripts))
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    assert sorted(tenant.gets) == ["r-app00", "r-app01"]


def test_a_deadline_still_ends_the_wait_in_items_mode(clock: FakeClock) -> None:
    tenant = ItemsTenant(clock, _batch(3, 600.0))
    report = run(tenant, clock, list(tenant.scripts), timeout=20.0)
    assert all(r.outcome is Outcome.TIMED_OUT for r in report.results)
    assert clock.now - 1000.0 == pytest.approx(20.0)
    # The verdict rests on a record read at the deadline, which costs no extra items request.
    assert tenant.get_times.count(1020.0) == 3
    assert tenant.items_times.count(1020.0) <= 1


def test_the_last_reload_left_goes_back_to_its_own_schedule(clock: FakeClock) -> None:
    scripts = {"a": [(0, "RELOADING"), (3, "SUCCEEDED")], "b": [(0, "RELOADING"), (5, "SUCCEEDED")]}
    tenant = ItemsTenant(clock, scripts)
    report = run(tenant, clock, ["a", "b"])
    assert [r.outcome for r in report.results] == [Outcome.SUCCEEDED, Outcome.SUCCEEDED]
    # Alone, b is polled 1 s, 1.5 s, 2.25 s... apart, not at its 10 s safety read.
    assert report.results[1].elapsed < SAFETY_POLL - 2


def test_the_safety_net_reads_one_watched_reload_a_tick(clock: FakeClock) -> None:
    tenant = ItemsTenant(clock, _batch(12, 60.0))
    run(tenant, clock, list(tenant.scripts), max_parallel=12)
    reads = [at for at in tenant.get_times if at not in tenant.final_reads]
    assert reads  # the safety net did read
    assert _most_at_one_moment(reads) == 1
    assert min(reads) >= 1000.0 + SAFETY_POLL


def test_waiting_on_existing_reloads_uses_the_items_tick(clock: FakeClock) -> None:
    tenant = ItemsTenant(clock, _batch(3, 6.0))
    for app in tenant.scripts:
        tenant.start(app, partial=False)
    report = wait_for_reloads(
        tenant, ["r-app00", "r-app01", "r-app02"], WaitOptions(), clock=clock, sleep=clock.sleep
    )
    assert all(r.outcome is Outcome.SUCCEEDED for r in report.results)
    assert tenant.items_calls
    # Three reads to learn the apps, one each at the end.
    assert len(tenant.gets) == 6
